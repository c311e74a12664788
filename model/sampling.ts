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

/** Temperature-scaled weights of the nucleus: `order[0..kept)` are the kept token ids, most
 *  likely first, `weights` their unnormalised probabilities, `mass` the kept weights' sum. */
interface Nucleus {
  weights: Float64Array
  order: number[]
  kept: number
  mass: number
}

function nucleus(logits: ArrayLike<number>, temperature: number, topP: number): Nucleus {
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`)
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i]
  const weights = new Float64Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) {
    weights[i] = Math.exp((logits[i] - max) / temperature)
    sum += weights[i]
  }
  const order = Array.from({ length: logits.length }, (_, i) => i).sort(
    (a, b) => weights[b] - weights[a] || a - b
  )
  // Keep the smallest prefix whose mass reaches topP (always at least one token).
  let kept = 0
  let mass = 0
  while (kept < order.length && (kept === 0 || mass < topP * sum)) mass += weights[order[kept++]]
  return { weights, order, kept, mass }
}

/** Picks the next token from `logits`. `random` is only used when temperature > 0. */
export function sampleToken(
  logits: ArrayLike<number>,
  opts: SamplingOptions,
  random: () => number
): number {
  const temperature = opts.temperature ?? 0
  if (!(temperature > 0)) return argmax(logits)
  const { weights, order, kept, mass } = nucleus(logits, temperature, opts.topP ?? 1)
  let r = random() * mass
  for (let i = 0; i < kept; i++) {
    r -= weights[order[i]]
    if (r < 0) return order[i]
  }
  return order[kept - 1]
}

/** The exact distribution sampleToken draws from (vocab-sized, sums to 1; one-hot at the
 *  argmax at temperature 0): what speculative sampling compares the draft against. */
export function tokenDistribution(logits: ArrayLike<number>, opts: SamplingOptions): Float64Array {
  const temperature = opts.temperature ?? 0
  const p = new Float64Array(logits.length)
  if (!(temperature > 0)) {
    p[argmax(logits)] = 1
    return p
  }
  const topP = opts.topP ?? 1
  if (topP === 1) {
    // no nucleus to cut: the same values without sorting the vocabulary (a draft computes this
    // for every token it proposes at temperature > 0)
    let max = -Infinity
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i]
    let sum = 0
    for (let i = 0; i < logits.length; i++) {
      p[i] = Math.exp((logits[i] - max) / temperature)
      sum += p[i]
    }
    for (let i = 0; i < logits.length; i++) p[i] /= sum
    return p
  }
  const { weights, order, kept, mass } = nucleus(logits, temperature, topP)
  for (let i = 0; i < kept; i++) p[order[i]] = weights[order[i]] / mass
  return p
}

/** Draws an index from non-negative `weights` (need not sum to 1); null when they are all 0. */
export function sampleFrom(weights: ArrayLike<number>, random: () => number): number | null {
  let sum = 0
  for (let i = 0; i < weights.length; i++) sum += weights[i]
  if (!(sum > 0)) return null
  let r = random() * sum
  let last = -1
  for (let i = 0; i < weights.length; i++) {
    if (!(weights[i] > 0)) continue
    last = i
    r -= weights[i]
    if (r < 0) return i
  }
  return last
}
