// The draft that needs no training (prompt lookup decoding): the longest recent n-gram of the
// context that ends the context and occurred earlier proposes what followed it then. Free to
// run, deterministic, and good where text repeats itself (code, quotes, lists, a model looping);
// elsewhere it proposes nothing and the round is a plain decode step.
import type { Draft, DraftProposal } from '../draft.js'

export interface NgramDraftOptions {
  /** Longest suffix looked up. @default 4 */
  maxNgram?: number
  /** Shortest suffix looked up. @default 2 */
  minNgram?: number
  /** Only the last so many tokens are searched (bounds the time per round). @default 4096 */
  window?: number
}

export class NgramDraft implements Draft {
  readonly name = 'ngram'
  private readonly maxN: number
  private readonly minN: number
  private readonly window: number

  constructor(opts: NgramDraftOptions = {}) {
    this.maxN = opts.maxNgram ?? 4
    this.minN = opts.minNgram ?? 2
    this.window = opts.window ?? 4096
    if (!(Number.isSafeInteger(this.minN) && this.minN >= 1 && this.maxN >= this.minN))
      throw new RangeError(
        `ngram draft: need 1 ≤ minNgram ≤ maxNgram, got ${this.minN}..${this.maxN}`
      )
  }

  async propose(context: readonly number[], k: number): Promise<DraftProposal> {
    const tokens = lookup(context, k, this.minN, this.maxN, this.window)
    return { tokens, q: tokens.map(() => null) }
  }
}

/** What followed the most recent earlier occurrence of the context's longest matching suffix
 *  (k tokens; past the end of the context, the copy continues from its own start). */
export function lookup(
  context: readonly number[],
  k: number,
  minN: number,
  maxN: number,
  window = Infinity
): number[] {
  const L = context.length
  if (k <= 0) return []
  const from = Math.max(0, L - window)
  for (let n = Math.min(maxN, L - 1); n >= minN; n--) {
    // occurrences starting at i, i + n ≤ L - 1 (something follows), most recent first
    for (let i = L - n - 1; i >= from; i--) {
      let j = 0
      while (j < n && context[i + j] === context[L - n + j]) j++
      if (j !== n) continue
      // copied as LZ77 does, overlapping: a loop shorter than k is proposed round after round
      const out: number[] = []
      for (let m = 0; m < k; m++) {
        const at = i + n + m
        out.push(at < L ? context[at] : out[at - L])
      }
      return out
    }
  }
  return []
}
