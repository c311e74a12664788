// IEEE 754 binary16 <-> binary32, round to nearest even (as numpy `astype(float16)` and
// torch `.half()`). Node 22 has no Float16Array; these are bit-level and allocation-free when
// given an output. Wire tensors are little-endian (docs/protocol.md#tensors).

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** One float32 -> half bits, round to nearest even; NaN stays NaN, overflow goes to ±Inf. */
export function f32ToF16Bits (value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign // underflows to ±0 (even after rounding: < half the smallest subnormal)
    mant |= 0x800000 // implicit leading 1
    const shift = 14 - e // 14..24
    const half = 1 << (shift - 1)
    const rest = mant & ((1 << shift) - 1)
    let m = mant >>> shift
    if (rest > half || (rest === half && (m & 1) === 1)) m++
    return sign | m // a carry into the exponent field is the correct smallest normal
  }
  let h = sign | (e << 10) | (mant >>> 13)
  const rest = mant & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++ // carry may roll into Inf: correct
  return h
}

let table: Float32Array | null = null
/** All 65536 half values as float32 (256 KiB, built once). */
function halfTable (): Float32Array {
  if (table != null) return table
  const t = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const s = (h & 0x8000) !== 0 ? -1 : 1
    const e = (h >>> 10) & 0x1f
    const m = h & 0x3ff
    if (e === 0) t[h] = s * m * 2 ** -24
    else if (e === 31) t[h] = m === 0 ? s * Infinity : NaN
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15)
  }
  table = t
  return t
}

/** float32 array -> half bit patterns. */
export function f32ToF16 (src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i])
  return out
}

/** half bit patterns -> float32 (exact). */
export function f16ToF32 (src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const t = halfTable()
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]]
  return out
}
