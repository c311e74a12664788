// The node's signature over a response: evidence for audits (docs/protocol.md#signature).
// The signed bytes bind everything needed to re-run the call and compare its result — model id,
// layer, expert, the tensor encoding and shape, and both tensors' hashes — so a signature on a
// wrong output cannot be disowned or replayed as another expert's answer.
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
import { DType } from './expert.js'

const DOMAIN = new TextEncoder().encode(SIGNATURE_DOMAIN)

/** What a response signature commits to, with the tensors given by their sha256. */
export interface SignedDigest {
  requestId: bigint
  modelId: Uint8Array
  layer: number
  expert: number
  /** Wire encoding of both tensors; signed as its proto number (FP32 = 1, FP16 = 2). */
  dtype: DType
  rows: number
  hidden: number
  /** sha256 of the request's tensor bytes exactly as on the wire. */
  inputHash: Uint8Array
  /** sha256 of the response's tensor bytes exactly as on the wire. */
  outputHash: Uint8Array
}

export interface SignedFields extends Omit<SignedDigest, 'inputHash' | 'outputHash'> {
  /** The request's tensor bytes exactly as on the wire. */
  input: Uint8Array
  /** The response's tensor bytes exactly as on the wire. */
  output: Uint8Array
}

export function sha256(b: Uint8Array): Uint8Array {
  return createHash('sha256').update(b).digest()
}

/** Length of the signed message: 22 + 1 + 8 + 32 + 5 × 4 + 32 + 32. */
export const SIGNED_MESSAGE_BYTES = DOMAIN.byteLength + 1 + 8 + 32 + 5 * 4 + 32 + 32

/**
 * domain ‖ 0x00 ‖ request_id (u64 BE) ‖ model_id (32) ‖ layer ‖ expert ‖ dtype ‖ rows ‖ hidden
 * (u32 BE each) ‖ sha256(input) ‖ sha256(output): 147 bytes (the v2 layout: any change to it bumps the domain version, docs/protocol.md#versions-and-required-protocols).
 */
export function signedDigestMessage(f: SignedDigest): Uint8Array {
  if (f.modelId.byteLength !== 32) throw new Error('model id must be 32 bytes')
  if (f.inputHash.byteLength !== 32 || f.outputHash.byteLength !== 32)
    throw new Error('tensor hashes must be 32 bytes (sha256)')
  const out = new Uint8Array(SIGNED_MESSAGE_BYTES)
  const dv = new DataView(out.buffer)
  let o = 0
  out.set(DOMAIN, o)
  o += DOMAIN.byteLength
  out[o++] = 0
  dv.setBigUint64(o, BigInt.asUintN(64, f.requestId))
  o += 8
  out.set(f.modelId, o)
  o += 32
  for (const v of [f.layer, f.expert, dtypeNumber(f.dtype), f.rows, f.hidden]) {
    dv.setUint32(o, v)
    o += 4
  }
  out.set(f.inputHash, o)
  o += 32
  out.set(f.outputHash, o)
  return out
}

function dtypeNumber(d: DType): number {
  const n = DTYPE_NUMBERS[d]
  if (n == null) throw new Error(`unknown dtype ${String(d)}`)
  return n
}
const DTYPE_NUMBERS: Record<string, number> = {
  [DType.DTYPE_UNSPECIFIED]: 0,
  [DType.FP32]: 1,
  [DType.FP16]: 2
}

/** The signed message of a response, hashing its tensors. */
export function signedMessage(f: SignedFields): Uint8Array {
  const { input, output, ...rest } = f
  return signedDigestMessage({ ...rest, inputHash: sha256(input), outputHash: sha256(output) })
}

// @libp2p/crypto builds a KeyObject on every Ed25519 sign/verify (~150/~215 µs on a 2-vCPU AMD
// EPYC VM, 2026-12); caching one per key brings that to the native cost. Same bytes, same
// signatures (Ed25519 is deterministic), so any other Ed25519 implementation verifies them.
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
  return await verifyMessage(key, signedMessage(f), signature)
}

/** Checks a signature against the hashes only (evidence files carry them; see router/evidence.ts). */
export async function verifyDigest(
  key: PublicKey,
  f: SignedDigest,
  signature: Uint8Array
): Promise<boolean> {
  return await verifyMessage(key, signedDigestMessage(f), signature)
}

async function verifyMessage(
  key: PublicKey,
  msg: Uint8Array,
  signature: Uint8Array
): Promise<boolean> {
  const ko = publicKeyObject(key)
  return ko != null ? nodeVerify(null, msg, ko, signature) : await key.verify(msg, signature)
}
