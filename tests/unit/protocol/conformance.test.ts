// The worked examples of docs/protocol.md, checked against the text of that file: an outside
// implementation relies on them, so they must stay exact.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { canonicalJson, computeModelId } from '../../../model/bundle/manifest.js'
import {
  decodeRequest,
  encodeRequestFrame,
  encodeResponseFrame,
  encodeTensor,
  hexToBytes
} from '../../../protocol/codec.js'
import { DType, Status } from '../../../protocol/expert.js'

const doc = await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')
const EXAMPLE_ID = '0x8c90da88597cec7e15054b33934632097ee1219c8b19bbb4befdcfca0acfcc72'

test('model id example: the canonical manifest bytes in the docs hash to the documented id', () => {
  const block = /<!-- model-id-example -->\n```json\n(.*)\n```/.exec(doc)
  assert.ok(block != null, 'the example block is in docs/protocol.md')
  const text = block[1]
  assert.equal(Buffer.byteLength(text), 1616)
  assert.equal(canonicalJson(JSON.parse(text)), text, 'the example is canonical as printed')
  const id = /sha256 of those bytes = model id\n`(0x[0-9a-f]{64})`/.exec(doc)?.[1]
  assert.equal(id, EXAMPLE_ID)
  assert.equal('0x' + createHash('sha256').update(text, 'utf8').digest('hex'), id)
  assert.equal(computeModelId(JSON.parse(text)), id)
  // key order and whitespace of manifest.json do not matter
  const reversed = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(reversed)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .map(([k, x]) => [k, reversed(x)])
          )
        : v
  const pretty = JSON.stringify(reversed(JSON.parse(text)), null, 2)
  assert.notEqual(pretty.slice(0, 20), text.slice(0, 20))
  assert.equal(computeModelId(JSON.parse(pretty)), id)
})

test('request frame example: exactly the documented bytes, and it decodes back', () => {
  const frame = encodeRequestFrame(
    {
      requestId: 1n,
      modelId: hexToBytes(EXAMPLE_ID),
      layer: 0,
      expert: 1,
      dtype: DType.FP32,
      rows: 1,
      hidden: 2
    },
    encodeTensor(Float32Array.from([1, -2]), DType.FP32)
  ).subarray()
  const documented =
    '36' +
    '0801' +
    '1220' +
    EXAMPLE_ID.slice(2) +
    '2001' +
    '2801' +
    '3001' +
    '3802' +
    '7a08' +
    '0000803f000000c0'
  assert.equal(Buffer.from(frame).toString('hex'), documented)
  assert.match(doc, /36 {2,}frame length 54/)
  const req = decodeRequest(frame.subarray(1))
  assert.deepEqual([req.layer, req.expert, req.rows, req.hidden], [0, 1, 1, 2])
  const answer = encodeResponseFrame({
    requestId: 1n,
    status: Status.BAD_DTYPE,
    message: 'x',
    dtype: DType.DTYPE_UNSPECIFIED,
    rows: 0,
    hidden: 0,
    signature: new Uint8Array(0),
    modelId: new Uint8Array(0),
    layer: 0,
    expert: 0
  }).subarray()
  assert.equal(Buffer.from(answer).toString('hex'), '07080110051a0178')
  assert.ok(doc.includes('`07 08 01 10 05 1a 01 78`'))
})
