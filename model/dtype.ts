// Half-precision conversions (bf16, f16 <-> f32). Node 22 has no Float16Array, so these are
// table/bit based. Round-to-nearest-even like torch's `.to(torch.bfloat16)` / `.half()`.

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** bf16 bit patterns -> float32 (exact). */
export function bf16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const o = new Uint32Array(out.buffer, out.byteOffset, out.length)
  for (let i = 0; i < src.length; i++) o[i] = src[i] << 16
  return out
}

/** float32 -> bf16 bit patterns, round to nearest even (NaN stays NaN). */
export function f32ToBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length)
  for (let i = 0; i < s.length; i++) {
    const x = s[i]
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40
      continue
    }
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff
  }
  return out
}

let f16Table: Float32Array | null = null
function halfTable(): Float32Array {
  if (f16Table != null) return f16Table
  const t = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) !== 0 ? -1 : 1
    const e = (h >> 10) & 0x1f
    const m = h & 0x3ff
    if (e === 0) t[h] = sign * m * 2 ** -24
    else if (e === 31) t[h] = m === 0 ? sign * Infinity : NaN
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15)
  }
  f16Table = t
  return t
}

/** f16 bit patterns -> float32 (exact). */
export function f16ToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const t = halfTable()
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]]
  return out
}

/** One float -> f16 bits, round to nearest even, overflow to ±Inf. */
export function f32ToF16Bits(v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const e = (x >>> 23) & 0xff
  let m = x & 0x7fffff
  if (e === 0xff) return sign | 0x7c00 | (m !== 0 ? 0x200 : 0)
  const he = e - 127 + 15
  if (he >= 31) return sign | 0x7c00
  if (he <= 0) {
    if (he < -10) return sign
    m |= 0x800000
    const shift = 14 - he
    const half = 1 << (shift - 1)
    let r = m >>> shift
    const rem = m & ((1 << shift) - 1)
    if (rem > half || (rem === half && (r & 1) !== 0)) r++
    return sign | r
  }
  let r = (he << 10) | (m >>> 13)
  const rem = m & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++
  return sign | r
}

/** float32 -> f16 bit patterns. */
export function f32ToF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i])
  return out
}
