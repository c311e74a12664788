// The voucher as it travels in ExpertRequest.payment (protocol/expert.proto) ↔ the EIP-712
// voucher of protocol/voucher.ts. Addresses are 20 bytes, amounts uint256 big-endian.
import { getBytes, hexlify, toBeArray } from 'ethers'
import type { Voucher as WireVoucher } from './expert.js'
import { PaymentError, Status } from './errors.js'
import { checksummed, type SignedVoucher } from './voucher.js'

/** Wire forms of vouchers still in use: a prepaid voucher travels on many calls unchanged. */
const WIRE = new WeakMap<SignedVoucher, WireVoucher>()

/**
 * The longest a node may act on a lane read (PovEscrow.laneOf) before reading it again
 * (docs/protocol.md, what a node checks): money allocated to a lane counts for a voucher only
 * this long after the allocation is mined — before that, a node may still hold the older balance
 * and refuse the voucher as `insufficient escrow`.
 */
export const LANE_CACHE_MS = 2000

/** The wire form of `v` (the same object for the same voucher: do not modify it). */
export function voucherToWire(v: SignedVoucher): WireVoucher {
  let w = WIRE.get(v)
  if (w == null) {
    w = {
      payer: getBytes(checksummed(v.payer)) as Uint8Array<ArrayBuffer>,
      payee: getBytes(checksummed(v.payee)) as Uint8Array<ArrayBuffer>,
      cumulativeAmount: toBeArray(v.cumulativeAmount) as Uint8Array<ArrayBuffer>,
      signature: getBytes(v.signature) as Uint8Array<ArrayBuffer>,
      extra: new Uint8Array(0)
    }
    WIRE.set(v, w)
  }
  return w
}

/** Decodes and bounds-checks a wire voucher; malformed fields are a PAYMENT_INVALID error. */
export function voucherFromWire(w: WireVoucher | undefined): SignedVoucher | undefined {
  if (w == null) return undefined
  if (w.payer.length !== 20 || w.payee.length !== 20)
    throw new PaymentError(
      'malformed voucher: payer and payee must be 20-byte addresses',
      Status.PAYMENT_INVALID
    )
  if (w.cumulativeAmount.length === 0 || w.cumulativeAmount.length > 32)
    throw new PaymentError(
      'malformed voucher: cumulative amount must be 1–32 bytes',
      Status.PAYMENT_INVALID
    )
  if (w.signature.length !== 65)
    throw new PaymentError(
      `malformed voucher: signature must be 65 bytes, got ${w.signature.length}`,
      Status.PAYMENT_INVALID
    )
  return {
    payer: checksummed(hexlify(w.payer)),
    payee: checksummed(hexlify(w.payee)),
    cumulativeAmount: BigInt(hexlify(w.cumulativeAmount)),
    signature: hexlify(w.signature)
  }
}
