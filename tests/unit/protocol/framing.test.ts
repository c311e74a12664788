import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, encodeFrame, encodeVarint, varintLength } from '../../../protocol/framing.js'
import { FrameTooLargeError, InvalidFrameError } from '../../../protocol/errors.js'

const flat = (l: Uint8ArrayList): Uint8Array => l.subarray()

test('varint round trip lengths', () => {
  for (const n of [0, 1, 127, 128, 16383, 16384, 2 ** 21, 64 * 1024 * 1024]) {
    assert.equal(encodeVarint(n).byteLength, varintLength(n))
    const d = new FrameDecoder(2 ** 30)
    const payload = new Uint8Array(Math.min(n, 1000))
    const bytes = flat(encodeFrame(payload))
    assert.equal(d.push(bytes)[0].byteLength, payload.byteLength)
  }
})

test('frames split at every byte boundary and several per chunk are recovered', () => {
  const a = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
  const b = new Uint8Array([9, 8, 7])
  const bytes = new Uint8Array([
    ...flat(encodeFrame(a)),
    ...flat(encodeFrame()),
    ...flat(encodeFrame(b))
  ])
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder(1024)
    const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))]
    assert.equal(frames.length, 3)
    assert.deepEqual(frames[0], a)
    assert.equal(frames[1].byteLength, 0)
    assert.deepEqual(frames[2], b)
    assert.equal(d.bufferedBytes, 0)
  }
})

test('a frame inside one chunk is a view (no copy)', () => {
  const bytes = flat(encodeFrame(new Uint8Array(100).fill(3)))
  const f = new FrameDecoder(1024).push(bytes)[0]
  assert.equal(f.buffer, bytes.buffer)
})

test('oversize length is rejected from the varint alone, before the body arrives', () => {
  const d = new FrameDecoder(1000)
  // only the 2-byte prefix of a 1001-byte frame: nothing else was sent, nothing allocated
  assert.throws(
    () => d.push(encodeVarint(1001)),
    (err: Error) => err instanceof FrameTooLargeError && (err as FrameTooLargeError).length === 1001
  )
  const d2 = new FrameDecoder(64 * 1024 * 1024)
  // a claimed 4 GiB frame: rejected, never allocated
  assert.throws(() => d2.push(encodeVarint(2 ** 32)), FrameTooLargeError)
  assert.equal(new FrameDecoder(1000).push(encodeVarint(1000)).length, 0) // exactly the cap is fine
})

test('a varint longer than 5 bytes is garbage', () => {
  assert.throws(
    () => new FrameDecoder(2 ** 40).push(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])),
    InvalidFrameError
  )
})

test('accepts Uint8ArrayList chunks', () => {
  const d = new FrameDecoder(100)
  const frames = d.push(encodeFrame(new Uint8Array([1, 2]), new Uint8Array([3])))
  assert.deepEqual(frames[0], new Uint8Array([1, 2, 3]))
})

test('an assembled frame ends on a 4-byte boundary, so an fp32 tensor at its end is viewed, not copied', async () => {
  const { encodeRequestFrame, decodeRequest, decodeTensor } =
    await import('../../../protocol/codec.js')
  const { DType } = await import('../../../protocol/expert.js')
  for (const rows of [1, 3, 64]) {
    const x = Float32Array.from({ length: rows * 8 }, (_, i) => i * 0.5 - 3)
    const wire = encodeRequestFrame(
      {
        requestId: 7n,
        modelId: new Uint8Array(32).fill(1),
        layer: 2,
        expert: 5,
        dtype: DType.FP32,
        rows,
        hidden: 8
      },
      new Uint8Array(x.buffer)
    ).subarray()
    const dec = new FrameDecoder(1 << 20)
    const frames: Uint8Array[] = []
    // 7-byte chunks: the frame spans many chunks and is assembled
    for (let i = 0; i < wire.byteLength; i += 7) frames.push(...dec.push(wire.subarray(i, i + 7)))
    assert.equal(frames.length, 1)
    assert.equal((frames[0].byteOffset + frames[0].byteLength) % 4, 0)
    const req = decodeRequest(frames[0])
    const y = decodeTensor(req.tensor, req.dtype)
    assert.equal(y.buffer, frames[0].buffer, 'the tensor is a view into the assembled frame')
    assert.deepEqual(y, x)
  }
})
