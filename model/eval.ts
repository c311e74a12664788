// Perplexity of a model over a text: the token stream is cut into windows of `window` tokens,
// each fed as <s> + the window's tokens, and every token of the window is scored (its
// log-probability given <s> and the tokens before it in the window). The windows do not overlap,
// so every token of the text is scored exactly once. The forward pass is generation's prefill
// (model/generate.ts), over whichever ExpertExecutor it is given: local or remote experts.
import { forwardAll, type ScoreOptions } from './generate.js'

export interface PerplexityOptions extends ScoreOptions {
  /** Token ids of the text, without BOS. */
  ids: number[]
  /** Tokens scored per forward pass (the pass is window + 1 long, with BOS). */
  window: number
  bosTokenId: number
  /** Called after every window with the tokens scored so far. */
  onProgress?: (done: number, total: number) => void
}

export interface PerplexityResult {
  tokens: number
  windows: number
  /** Mean negative log-likelihood per token, in nats. */
  nll: number
  /** exp(nll). */
  perplexity: number
  /** True when some window used a substitute expert (an executor reported one unavailable). */
  degraded: boolean
}

/** log p(target) from one row of logits, in float64. */
export function logProb(row: ArrayLike<number>, target: number): number {
  let max = -Infinity
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i]
  let sum = 0
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max)
  return row[target] - max - Math.log(sum)
}

export async function perplexity(o: PerplexityOptions): Promise<PerplexityResult> {
  const V = o.dense.config.vocabSize
  if (!Number.isSafeInteger(o.window) || o.window < 1)
    throw new RangeError(`perplexity: window must be a positive integer, got ${o.window}`)
  if (o.ids.length === 0) throw new RangeError('perplexity: the text has no tokens')
  const bad = o.ids.find((id) => !Number.isSafeInteger(id) || id < 0 || id >= V)
  if (bad !== undefined)
    throw new RangeError(`perplexity: token id ${bad} is outside the vocabulary (${V})`)
  let nll = 0
  let windows = 0
  let degraded = false
  for (let start = 0; start < o.ids.length; start += o.window) {
    o.signal?.throwIfAborted()
    const w = o.ids.slice(start, start + o.window)
    const r = await forwardAll(o, [o.bosTokenId, ...w])
    degraded ||= r.degraded
    // Row t predicts the token at t + 1: rows 0..len-1 score w[0..len-1].
    for (let t = 0; t < w.length; t++) nll -= logProb(r.logits.subarray(t * V, (t + 1) * V), w[t])
    windows++
    o.onProgress?.(start + w.length, o.ids.length)
  }
  const mean = nll / o.ids.length
  return { tokens: o.ids.length, windows, nll: mean, perplexity: Math.exp(mean), degraded }
}
