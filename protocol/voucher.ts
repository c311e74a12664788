/**
 * EIP-712 payment vouchers of the POV escrow (contracts/PovEscrow.sol).
 *
 * A voucher promises `cumulativeAmount` POV wei in total from `payer` to `payee`; the payee
 * redeems the latest one and is paid `cumulativeAmount - alreadyPaid`. Pure ethers: this module
 * is shared by the node (verifier) and the router (signer) and must not import hardhat.
 */
import { TypedDataEncoder, getAddress, verifyTypedData } from 'ethers'
import type { Signer, TypedDataDomain, TypedDataField } from 'ethers'

export const VOUCHER_DOMAIN_NAME = 'POV Escrow'
export const VOUCHER_DOMAIN_VERSION = '1'

/** The EIP-712 types: exactly `Voucher(address payer,address payee,uint256 cumulativeAmount)`. */
export const VOUCHER_TYPES: Record<string, TypedDataField[]> = {
  Voucher: [
    { name: 'payer', type: 'address' },
    { name: 'payee', type: 'address' },
    { name: 'cumulativeAmount', type: 'uint256' }
  ]
}

export interface Voucher {
  payer: string
  payee: string
  cumulativeAmount: bigint
}

/** Remembered checksums (a payer talks to a few payees, a node hears from a few payers). */
const CHECKSUMS = new Map<string, string>()
const CHECKSUMS_MAX = 4096

/**
 * `getAddress(a)`, remembered: the EIP-55 checksum is a keccak-256 in JavaScript (~40 µs), and a
 * paid expert call needs the same few addresses normalised several times. Throws like getAddress.
 */
export function checksummed(a: string): string {
  let c = CHECKSUMS.get(a)
  if (c == null) {
    c = getAddress(a)
    if (CHECKSUMS.size >= CHECKSUMS_MAX) CHECKSUMS.clear()
    CHECKSUMS.set(a, c)
  }
  return c
}

/** A voucher with the payer's 65-byte EIP-712 signature (hex). */
export interface SignedVoucher extends Voucher {
  signature: string
}

export interface VoucherDomain {
  name: string
  version: string
  chainId: bigint
  verifyingContract: string
}

/** The escrow's EIP-712 domain. Prefer {@link readVoucherDomain} (ERC-5267) when a provider is at hand. */
export function voucherDomain(escrowAddress: string, chainId: bigint | number): VoucherDomain {
  return {
    name: VOUCHER_DOMAIN_NAME,
    version: VOUCHER_DOMAIN_VERSION,
    chainId: BigInt(chainId),
    verifyingContract: getAddress(escrowAddress)
  }
}

/** Minimal view of a contract exposing ERC-5267 `eip712Domain()` (e.g. an ethers Contract). */
export interface Eip712DomainSource {
  eip712Domain(): Promise<
    [string, string, string, bigint, string, string, bigint[]] | readonly unknown[]
  >
}

/** Reads the domain from the escrow's ERC-5267 `eip712Domain()` and checks it is a voucher domain. */
export async function readVoucherDomain(escrow: Eip712DomainSource): Promise<VoucherDomain> {
  const d = (await escrow.eip712Domain()) as readonly unknown[]
  const domain: VoucherDomain = {
    name: String(d[1]),
    version: String(d[2]),
    chainId: BigInt(d[3] as bigint),
    verifyingContract: getAddress(String(d[4]))
  }
  if (domain.name !== VOUCHER_DOMAIN_NAME || domain.version !== VOUCHER_DOMAIN_VERSION) {
    throw new Error(
      `unexpected EIP-712 domain ${domain.name} v${domain.version} at ${domain.verifyingContract}`
    )
  }
  return domain
}

function toTypedDomain(domain: VoucherDomain): TypedDataDomain {
  return { ...domain }
}

function toValue(voucher: Voucher): Record<string, unknown> {
  return { payer: voucher.payer, payee: voucher.payee, cumulativeAmount: voucher.cumulativeAmount }
}

/** The EIP-712 digest the payer signs (equals `PovEscrow.voucherDigest`). */
export function voucherDigest(domain: VoucherDomain, voucher: Voucher): string {
  return TypedDataEncoder.hash(toTypedDomain(domain), VOUCHER_TYPES, toValue(voucher))
}

/** Signs `voucher` with the payer's signer (`signer.signTypedData`); returns a 65-byte hex signature. */
export async function signVoucher(
  signer: Signer,
  domain: VoucherDomain,
  voucher: Voucher
): Promise<string> {
  return signer.signTypedData(toTypedDomain(domain), VOUCHER_TYPES, toValue(voucher))
}

/** The address that signed `voucher` (compare it with `voucher.payer`). Throws on a malformed signature. */
export function recoverVoucherSigner(
  domain: VoucherDomain,
  voucher: Voucher,
  signature: string
): string {
  return verifyTypedData(toTypedDomain(domain), VOUCHER_TYPES, toValue(voucher), signature)
}

/** True when `signature` is the payer's signature of `voucher` (never throws). */
export function isVoucherSignedByPayer(
  domain: VoucherDomain,
  voucher: Voucher,
  signature: string
): boolean {
  try {
    return recoverVoucherSigner(domain, voucher, signature) === checksummed(voucher.payer)
  } catch {
    return false
  }
}
