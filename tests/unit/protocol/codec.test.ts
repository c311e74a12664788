import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { DType, ExpertRequest, Status } from '../../../protocol/expert.js'
import { FrameDecoder } from '../../../protocol/framing.js'
import {
  decodeRequest,
  decodeResponse,
  decodeTensor,
  encodeRequestFrame,
  encodeResponseFrame,
  encodeTensor
} from '../../../protocol/codec.js'
import {
  sha256,
  signResponse,
  signedDigestMessage,
  signedMessage,
  verifyDigest,
  verifyResponse
} from '../../../protocol/signature.js'

const modelId = new Uint8Array(32).fill(7)

test('request frame with the tensor appended decodes like a normal protobuf message', () => {
  const x = Float32Array.from([1, -2, 3.5, 4, 5, 6])
  const frame = encodeRequestFrame(
    { requestId: 42n, modelId, layer: 3, expert: 5, dtype: DType.FP32, rows: 2, hidden: 3 },
    encodeTensor(x, DType.FP32)
  )
  const [payload] = new FrameDecoder(1 << 20).push(frame)
  const req = decodeRequest(payload)
  assert.equal(req.requestId, 42n)
  assert.equal(req.layer, 3)
  assert.equal(req.expert, 5)
  assert.deepEqual(decodeTensor(req.tensor, req.dtype), x)
  // identical to protons' own encoding of the whole message
  assert.deepEqual(ExpertRequest.decode(ExpertRequest.encode(req)), req)
  // two parts on the way down the stack: everything before the tensor in one buffer, then the
  // tensor itself (referenced, not copied); the bytes are exactly length ‖ protons' encoding
  const tensor = encodeTensor(x, DType.FP32)
  const f2 = encodeRequestFrame(
    { requestId: 42n, modelId, layer: 3, expert: 5, dtype: DType.FP32, rows: 2, hidden: 3 },
    tensor
  )
  const parts = [...f2]
  assert.equal(parts.length, 2)
  assert.equal(parts[1], tensor)
  const whole = ExpertRequest.encode({
    requestId: 42n,
    modelId,
    layer: 3,
    expert: 5,
    dtype: DType.FP32,
    rows: 2,
    hidden: 3,
    tensor: tensor as Uint8Array<ArrayBuffer>
  })
  assert.deepEqual(f2.subarray(), Uint8Array.from([whole.byteLength, ...whole]))
  // no tensor (an error response): one part
  assert.equal(
    [
      ...encodeResponseFrame({
        requestId: 1n,
        status: Status.BAD_SHAPE,
        message: 'x',
        dtype: DType.FP32,
        rows: 0,
        hidden: 0,
        signature: new Uint8Array(0),
        modelId,
        layer: 3,
        expert: 5
      })
    ].length,
    1
  )
})

test('fp16 tensors and unaligned buffers decode', () => {
  const x = Float32Array.from([0.5, -1, 2, 1024])
  const bytes = encodeTensor(x, DType.FP16)
  assert.equal(bytes.byteLength, 8)
  const unaligned = Buffer.alloc(9).subarray(1)
  unaligned.set(bytes) // a Buffer: slice() would be a view
  assert.deepEqual(decodeTensor(unaligned, DType.FP16), x)
  const b32 = new Uint8Array(17).subarray(1)
  b32.set(encodeTensor(x, DType.FP32))
  assert.deepEqual(decodeTensor(b32, DType.FP32), x)
})

test('response frame and signature verify; tampering fails', async () => {
  const key = await generateKeyPair('Ed25519')
  const input = new Uint8Array([1, 2, 3, 4])
  const output = new Uint8Array([5, 6, 7, 8])
  const fields = {
    requestId: 9n,
    modelId,
    layer: 1,
    expert: 2,
    dtype: DType.FP32,
    rows: 1,
    hidden: 1,
    input,
    output
  }
  assert.equal(signedMessage(fields).byteLength, 147) // the v2 layout (docs/protocol.md#signature)
  const signature = await signResponse(key, fields)
  const frame = encodeResponseFrame(
    {
      requestId: 9n,
      status: Status.OK,
      message: '',
      dtype: DType.FP32,
      rows: 1,
      hidden: 1,
      signature: new Uint8Array(signature),
      modelId,
      layer: 1,
      expert: 2
    },
    output
  )
  const res = decodeResponse(new FrameDecoder(1 << 20).push(frame)[0])
  assert.deepEqual(res.tensor, output)
  assert.deepEqual([res.modelId, res.layer, res.expert], [modelId, 1, 2]) // the echo
  assert.ok(await verifyResponse(key.publicKey, { ...fields, output: res.tensor }, res.signature))
  assert.equal(
    await verifyResponse(
      key.publicKey,
      { ...fields, output: new Uint8Array([5, 6, 7, 9]) },
      res.signature
    ),
    false
  )
  assert.equal(await verifyResponse(key.publicKey, { ...fields, layer: 2 }, res.signature), false)
})

test('the signed bytes bind model id, layer, expert, dtype, shape and both hashes', async () => {
  const key = await generateKeyPair('Ed25519')
  const input = new Uint8Array([1, 2, 3, 4])
  const output = new Uint8Array([5, 6, 7, 8])
  const fields = {
    requestId: 7n,
    modelId,
    layer: 1,
    expert: 2,
    dtype: DType.FP16,
    rows: 1,
    hidden: 2,
    input,
    output
  }
  const signature = await signResponse(key, fields)
  const digest = {
    requestId: 7n,
    modelId,
    layer: 1,
    expert: 2,
    dtype: DType.FP16,
    rows: 1,
    hidden: 2,
    inputHash: sha256(input),
    outputHash: sha256(output)
  }
  assert.deepEqual(signedDigestMessage(digest), signedMessage(fields))
  assert.ok(await verifyDigest(key.publicKey, digest, signature))
  // each bound field, changed alone, breaks the signature: none can be disowned or replayed
  const other = new Uint8Array(32).fill(9)
  for (const change of [
    { modelId: other },
    { layer: 0 },
    { expert: 3 },
    { dtype: DType.FP32 },
    { rows: 2 },
    { hidden: 1 },
    { inputHash: other },
    { outputHash: other },
    { requestId: 8n }
  ])
    assert.equal(
      await verifyDigest(key.publicKey, { ...digest, ...change }, signature),
      false,
      JSON.stringify(Object.keys(change))
    )
  assert.throws(
    () => signedDigestMessage({ ...digest, outputHash: new Uint8Array(31) }),
    /32 bytes/
  )
})

test('cached node:crypto Ed25519 signatures are the same bytes as @libp2p/crypto and cross-verify', async () => {
  const key = await generateKeyPair('Ed25519')
  const fields = {
    requestId: 1n,
    modelId,
    layer: 0,
    expert: 3,
    dtype: DType.FP16,
    rows: 1,
    hidden: 50,
    input: new Uint8Array(100).fill(1),
    output: new Uint8Array(100).fill(2)
  }
  const fast = await signResponse(key, fields)
  const slow = await key.sign(signedMessage(fields))
  assert.deepEqual(new Uint8Array(fast), new Uint8Array(slow))
  assert.ok(await key.publicKey.verify(signedMessage(fields), fast))
  assert.ok(await verifyResponse(key.publicKey, fields, slow))
  assert.equal(await verifyResponse(key.publicKey, fields, new Uint8Array(64)), false)
})
