/**
 * The claim path's form of a voucher: what `PovEscrow.redeem` / `redeemBatch` take. Clients keep
 * signing the EIP-712 `Voucher(payer, payee, cumulativeAmount)` of protocol/voucher.ts with a
 * 65-byte signature (that is the wire format); only the payee, when it redeems, converts it to
 * `SignedVoucher{payer, cumulativeAmount, r, vs}`: the payee is the caller (the escrow puts
 * `msg.sender` into the digest) and the signature is in ERC-2098 compact form.
 */
import { Signature } from 'ethers'

export const MAX_CUMULATIVE_AMOUNT = (1n << 128n) - 1n

/** `PovEscrow`'s `SignedVoucher` struct. */
export interface RedeemableVoucher {
  payer: string
  cumulativeAmount: bigint
  r: string
  vs: string
}

/**
 * Converts a voucher with its payer's 65-byte signature to the escrow's compact struct. Throws on
 * a malformed signature or a cumulative amount above 2^128 − 1 (no deposit can cover it).
 */
export function toRedeemable(v: {
  payer: string
  cumulativeAmount: bigint
  signature: string
}): RedeemableVoucher {
  if (v.cumulativeAmount < 0n || v.cumulativeAmount > MAX_CUMULATIVE_AMOUNT) {
    throw new RangeError(`voucher cumulative amount ${v.cumulativeAmount} does not fit 128 bits`)
  }
  const sig = Signature.from(v.signature)
  return { payer: v.payer, cumulativeAmount: v.cumulativeAmount, r: sig.r, vs: sig.yParityAndS }
}
