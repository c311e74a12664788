// The strict decoder against a reference protobuf decoder (protobufjs, reading the same .proto):
// on random messages both must agree; on mutated ones the strict decoder either refuses with a
// status or agrees. Plus the cases an outside client found (over-long varints, enum values out
// of range, integers too wide).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import protobuf from 'protobufjs'
import { DTYPES, STATUSES, decodeExpertRequest } from '../../../protocol/strict.js'
import { decodeInfo, decodeRequest, decodeResponse } from '../../../protocol/codec.js'
import { MalformedMessageError, Status } from '../../../protocol/errors.js'

const root = protobuf.loadSync(new URL('../../../protocol/expert.proto', import.meta.url).pathname)
const REQ = root.lookupType('ExpertRequest')
const RES = root.lookupType('ExpertResponse')
const INFO = root.lookupType('InfoResponse')

/** xorshift32: the same cases on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 2 ** 32
  }
}
const rand = rng(0x5eed)
const int = (n: number): number => Math.floor(rand() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]
const u32 = (): number => pick([0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1, int(2 ** 32)])
const u64 = (): string =>
  pick(['0', '1', '18446744073709551615', String(BigInt(int(2 ** 32)) * BigInt(int(2 ** 32)))])
const bytes = (max: number): Uint8Array => Uint8Array.from({ length: int(max) }, () => int(256))
const str = (): string => pick(['', 'x', 'bad shape', 'ünïcödé ✓', 'a'.repeat(300)])

function randomRequest(): Record<string, unknown> {
  const o: Record<string, unknown> = {
    requestId: u64(),
    modelId: bytes(40),
    layer: u32(),
    expert: u32(),
    dtype: int(3),
    rows: u32(),
    hidden: u32(),
    tensor: bytes(64)
  }
  if (rand() < 0.5)
    o.payment = {
      payer: bytes(21),
      payee: bytes(21),
      cumulativeAmount: bytes(33),
      signature: bytes(66),
      extra: bytes(4)
    }
  return o
}
function randomResponse(): Record<string, unknown> {
  return {
    requestId: u64(),
    status: int(STATUSES.length),
    message: str(),
    dtype: int(3),
    rows: u32(),
    hidden: u32(),
    signature: bytes(65),
    modelId: bytes(33),
    layer: u32(),
    expert: u32(),
    tensor: bytes(64)
  }
}
function randomInfo(): Record<string, unknown> {
  return {
    version: str(),
    models: Array.from({ length: int(3) }, () => ({
      modelId: bytes(33),
      manifestHash: bytes(33),
      shards: Array.from({ length: int(5) }, u32),
      experts: Array.from({ length: int(9) }, u32),
      hidden: u32(),
      numLayers: u32(),
      numExperts: u32()
    })),
    dtypes: Array.from({ length: int(3) }, () => 1 + int(2)),
    maxFrameBytes: u32(),
    maxRows: u32()
  }
}

/** One comparable shape for both decoders: bigints and Longs as strings, bytes as hex. */
function norm(v: unknown): unknown {
  if (v == null) return v
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (Array.isArray(v)) return v.map(norm)
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = norm(x)
    return o
  }
  return v
}
const ref = (T: protobuf.Type, buf: Uint8Array): unknown =>
  norm(T.toObject(T.decode(buf), { longs: String, enums: String, defaults: true, arrays: true }))

const types = [
  { T: REQ, make: randomRequest, ours: decodeRequest },
  { T: RES, make: randomResponse, ours: decodeResponse },
  { T: INFO, make: randomInfo, ours: decodeInfo }
]

test('enum tables match the .proto', () => {
  assert.deepEqual(DTYPES, Object.keys(root.lookupEnum('DType').values))
  assert.deepEqual(STATUSES, Object.keys(root.lookupEnum('Status').values))
  for (const [i, name] of STATUSES.entries())
    assert.equal(root.lookupEnum('Status').values[name], i)
})

test('random messages: the strict decoder reads exactly what protobufjs reads', () => {
  for (const { T, make, ours } of types) {
    for (let i = 0; i < 400; i++) {
      const buf = T.encode(T.fromObject(make())).finish()
      assert.deepEqual(norm(ours(buf)), ref(T, buf), `${T.name} #${i}`)
    }
  }
})

test('unpacked repeated fields read like packed ones', () => {
  const shards = [0, 3, 300]
  const packed = INFO.encode(INFO.fromObject({ models: [{ shards }] })).finish()
  // field 3 of ServedModel as three varint entries (tag 0x18) instead of one packed run
  const model = Uint8Array.from([0x18, 0, 0x18, 3, 0x18, 0xac, 0x02])
  const unpacked = Uint8Array.from([0x12, model.length, ...model])
  assert.deepEqual(decodeInfo(unpacked).models[0].shards, shards)
  assert.deepEqual(decodeInfo(packed).models[0].shards, shards)
})

/** Re-encodes one varint of `buf` (at `at`) with `pad` redundant continuation bytes. */
function overlong(buf: Uint8Array, at: number, pad: number): Uint8Array {
  let end = at
  while (buf[end] >= 0x80) end++
  const v = Array.from(buf.subarray(at, end + 1))
  v[v.length - 1] |= 0x80
  for (let i = 0; i < pad; i++) v.push(i === pad - 1 ? 0 : 0x80)
  return Uint8Array.from([...buf.subarray(0, at), ...v, ...buf.subarray(end + 1)])
}

function mutate(buf: Uint8Array): Uint8Array {
  const b = Array.from(buf)
  switch (int(6)) {
    case 0: // flip a byte
      if (b.length > 0) b[int(b.length)] = int(256)
      return Uint8Array.from(b)
    case 1: // insert a byte
      b.splice(int(b.length + 1), 0, int(256))
      return Uint8Array.from(b)
    case 2: // drop a byte
      b.splice(int(b.length), 1)
      return Uint8Array.from(b)
    case 3: // truncate
      return Uint8Array.from(b.slice(0, int(b.length + 1)))
    case 4: // duplicate a prefix (repeats fields)
      return Uint8Array.from([...b, ...b.slice(0, int(b.length + 1))])
    default: // make the varint at a random field start over-long
      return b.length === 0 ? buf : overlong(buf, 0, 1 + int(6))
  }
}

test('mutated messages: refused with a status, or read exactly as protobufjs reads them', () => {
  let refused = 0
  let accepted = 0
  for (const { T, make, ours } of types) {
    for (let i = 0; i < 1500; i++) {
      let buf = T.encode(T.fromObject(make())).finish()
      for (let k = 1 + int(3); k > 0; k--) buf = mutate(buf)
      let mine: unknown
      try {
        mine = norm(ours(buf))
      } catch (err) {
        assert.ok(err instanceof MalformedMessageError, `${T.name}: ${String(err)}`)
        assert.ok(STATUSES.includes(err.code), `a wire status, got ${err.code}`)
        refused++
        continue
      }
      accepted++
      let theirs: unknown
      try {
        theirs = ref(T, buf)
      } catch (err) {
        assert.fail(`${T.name}: accepted what protobufjs refuses (${String(err)}): ${hex(buf)}`)
      }
      assert.deepEqual(mine, theirs, `${T.name}: ${hex(buf)}`)
    }
  }
  // both outcomes exercised
  assert.ok(refused > 1000 && accepted > 200, `refused ${refused}, accepted ${accepted}`)
})
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const base = { requestId: '77', layer: 1, expert: 1, dtype: 1, rows: 1, hidden: 4 }
const encodeReq = (o: Record<string, unknown>): Uint8Array =>
  REQ.encode(REQ.fromObject({ ...base, ...o })).finish()

function refusal(buf: Uint8Array): MalformedMessageError {
  try {
    decodeExpertRequest(buf)
  } catch (err) {
    assert.ok(err instanceof MalformedMessageError)
    return err
  }
  assert.fail(`accepted ${hex(buf)}`)
}

test('an over-long varint is refused (not misread as another expert), with the request id', () => {
  const buf = encodeReq({})
  const at = Buffer.from(buf).indexOf(Buffer.from([0x18, 1, 0x20, 1])) + 3 // expert = 1
  for (const pad of [1, 4, 5, 8]) {
    const err = refusal(overlong(buf, at, pad))
    assert.equal(err.code, Status.BAD_REQUEST)
    assert.equal(err.requestId, 77n)
    assert.match(err.message, /expert/)
  }
  // the request id itself over-long: refused without an id to answer under
  assert.equal(refusal(overlong(buf, 1, 2)).requestId, undefined)
})

test('dtype outside the enum is BAD_DTYPE; integers too wide for uint32 are refused', () => {
  for (const dtype of [3, 99, 2 ** 31, 2 ** 32 + 1]) {
    const buf = Uint8Array.from([...encodeReq({ dtype: 0 }), 0x28, ...leb(dtype)])
    const err = refusal(buf)
    assert.equal(err.code, Status.BAD_DTYPE, `dtype ${dtype}`)
    assert.equal(err.requestId, 77n)
  }
  // dtype 0 (or absent) decodes; the node answers BAD_DTYPE for it (expert-service test)
  assert.equal(decodeExpertRequest(encodeReq({ dtype: 0 })).dtype, 'DTYPE_UNSPECIFIED')
  const wide = Uint8Array.from([...encodeReq({ layer: 0 }), 0x18, ...leb(2 ** 32 + 1)])
  assert.equal(refusal(wide).code, Status.BAD_REQUEST)
  assert.match(refusal(wide).message, /layer does not fit in 32 bits/)
})

test('repeated scalar fields, unknown wire types and bad UTF-8 are refused; unknown fields skipped', () => {
  const dup = Uint8Array.from([...encodeReq({}), 0x18, 2]) // layer twice
  assert.match(refusal(dup).message, /layer appears more than once/)
  assert.match(refusal(Uint8Array.from([...encodeReq({}), 0x1b])).message, /wire type 3/) // group
  const unknown = Uint8Array.from([...encodeReq({}), 0xa0, 0x01, 5, 0xaa, 0x01, 1, 9]) // 20, 21
  assert.equal(decodeExpertRequest(unknown).expert, 1)
  const badUtf8 = Uint8Array.from([0x1a, 2, 0xc3, 0x28])
  assert.throws(() => decodeResponse(badUtf8), /UTF-8/)
  // a status outside the enum in a response
  assert.throws(() => decodeResponse(Uint8Array.from([0x08, 1, 0x10, 42])), MalformedMessageError)
})

function leb(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 128) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}
