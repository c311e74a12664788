// The draft of speculative decoding: something cheap and local that guesses the next few tokens,
// which the target model (the network) then checks in one pass over every guessed position. A
// draft never decides a token: at temperature 0 the target's argmax does, at temperature > 0
// speculative sampling keeps the target's distribution exactly. A draft only changes how many
// tokens one round of expert calls yields.

/** What a draft proposes for one round. */
export interface DraftProposal {
  /** Proposed continuation, 0..k tokens. */
  tokens: number[]
  /** For each proposed token, the draft distribution q (vocab-sized, sums to 1) it was drawn
   *  from under the round's sampling settings; null: the draft is deterministic there (q is
   *  one-hot at that token). Only read at temperature > 0. */
  q: Array<Float32Array | null>
}

/** Sampling settings of the generation, so a model draft can draw from the same transform
 *  (temperature, top-p) the target uses. */
export interface DraftSampling {
  /** 0: greedy. */
  temperature: number
  topP: number
  /** The generation's PRNG; only drawn from at temperature > 0. */
  random: () => number
}

export interface Draft {
  /** For logs and `--json`: e.g. 'ngram', 'tiny-en-draft'. */
  readonly name: string
  /** Up to `k` tokens continuing `context` (prompt + every token accepted so far). A stateful
   *  draft (own KV cache) keeps what it computed for the longest common prefix with the last
   *  context it saw and recomputes the rest: that is its roll-back after a rejection. */
  propose(context: readonly number[], k: number, sampling: DraftSampling): Promise<DraftProposal>
  /** Frees what the draft holds (ORT sessions, caches). */
  close?(): Promise<void>
}
