// Weight quantisation for the expert graphs (done once, at conversion time, in float32).
// Weights arrive as PyTorch Linear weights: W [N, K] row-major, y = x @ W^T.

/**
 * Largest |q| of an int8 weight: 7 bits, as onnxruntime's quantiser does with `reduce_range`.
 * DynamicQuantizeMatMul multiplies uint8 activations by int8 weights; on x86 without VNNI
 * (AVX2, e.g. AMD Zen 3) MLAS sums pairs of u8×s8 products into int16 with saturation, and
 * 2 × 255 × 127 overflows it: relative errors of ~0.3 were measured on such a machine (AMD EPYC Zen 3, 2026-12). With
 * |q| ≤ 63, 2 × 255 × 63 = 32130 fits, on every CPU, for half a bit of weight precision.
 */
export const INT8_WEIGHT_MAX = 63

/**
 * int8, symmetric, one scale per output column, for com.microsoft DynamicQuantizeMatMul
 * (which wants B as [K, N]): returns W^T quantised and scale[N] = max|W[n,:]| / INT8_WEIGHT_MAX.
 */
export function quantizeInt8PerColumn(
  w: Float32Array,
  n: number,
  k: number
): { q: Int8Array; scale: Float32Array } {
  if (w.length !== n * k)
    throw new Error(`quantizeInt8PerColumn: ${w.length} values for [${n}, ${k}]`)
  const scale = new Float32Array(n)
  const q = new Int8Array(k * n)
  for (let r = 0; r < n; r++) {
    let amax = 0
    const row = r * k
    for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[row + c]))
    const s = amax > 0 ? amax / INT8_WEIGHT_MAX : 1
    scale[r] = s
    const inv = 1 / s
    for (let c = 0; c < k; c++)
      q[c * n + r] = Math.max(
        -INT8_WEIGHT_MAX,
        Math.min(INT8_WEIGHT_MAX, Math.round(w[row + c] * inv))
      )
  }
  return { q, scale }
}

/**
 * 4-bit, asymmetric, blocks of `blockSize` along K, in com.microsoft MatMulNBits layout:
 * B uint8 [N, kBlocks, blockSize/2] (element 2i in the low nibble), scales float [N * kBlocks],
 * zero_points uint8 [N * ceil(kBlocks/2)] (block 2i in the low nibble). w ≈ (q - zp) * scale.
 * https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md#com.microsoft.MatMulNBits
 */
export function quantizeInt4Blocks(
  w: Float32Array,
  n: number,
  k: number,
  blockSize = 32
): { b: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array; kBlocks: number } {
  if (w.length !== n * k) throw new Error(`quantizeInt4Blocks: ${w.length} values for [${n}, ${k}]`)
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0)
    throw new Error(`block size ${blockSize} must be a power of 2 >= 16`)
  const kBlocks = Math.ceil(k / blockSize)
  const blob = blockSize / 2
  const zpRow = Math.ceil(kBlocks / 2)
  const b = new Uint8Array(n * kBlocks * blob)
  const scales = new Float32Array(n * kBlocks)
  const zeroPoints = new Uint8Array(n * zpRow)
  for (let r = 0; r < n; r++) {
    for (let blk = 0; blk < kBlocks; blk++) {
      const c0 = blk * blockSize
      const c1 = Math.min(k, c0 + blockSize)
      let mn = 0
      let mx = 0 // include 0 so that zero is exactly representable
      for (let c = c0; c < c1; c++) {
        const v = w[r * k + c]
        if (v < mn) mn = v
        if (v > mx) mx = v
      }
      const s = mx > mn ? (mx - mn) / 15 : 1
      const zp = Math.max(0, Math.min(15, Math.round(-mn / s)))
      scales[r * kBlocks + blk] = s
      zeroPoints[r * zpRow + (blk >> 1)] |= (blk & 1) === 0 ? zp : zp << 4
      const base = (r * kBlocks + blk) * blob
      for (let c = c0; c < c1; c++) {
        const qv = Math.max(0, Math.min(15, Math.round(w[r * k + c] / s) + zp))
        const i = c - c0
        b[base + (i >> 1)] |= (i & 1) === 0 ? qv : qv << 4
      }
      // Padding elements past K (when K % blockSize != 0) quantise to zp, i.e. 0.
      for (let i = c1 - c0; i < blockSize; i++) b[base + (i >> 1)] |= (i & 1) === 0 ? zp : zp << 4
    }
  }
  return { b, scales, zeroPoints, kBlocks }
}
