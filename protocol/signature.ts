// The node's signature over a response: evidence for audits (docs/protocol.md#signature).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject
} from 'node:crypto'
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

export function sha256(b: Uint8Array): Uint8Array {
  return createHash('sha256').update(b).digest()
}

/**
 * domain ‖ 0x00 ‖ request_id (u64 BE) ‖ model_id (32) ‖ layer (u32 BE) ‖ expert (u32 BE)
 * ‖ sha256(input) ‖ sha256(output): 25 + 1 + 8 + 32 + 4 + 4 + 32 + 32 = 138 bytes.
 */
export function signedMessage(f: SignedFields): Uint8Array {
  const out = new Uint8Array(DOMAIN.byteLength + 1 + 8 + 32 + 4 + 4 + 32 + 32)
  const dv = new DataView(out.buffer)
  let o = 0
  out.set(DOMAIN, o)
  o += DOMAIN.byteLength
  out[o++] = 0
  dv.setBigUint64(o, BigInt.asUintN(64, f.requestId))
  o += 8
  if (f.modelId.byteLength !== 32) throw new Error('model id must be 32 bytes')
  out.set(f.modelId, o)
  o += 32
  dv.setUint32(o, f.layer)
  o += 4
  dv.setUint32(o, f.expert)
  o += 4
  out.set(sha256(f.input), o)
  o += 32
  out.set(sha256(f.output), o)
  return out
}

// @libp2p/crypto builds a KeyObject on every Ed25519 sign/verify (~150/~215 µs measured here);
// caching one per key brings that to the native cost. Same bytes, same signatures (Ed25519 is
// deterministic), so any other Ed25519 implementation verifies them.
const b64u = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
const privCache = new WeakMap<PrivateKey, KeyObject | null>()
const pubCache = new WeakMap<PublicKey, KeyObject | null>()

function privateKeyObject(key: PrivateKey): KeyObject | null {
  let k = privCache.get(key)
  if (k === undefined) {
    k =
      key.type === 'Ed25519' && key.raw.byteLength === 64
        ? createPrivateKey({
            format: 'jwk',
            key: {
              kty: 'OKP',
              crv: 'Ed25519',
              d: b64u(key.raw.subarray(0, 32)),
              x: b64u(key.raw.subarray(32))
            }
          })
        : null
    privCache.set(key, k)
  }
  return k
}

function publicKeyObject(key: PublicKey): KeyObject | null {
  let k = pubCache.get(key)
  if (k === undefined) {
    k =
      key.type === 'Ed25519'
        ? createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64u(key.raw) } })
        : null
    pubCache.set(key, k)
  }
  return k
}

export async function signResponse(key: PrivateKey, f: SignedFields): Promise<Uint8Array> {
  const msg = signedMessage(f)
  const ko = privateKeyObject(key)
  return ko != null ? nodeSign(null, msg, ko) : await key.sign(msg)
}

export async function verifyResponse(
  key: PublicKey,
  f: SignedFields,
  signature: Uint8Array
): Promise<boolean> {
  const msg = signedMessage(f)
  const ko = publicKeyObject(key)
  return ko != null ? nodeVerify(null, msg, ko, signature) : await key.verify(msg, signature)
}
