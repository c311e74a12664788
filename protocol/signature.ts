// The node's signature over a response: evidence for audits (docs/protocol.md#signature).
import { createHash } from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { SIGNATURE_DOMAIN } from './constants.js'

const DOMAIN = new TextEncoder().encode(SIGNATURE_DOMAIN)

export interface SignedFields {
  requestId: bigint
  modelId: Uint8Array
  layer: number
  expert: number
  /** The request's tensor bytes exactly as on the wire. */
  input: Uint8Array
  /** The response's tensor bytes exactly as on the wire. */
  output: Uint8Array
}

export function sha256 (b: Uint8Array): Uint8Array {
  return createHash('sha256').update(b).digest()
}

/**
 * domain ‖ 0x00 ‖ request_id (u64 BE) ‖ model_id (32) ‖ layer (u32 BE) ‖ expert (u32 BE)
 * ‖ sha256(input) ‖ sha256(output): 25 + 1 + 8 + 32 + 4 + 4 + 32 + 32 = 138 bytes.
 */
export function signedMessage (f: SignedFields): Uint8Array {
  const out = new Uint8Array(DOMAIN.byteLength + 1 + 8 + 32 + 4 + 4 + 32 + 32)
  const dv = new DataView(out.buffer)
  let o = 0
  out.set(DOMAIN, o); o += DOMAIN.byteLength
  out[o++] = 0
  dv.setBigUint64(o, BigInt.asUintN(64, f.requestId)); o += 8
  if (f.modelId.byteLength !== 32) throw new Error('model id must be 32 bytes')
  out.set(f.modelId, o); o += 32
  dv.setUint32(o, f.layer); o += 4
  dv.setUint32(o, f.expert); o += 4
  out.set(sha256(f.input), o); o += 32
  out.set(sha256(f.output), o)
  return out
}

export async function signResponse (key: PrivateKey, f: SignedFields): Promise<Uint8Array> {
  return await key.sign(signedMessage(f))
}

export async function verifyResponse (key: PublicKey, f: SignedFields, signature: Uint8Array): Promise<boolean> {
  return await key.verify(signedMessage(f), signature)
}
