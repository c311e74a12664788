// Token selection: greedy, or temperature + top-p (nucleus) sampling with a seeded PRNG so that a
// given (seed, logits sequence) always yields the same tokens.

/** mulberry32: small, fast, good enough for sampling; deterministic per seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Index of the largest value (lowest index on ties). */
export function argmax(v: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i
  return best
}

/** Top-1 minus top-2 value (Infinity with a single value). */
export function topMargin(v: ArrayLike<number>): number {
  let a = -Infinity
  let b = -Infinity
  for (let i = 0; i < v.length; i++) {
    if (v[i] > a) {
      b = a
      a = v[i]
    } else if (v[i] > b) b = v[i]
  }
  return a - b
}

export interface SamplingOptions {
  /** 0 or undefined: greedy. */
  temperature?: number
  /** Nucleus mass in (0, 1]; 1 or undefined: no truncation. */
  topP?: number
}

/** Picks the next token from `logits`. `random` is only used when temperature > 0. */
export function sampleToken(
  logits: ArrayLike<number>,
  opts: SamplingOptions,
  random: () => number
): number {
  const temperature = opts.temperature ?? 0
  if (!(temperature > 0)) return argmax(logits)
  const topP = opts.topP ?? 1
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`)
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i]
  const probs = new Float64Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) {
    probs[i] = Math.exp((logits[i] - max) / temperature)
    sum += probs[i]
  }
  const order = Array.from({ length: logits.length }, (_, i) => i).sort(
    (a, b) => probs[b] - probs[a] || a - b
  )
  // Keep the smallest prefix whose mass reaches topP (always at least one token).
  let kept = 0
  let mass = 0
  while (kept < order.length && (kept === 0 || mass < topP * sum)) mass += probs[order[kept++]]
  let r = random() * mass
  for (let i = 0; i < kept; i++) {
    r -= probs[order[i]]
    if (r < 0) return order[i]
  }
  return order[kept - 1]
}
