// When two answers to the same expert call count as the same answer. Experts are deterministic
// functions of their input, but honest replicas still differ in the last bits: fp16 on the wire
// (each value rounded to 11 significant bits), another execution provider or thread count (a
// different summation order in the GEMMs), another batch composition (other GEMM blocking).
// Tampering moves whole rows: a 1 % rescale is a 1e-2 relative change of every row it touches.
// The distance is the worst row's relative L2 error, which an honest replica keeps near the
// rounding level; the threshold sits between the two, measured in docs/trust.md (bench:verify).

/**
 * Rows whose answers differ by more than this (relative L2, worst row) are different answers.
 * Measured (bench:verify, docs/trust.md): honest answers ≤ 1.0e-3 (the largest: TF32-rounded
 * GEMM inputs, as a GPU computes; other thread counts, batches and fp16 on the wire added
 * nothing on CPU), tampering ≥ 7.2e-3 (1 % noise; a 1 % rescale is 9.9e-3): a factor ≥ 3 on
 * the honest side and ≥ 2.4 on the tampering side.
 */
export const DEFAULT_VERIFY_TOLERANCE = 3e-3

/**
 * Floor of a row's norm, per element: rows whose outputs are all ~0 compare by absolute error
 * (1e-4 is below what fp16 resolves around 1 and far below any activation that matters).
 */
const NORM_FLOOR_PER_ELEMENT = 1e-4

/** The worst row's ‖a − b‖ / max(‖a‖, ‖b‖, floor); Infinity when the shapes differ or a value is not finite. */
export function outputDistance(a: Float32Array, b: Float32Array, hidden: number): number {
  if (a.length !== b.length || hidden <= 0 || a.length % hidden !== 0) return Infinity
  const floor = NORM_FLOOR_PER_ELEMENT * Math.sqrt(hidden)
  let worst = 0
  for (let r = 0; r < a.length; r += hidden) {
    let d2 = 0
    let a2 = 0
    let b2 = 0
    for (let i = r; i < r + hidden; i++) {
      const x = a[i]
      const y = b[i]
      d2 += (x - y) * (x - y)
      a2 += x * x
      b2 += y * y
    }
    if (!Number.isFinite(d2)) return Infinity
    const rel = Math.sqrt(d2) / Math.max(Math.sqrt(a2), Math.sqrt(b2), floor)
    if (rel > worst) worst = rel
  }
  return worst
}

export function sameAnswer(
  a: Float32Array,
  b: Float32Array,
  hidden: number,
  tolerance = DEFAULT_VERIFY_TOLERANCE
): boolean {
  return outputDistance(a, b, hidden) <= tolerance
}
