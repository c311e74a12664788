// A strict protobuf decoder for the pov messages (docs/protocol.md#decoding-rules). Generated
// decoders (protons, protobufjs) accept what a node must not: a uint32 varint longer than
// 5 bytes is read as its low bits and the bytes after its 5th are skipped, so a request a
// standard decoder reads as expert 1 was served as expert 0; out-of-range enum values and
// integers too wide for their field pass through. Here every varint must be minimal (no
// trailing 0x80…00 padding) and fit its field, enums must be known values, strings valid
// UTF-8, and a non-repeated field may appear once. A violation is reported with the request id
// when that field was readable, so the node can answer that call with a status instead of
// resetting the stream. Unknown fields are skipped (forward compatibility); packed and unpacked
// repeated scalars are both accepted, as protobuf requires.
import { Status, type ExpertRequest, type ExpertResponse, type InfoResponse } from './expert.js'
import { MalformedMessageError } from './errors.js'

type Kind = 'uint32' | 'uint64' | 'bytes' | 'string' | 'enum' | 'message'

interface Field {
  name: string
  kind: Kind
  repeated?: boolean
  /** Wire value -> decoded value, for enums. */
  values?: readonly string[]
  /** For enums: the status an unknown value is refused with. */
  badEnum?: Status
  message?: Schema
}

type Schema = ReadonlyMap<number, Field>

/** Structure lost (truncation, bad wire type, runaway varint): nothing after it can be read. */
class Fatal extends Error {}

const VARINT = 0
const I64 = 1
const LEN = 2
const I32 = 5
const MAX_FIELD_NUMBER = 2 ** 29 - 1
const UTF8 = new TextDecoder('utf-8', { fatal: true })
const EMPTY = new Uint8Array(0)

/** Wire values of the enums, in order (tests/unit/protocol/strict.test.ts checks them against the .proto). */
export const DTYPES = ['DTYPE_UNSPECIFIED', 'FP32', 'FP16'] as const
export const STATUSES = [
  'OK',
  'BAD_REQUEST',
  'UNKNOWN_MODEL',
  'EXPERT_NOT_HOSTED',
  'BAD_SHAPE',
  'BAD_DTYPE',
  'PAYMENT_REQUIRED',
  'PAYMENT_INVALID',
  'OVERLOADED',
  'INTERNAL',
  'TIMEOUT'
] as const

const schema = (fields: Array<[number, Field]>): Schema => new Map(fields)

const VOUCHER = schema([
  [1, { name: 'payer', kind: 'bytes' }],
  [2, { name: 'payee', kind: 'bytes' }],
  [3, { name: 'cumulativeAmount', kind: 'bytes' }],
  [4, { name: 'signature', kind: 'bytes' }],
  [5, { name: 'extra', kind: 'bytes' }]
])

const REQUEST = schema([
  [1, { name: 'requestId', kind: 'uint64' }],
  [2, { name: 'modelId', kind: 'bytes' }],
  [3, { name: 'layer', kind: 'uint32' }],
  [4, { name: 'expert', kind: 'uint32' }],
  [5, { name: 'dtype', kind: 'enum', values: DTYPES, badEnum: Status.BAD_DTYPE }],
  [6, { name: 'rows', kind: 'uint32' }],
  [7, { name: 'hidden', kind: 'uint32' }],
  [8, { name: 'payment', kind: 'message', message: VOUCHER }],
  [15, { name: 'tensor', kind: 'bytes' }]
])

const RESPONSE = schema([
  [1, { name: 'requestId', kind: 'uint64' }],
  [2, { name: 'status', kind: 'enum', values: STATUSES, badEnum: Status.BAD_REQUEST }],
  [3, { name: 'message', kind: 'string' }],
  [4, { name: 'dtype', kind: 'enum', values: DTYPES, badEnum: Status.BAD_DTYPE }],
  [5, { name: 'rows', kind: 'uint32' }],
  [6, { name: 'hidden', kind: 'uint32' }],
  [7, { name: 'signature', kind: 'bytes' }],
  [8, { name: 'modelId', kind: 'bytes' }],
  [9, { name: 'layer', kind: 'uint32' }],
  [10, { name: 'expert', kind: 'uint32' }],
  [15, { name: 'tensor', kind: 'bytes' }]
])

const SERVED_MODEL = schema([
  [1, { name: 'modelId', kind: 'bytes' }],
  [2, { name: 'manifestHash', kind: 'bytes' }],
  [3, { name: 'shards', kind: 'uint32', repeated: true }],
  [4, { name: 'experts', kind: 'uint32', repeated: true }],
  [5, { name: 'hidden', kind: 'uint32' }],
  [6, { name: 'numLayers', kind: 'uint32' }],
  [7, { name: 'numExperts', kind: 'uint32' }]
])

const INFO = schema([
  [1, { name: 'version', kind: 'string' }],
  [2, { name: 'models', kind: 'message', repeated: true, message: SERVED_MODEL }],
  [
    3,
    { name: 'dtypes', kind: 'enum', repeated: true, values: DTYPES, badEnum: Status.BAD_REQUEST }
  ],
  [4, { name: 'maxFrameBytes', kind: 'uint32' }],
  [5, { name: 'maxRows', kind: 'uint32' }]
])

export function decodeExpertRequest(buf: Uint8Array): ExpertRequest {
  return decodeTop(buf, REQUEST) as unknown as ExpertRequest
}
export function decodeExpertResponse(buf: Uint8Array): ExpertResponse {
  return decodeTop(buf, RESPONSE) as unknown as ExpertResponse
}
export function decodeInfoResponse(buf: Uint8Array): InfoResponse {
  return decodeTop(buf, INFO) as unknown as InfoResponse
}

interface Ctx {
  errors: Array<{ code: Status; message: string }>
  /** The top-level object being filled (its request id may be readable after a fatal error). */
  top: Record<string, unknown>
  /** The request id field itself broke a rule: it cannot be trusted for the answer. */
  idBroken: boolean
}

function decodeTop(buf: Uint8Array, s: Schema): Record<string, unknown> {
  const ctx: Ctx = { errors: [], top: {}, idBroken: false }
  try {
    decodeMessage(buf, 0, buf.byteLength, s, ctx, '')
  } catch (err) {
    if (!(err instanceof Fatal)) throw err
    ctx.errors.push({ code: Status.BAD_REQUEST, message: err.message })
  }
  if (ctx.errors.length > 0) {
    const id = ctx.idBroken ? undefined : (ctx.top.requestId as bigint | undefined)
    // the most specific code wins (BAD_DTYPE over BAD_REQUEST)
    const first = ctx.errors.find((e) => e.code !== Status.BAD_REQUEST) ?? ctx.errors[0]
    throw new MalformedMessageError(first.code, first.message, seenId(ctx) ? id : undefined)
  }
  return ctx.top
}

/** A request id of 0 is the default, not a value read from the message. */
function seenId(ctx: Ctx): boolean {
  return typeof ctx.top.requestId === 'bigint' && ctx.top.requestId !== 0n
}

function defaults(s: Schema): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (const f of s.values()) {
    if (f.repeated === true) o[f.name] = []
    else if (f.kind === 'uint32') o[f.name] = 0
    else if (f.kind === 'uint64') o[f.name] = 0n
    else if (f.kind === 'bytes') o[f.name] = EMPTY
    else if (f.kind === 'string') o[f.name] = ''
    else if (f.kind === 'enum') o[f.name] = (f.values as readonly string[])[0]
  }
  return o
}

function decodeMessage(
  buf: Uint8Array,
  start: number,
  end: number,
  s: Schema,
  ctx: Ctx,
  path: string
): Record<string, unknown> {
  const obj = defaults(s)
  if (path === '') ctx.top = obj
  let seen = 0 // bit n: known field n was read (known field numbers are < 31)
  let pos = start
  while (pos < end) {
    readVarint(buf, pos, end)
    pos = V.end
    if (!V.minimal) report(ctx, Status.BAD_REQUEST, `${path}field tag is a non-minimal varint`)
    if (V.big != null || V.value > 0xffffffff) throw new Fatal(`${path}field tag out of range`)
    const no = Math.floor(V.value / 8)
    const wt = V.value % 8
    if (no === 0 || no > MAX_FIELD_NUMBER) throw new Fatal(`${path}field number ${no} is invalid`)
    const f = s.get(no)
    // the value's extent, by wire type (a varint value stays in V)
    let vStart = pos
    let vEnd: number
    if (wt === VARINT) {
      readVarint(buf, pos, end)
      vEnd = V.end
    } else if (wt === I64) vEnd = pos + 8
    else if (wt === I32) vEnd = pos + 4
    else if (wt === LEN) {
      readVarint(buf, pos, end)
      if (!V.minimal)
        report(ctx, Status.BAD_REQUEST, `${path}length of field ${no} is a non-minimal varint`)
      if (V.big != null || V.value > end - V.end)
        throw new Fatal(`${path}field ${no} runs past the end of its message`)
      vStart = V.end
      vEnd = V.end + V.value
    } else
      throw new Fatal(
        `${path}field ${no} has wire type ${wt} (groups and unknown types are not allowed)`
      )
    if (vEnd > end) throw new Fatal(`${path}field ${no} runs past the end of its message`)
    pos = vEnd
    if (f == null) continue // unknown field: skipped
    const isId = path === '' && f.name === 'requestId'
    if (f.repeated !== true) {
      if ((seen & (1 << no)) !== 0) {
        report(ctx, Status.BAD_REQUEST, `field ${path}${f.name} appears more than once`, isId)
        continue
      }
      seen |= 1 << no
    }
    const scalar = f.kind === 'uint32' || f.kind === 'uint64' || f.kind === 'enum'
    if (scalar && f.repeated === true && wt === LEN) {
      // packed: a run of varints
      let p = vStart
      while (p < vEnd) {
        readVarint(buf, p, vEnd)
        p = V.end
        const val = scalarValue(f, ctx, path, false)
        if (val !== undefined) (obj[f.name] as unknown[]).push(val)
      }
      continue
    }
    if (scalar) {
      if (wt !== VARINT) {
        report(
          ctx,
          Status.BAD_REQUEST,
          `field ${path}${f.name} must be a varint (wire type 0), got wire type ${wt}`,
          isId
        )
        continue
      }
      const val = scalarValue(f, ctx, path, isId)
      if (val === undefined) continue
      if (f.repeated === true) (obj[f.name] as unknown[]).push(val)
      else obj[f.name] = val
      continue
    }
    if (wt !== LEN) {
      report(
        ctx,
        Status.BAD_REQUEST,
        `field ${path}${f.name} must be length-delimited (wire type 2), got ${wt}`
      )
      continue
    }
    if (f.kind === 'bytes') obj[f.name] = buf.subarray(vStart, vEnd)
    else if (f.kind === 'string') {
      try {
        obj[f.name] = UTF8.decode(buf.subarray(vStart, vEnd))
      } catch {
        report(ctx, Status.BAD_REQUEST, `field ${path}${f.name} is not valid UTF-8`)
      }
    } else {
      const m = decodeMessage(buf, vStart, vEnd, f.message as Schema, ctx, `${path}${f.name}.`)
      if (f.repeated === true) (obj[f.name] as unknown[]).push(m)
      else obj[f.name] = m
    }
  }
  return obj
}

function report(ctx: Ctx, code: Status, message: string, isId = false): void {
  if (isId) ctx.idBroken = true
  ctx.errors.push({ code, message })
}

/** The value of the varint in V for field `f`, or undefined after reporting why not. */
function scalarValue(
  f: Field,
  ctx: Ctx,
  path: string,
  isId: boolean
): number | bigint | string | undefined {
  const name = path + f.name
  if (!V.minimal) {
    report(
      ctx,
      f.badEnum ?? Status.BAD_REQUEST,
      `field ${name} is a non-minimal (over-long) varint`,
      isId
    )
    return undefined
  }
  if (f.kind === 'uint64') return V.big ?? BigInt(V.value)
  if (V.big != null || V.value > 0xffffffff) {
    report(ctx, f.badEnum ?? Status.BAD_REQUEST, `field ${name} does not fit in 32 bits`, isId)
    return undefined
  }
  if (f.kind === 'uint32') return V.value
  const values = f.values as readonly string[]
  if (V.value < values.length) return values[V.value]
  report(ctx, f.badEnum ?? Status.BAD_REQUEST, `field ${name} has unknown value ${V.value}`, isId)
  return undefined
}

interface Varint {
  /** Exact when below 2^53, else `big` holds it. */
  value: number
  big: bigint | null
  end: number
  /** No redundant trailing zero groups. */
  minimal: boolean
}

/** The last varint read (one scratch object: decoding allocates nothing per varint). */
const V: Varint = { value: 0, big: null, end: 0, minimal: true }

/** Reads an unsigned LEB128 varint at `pos` into V: at most 10 bytes and 64 bits (else fatal). */
function readVarint(buf: Uint8Array, pos: number, end: number): void {
  let value = 0
  let scale = 1
  let big: bigint | null = null
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) throw new Fatal('truncated varint')
    const b = buf[pos + i]
    const low = b & 0x7f
    if (i < 7) value += low * scale
    else {
      big ??= BigInt(value)
      big += BigInt(low) << BigInt(7 * i)
    }
    scale *= 128
    if ((b & 0x80) === 0) {
      if (i === 9 && b > 1) throw new Fatal('varint exceeds 64 bits')
      if (big != null && big <= BigInt(Number.MAX_SAFE_INTEGER)) {
        value = Number(big)
        big = null
      }
      V.value = value
      V.big = big
      V.end = pos + i + 1
      V.minimal = i === 0 || b !== 0
      return
    }
  }
  throw new Fatal('varint longer than 10 bytes')
}
