// What a reply may still spend, in tokens, as it goes: the tokens left under max_tokens and,
// under a cost cap, the rows the money left pays. A row (one position through every layer's
// experts) costs units × price when all goes well, more when a call is hedged, spot-checked or
// retried, and a speculative round pays for its rejected rows too; so the budget is not counted
// once up front but re-read at every position from what was actually paid, at the dearest cost
// per row seen so far. A JSON-constrained reply closes within it (router/gateway/json-grammar.ts),
// and speculative rounds draft no more than leaves the rows its closing needs.

export interface ReplyBudgetOptions {
  /** The request's max_tokens. */
  maxTokens: number
  /** What a row costs when nothing is hedged or retried (units per token × the dearest price). */
  rowCost: bigint
  /** Wei the reply may still spend (the tightest cap), null when no cap applies. */
  moneyLeft: () => bigint | null
}

export class ReplyBudget {
  private rowCost: bigint

  constructor(private readonly o: ReplyBudgetOptions) {
    this.rowCost = o.rowCost > 0n ? o.rowCost : 0n
  }

  /** The cost per row planned with: the dearest seen (never below the undisturbed price). */
  get costPerRow(): bigint {
    return this.rowCost
  }

  /** A decode round of `rows` rows cost `cost` (hedges, spot checks, retries included). */
  observe(cost: bigint, rows: number): void {
    if (rows <= 0 || cost <= 0n) return
    const per = (cost + BigInt(rows) - 1n) / BigInt(rows)
    if (per > this.rowCost) this.rowCost = per
  }

  /** Rows the money left pays (Infinity without a cap or at price 0). */
  rows(): number {
    const left = this.o.moneyLeft()
    if (left == null || this.rowCost === 0n) return Infinity
    return left <= 0n ? 0 : Number(left / this.rowCost)
  }

  /**
   * Tokens the reply may still take from position `n` on, that position counted: asked while its
   * logits are masked, when its row is paid already, so the money left pays the ones after it.
   */
  tokensLeft(n: number): number {
    return Math.min(this.o.maxTokens - n, 1 + this.rows())
  }

  /** Whether the money left pays one more row (the next position's). */
  paysNextRow(): boolean {
    return this.rows() >= 1
  }

  /**
   * Most tokens a speculative round at position `n` may draft: the round pays 1 + k rows and may
   * keep only one token (all drafts rejected), so k leaves the rows the `closing` tokens need.
   */
  draftLimit(closing: number): number {
    const k = this.rows() - 1 - closing
    return k > 0 ? k : 0
  }
}
