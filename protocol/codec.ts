// Encoding of expert messages. The tensor is written as the LAST field (number 15) and sent
// as its own buffer, so a request or response is framed without copying the tensor
// (protobuf allows fields in any order; docs/protocol.md#messages).
import { Uint8ArrayList } from 'uint8arraylist'
import { DType, ExpertRequest, ExpertResponse, type InfoResponse } from './expert.js'
import { decodeExpertRequest, decodeExpertResponse, decodeInfoResponse } from './strict.js'
import { varintLength, writeVarint } from './framing.js'
import { f16ToF32, f32ToF16 } from './fp16.js'
import { InvalidFrameError } from './errors.js'

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('pov wire tensors are little-endian; big-endian hosts are not supported')
}

const TENSOR_TAG = (15 << 3) | 2
const EMPTY = new Uint8Array(0)

export type WireDType = 'fp32' | 'fp16'

export function toProtoDType(d: WireDType): DType {
  return d === 'fp16' ? DType.FP16 : DType.FP32
}
export function bytesPerElement(d: DType): number {
  return d === DType.FP16 ? 2 : d === DType.FP32 ? 4 : 0
}

/** Float32 values -> wire bytes. fp32 is a view of `x` (no copy); fp16 rounds to nearest even. */
export function encodeTensor(x: Float32Array, dtype: DType): Uint8Array {
  if (dtype === DType.FP32) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength)
  if (dtype === DType.FP16) {
    const h = f32ToF16(x)
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength)
  }
  throw new InvalidFrameError(`unsupported dtype ${String(dtype)}`)
}

/** Wire bytes -> a fresh or aligned Float32Array (views when aligned, copies otherwise). */
export function decodeTensor(bytes: Uint8Array, dtype: DType): Float32Array {
  if (dtype === DType.FP32) {
    if (bytes.byteLength % 4 !== 0)
      throw new InvalidFrameError('fp32 tensor length is not a multiple of 4')
    if (bytes.byteOffset % 4 === 0)
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
    return new Float32Array(copyBytes(bytes).buffer) // unaligned: one copy
  }
  if (dtype === DType.FP16) {
    if (bytes.byteLength % 2 !== 0)
      throw new InvalidFrameError('fp16 tensor length is not a multiple of 2')
    const h =
      bytes.byteOffset % 2 === 0
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
        : new Uint16Array(copyBytes(bytes).buffer)
    return f16ToF32(h)
  }
  throw new InvalidFrameError(`unsupported dtype ${String(dtype)}`)
}

/**
 * Index of the first NaN or ±Inf element, or -1. `x` is float32 values, or fp16 wire bytes /
 * their Uint16 view when `dtype` is FP16 (exponent bits all ones).
 */
export function firstNonFinite(x: Float32Array | Uint8Array, dtype: DType): number {
  if (x instanceof Float32Array) {
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i
    return -1
  }
  if (dtype === DType.FP32) return firstNonFinite(decodeTensor(x, dtype), dtype)
  const h =
    x.byteOffset % 2 === 0
      ? new Uint16Array(x.buffer, x.byteOffset, x.byteLength >> 1)
      : new Uint16Array(copyBytes(x).buffer)
  for (let i = 0; i < h.length; i++) if ((h[i] & 0x7c00) === 0x7c00) return i
  return -1
}

/** A fresh copy (not `slice()`: on a Node Buffer that is a view into the shared pool). */
function copyBytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const c = new Uint8Array(b.byteLength)
  c.set(b)
  return c
}

/**
 * A frame payload: header fields, then field 15 = tensor. The frame length, header, tag and
 * tensor length go out as ONE small buffer before the tensor: each part of a message costs its
 * own cipher update and iovec further down (noise, socket), so 2 parts instead of 5.
 */
function withTensor(header: Uint8Array, tensor: Uint8Array): Uint8ArrayList {
  const body =
    tensor.byteLength === 0
      ? header.byteLength
      : header.byteLength + 1 + varintLength(tensor.byteLength) + tensor.byteLength
  const prefix = new Uint8Array(varintLength(body) + body - tensor.byteLength)
  let o = writeVarint(body, prefix)
  prefix.set(header, o)
  o += header.byteLength
  if (tensor.byteLength === 0) return new Uint8ArrayList(prefix)
  prefix[o++] = TENSOR_TAG
  writeVarint(tensor.byteLength, prefix, o)
  return new Uint8ArrayList(prefix, tensor)
}

/** A length-prefixed ExpertRequest frame; `tensor` is referenced, not copied. */
export function encodeRequestFrame(
  req: Omit<ExpertRequest, 'tensor'>,
  tensor: Uint8Array
): Uint8ArrayList {
  return withTensor(ExpertRequest.encode({ ...req, tensor: EMPTY }), tensor)
}

/** A length-prefixed ExpertResponse frame; `tensor` is referenced, not copied. */
export function encodeResponseFrame(
  res: Omit<ExpertResponse, 'tensor'>,
  tensor: Uint8Array = EMPTY
): Uint8ArrayList {
  return withTensor(ExpertResponse.encode({ ...res, tensor: EMPTY }), tensor)
}

/**
 * Strict decoding (protocol/strict.ts): throws MalformedMessageError, with the status to answer
 * and the request id when it was readable. Tensor and other bytes fields are views into `frame`.
 */
export function decodeRequest(frame: Uint8Array): ExpertRequest {
  return decodeExpertRequest(frame)
}

export function decodeResponse(frame: Uint8Array): ExpertResponse {
  return decodeExpertResponse(frame)
}

export function decodeInfo(frame: Uint8Array): InfoResponse {
  return decodeInfoResponse(frame)
}

/** `0x…` 64-hex model id <-> 32 bytes. */
export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Error(`not a hex string: ${hex}`)
  return Uint8Array.from(Buffer.from(h, 'hex'))
}

export function bytesToHex(b: Uint8Array): string {
  return '0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}
