// THE generation loop, shared by the single-process path (`pov generate --local`) and the
// distributed router. The dense part runs in a DenseRuntime; experts are reached only through an
// ExpertExecutor (local ORT, or remote over libp2p), one call per (layer, expert) per forward pass,
// all experts of a layer in parallel.
import type { DenseRuntime, KvCache } from './dense/runtime.js'
import { ExpertUnavailableError, type ExpertExecutor } from './experts.js'
import { seededRandom, sampleToken, tokenDistribution, topMargin } from './sampling.js'
import { DraftLength, speculativeAccept, type SpeculativeOptions } from './speculative.js'
import type { DraftProposal } from './draft.js'

export { ExpertUnavailableError, type ExpertExecutor, type SpeculativeOptions }

/** Thrown when a token has no available expert left in a layer. */
export class NoExpertAvailableError extends Error {
  override name = 'NoExpertAvailableError'
  constructor(
    readonly layer: number,
    lastFailure?: string
  ) {
    super(
      `no expert of layer ${layer} is available — ${lastFailure ?? 'every expert call failed with ExpertUnavailableError'}`
    )
  }
}

export function isExpertUnavailable(err: unknown): err is ExpertUnavailableError {
  return (
    err instanceof ExpertUnavailableError ||
    (err instanceof Error && err.name === 'ExpertUnavailableError')
  )
}

export interface GeneratedToken {
  id: number
  /** 0-based index among the generated tokens. */
  index: number
  /** Logits of the last position (vocab), when `returnLogits` is set. */
  logits?: Float32Array
  /** Top-1 minus top-2 logit. */
  margin: number
  /** True when this token's computation (this pass, or the KV cache it attends to) used a
   *  substitute expert because an executor reported ExpertUnavailableError. */
  degraded: boolean
  phase: 'prefill' | 'decode'
}

/** Reported once per layer per forward pass (for metrics, logs and tests). */
export interface MoeEvent {
  layer: number
  phase: 'prefill' | 'decode'
  /** Tokens in this pass. */
  tokens: number
  /** Expert calls made, in completion order of their batches: one per (expert, attempt). */
  calls: Array<{ expert: number; rows: number; ok: boolean }>
  /** Experts that reported ExpertUnavailableError in this layer. */
  unavailable: number[]
  /** Tokens routed to at least one substitute expert. */
  degradedTokens: number
  ms: number
}

export interface GenerateOptions {
  dense: DenseRuntime
  experts: ExpertExecutor
  promptIds: number[]
  maxTokens: number
  /** 0 / undefined: greedy. */
  temperature?: number
  /** Nucleus mass for sampling. */
  topP?: number
  /** PRNG seed for sampling. @default 0 */
  seed?: number
  /** Stop after emitting this token; null: never. @default dense.config.eosTokenId */
  eosTokenId?: number | null
  returnLogits?: boolean
  /**
   * Rewrites a position's logits in place before its token is chosen or a draft's token judged
   * (penalties, a grammar's mask: -Infinity forbids a token); `generated` holds the tokens
   * chosen before that position.
   */
  processLogits?: (logits: Float32Array, generated: readonly number[]) => void
  signal?: AbortSignal
  onMoe?: (event: MoeEvent) => void
  /** Speculative decoding: a draft proposes tokens, one pass of the target over them keeps the
   *  longest accepted prefix plus its own next token. Unset: one token per pass. */
  speculative?: SpeculativeOptions
  /** Reported after every decode round (for benches and logs). */
  onRound?: (round: RoundEvent) => void
  /**
   * Most tokens the next speculative round may draft, given the tokens so far (a cost budget:
   * a round pays for its rejected rows too). Unset: no limit beyond maxTokens.
   */
  draftLimit?: (generated: readonly number[]) => number
}

/** One decode round: a pass of the target over the last token and the drafted ones. */
export interface RoundEvent {
  /** Tokens asked of the draft (0: a plain decode step). */
  asked: number
  proposed: number
  accepted: number
  /** Tokens this round emitted (accepted + the target's own, fewer at eos). */
  emitted: number
  draftMs: number
  verifyMs: number
}

export interface GenerationTimings {
  promptTokens: number
  generatedTokens: number
  /** Prefill forward pass + first token (time to first token, excluding session load). */
  prefillMs: number
  /** All decode passes together. */
  decodeMs: number
  /** Time spent waiting for experts (wall time of the parallel calls per layer), all passes. */
  expertMs: number
  expertCalls: number
  /** promptTokens / prefill seconds. */
  prefillTokensPerSecond: number
  /** Tokens after the first / decode seconds (the first token comes from prefill). */
  decodeTokensPerSecond: number
  /** Decode rounds: passes of the target after prefill (each yields 1 + accepted tokens). */
  rounds: number
  /** Drafted tokens proposed, and accepted by the target (0 without speculation). */
  draftedTokens: number
  acceptedTokens: number
  /** Time spent in the draft, all rounds. */
  draftMs: number
}

export interface GenerationSummary {
  tokens: number[]
  degraded: boolean
  stopReason: 'eos' | 'max_tokens' | 'empty'
  timings: GenerationTimings
}

interface PassState {
  degraded: boolean
  expertMs: number
  expertCalls: number
}

/** softmax → rank → first k available → renormalise → one call per expert → weighted sum. */
async function moeLayer(
  o: GenerateOptions,
  layer: number,
  phase: MoeEvent['phase'],
  moeIn: Float32Array,
  routerLogits: Float32Array,
  T: number,
  st: PassState
): Promise<Float32Array> {
  const c = o.dense.config
  const H = c.hiddenSize
  const E = c.numExperts
  const K = c.topK
  const t0 = performance.now()
  const probs: Float64Array[] = []
  const ranking: number[][] = []
  for (let t = 0; t < T; t++) {
    const row = routerLogits.subarray(t * E, (t + 1) * E)
    let max = -Infinity
    for (let e = 0; e < E; e++) if (row[e] > max) max = row[e]
    const p = new Float64Array(E)
    let sum = 0
    for (let e = 0; e < E; e++) {
      p[e] = Math.exp(row[e] - max)
      sum += p[e]
    }
    for (let e = 0; e < E; e++) p[e] /= sum
    probs.push(p)
    ranking.push(Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b] - p[a] || a - b))
  }
  const unavailable = new Set<number>()
  let lastFailure: string | undefined
  const results = new Map<number, Map<number, Float32Array>>() // expert → token → y row
  const calls: MoeEvent['calls'] = []
  const chosen = (t: number): number[] => {
    const ok = ranking[t].filter((e) => !unavailable.has(e))
    if (ok.length === 0) throw new NoExpertAvailableError(layer, lastFailure)
    return ok.slice(0, K)
  }

  for (;;) {
    const need = new Map<number, number[]>()
    for (let t = 0; t < T; t++) {
      for (const e of chosen(t)) {
        if (results.get(e)?.has(t) === true) continue
        let rows = need.get(e)
        if (rows == null) need.set(e, (rows = []))
        rows.push(t)
      }
    }
    if (need.size === 0) break
    const ac = new AbortController()
    const signal = o.signal != null ? AbortSignal.any([o.signal, ac.signal]) : ac.signal
    await Promise.all(
      [...need].map(async ([e, rows]) => {
        const x = new Float32Array(rows.length * H)
        rows.forEach((t, i) => {
          x.set(moeIn.subarray(t * H, (t + 1) * H), i * H)
        })
        let y: Float32Array
        try {
          y = await o.experts.runExpert(layer, e, x, rows.length, { signal })
        } catch (err) {
          calls.push({ expert: e, rows: rows.length, ok: false })
          if (isExpertUnavailable(err)) {
            unavailable.add(e)
            lastFailure = (err as Error).message
            return
          }
          ac.abort(err)
          throw err
        }
        calls.push({ expert: e, rows: rows.length, ok: true })
        if (y.length !== rows.length * H) {
          const err = new Error(
            `expert ${e} of layer ${layer} returned ${y.length} values, expected ${rows.length} × ${H}`
          )
          ac.abort(err)
          throw err
        }
        let m = results.get(e)
        if (m == null) results.set(e, (m = new Map()))
        rows.forEach((t, i) => {
          m.set(t, y.subarray(i * H, (i + 1) * H))
        })
      })
    )
  }

  const out = new Float32Array(T * H)
  let degradedTokens = 0
  for (let t = 0; t < T; t++) {
    const used = chosen(t)
    if (used.length < K || used.some((e, i) => e !== ranking[t][i])) degradedTokens++
    let norm = 0
    for (const e of used) norm += probs[t][e]
    const acc = new Float64Array(H)
    for (const e of used) {
      const w = probs[t][e] / norm
      const y = results.get(e)!.get(t)!
      for (let i = 0; i < H; i++) acc[i] += w * y[i]
    }
    out.set(acc, t * H)
  }
  const ms = performance.now() - t0
  st.expertMs += ms
  st.expertCalls += calls.length
  if (degradedTokens > 0) st.degraded = true
  o.onMoe?.({ layer, phase, tokens: T, calls, unavailable: [...unavailable], degradedTokens, ms })
  return out
}

/** One forward pass over `ids` at `positions`; returns the last row's logits (`allRows`: every
 *  row's, [T, vocab]). */
async function forward(
  o: GenerateOptions,
  cache: KvCache,
  ids: number[],
  positions: number[],
  phase: MoeEvent['phase'],
  st: PassState,
  allRows = false
): Promise<Float32Array> {
  const { dense } = o
  const H = dense.config.hiddenSize
  const T = ids.length
  let h = await dense.embed(ids)
  for (let layer = 0; layer < dense.config.numLayers; layer++) {
    o.signal?.throwIfAborted()
    const a = await dense.attention(layer, h, positions, cache)
    const moe = await moeLayer(o, layer, phase, a.moeIn, a.routerLogits, T, st)
    h = new Float32Array(T * H)
    for (let i = 0; i < h.length; i++) h[i] = a.hidden[i] + moe[i]
  }
  if (allRows) return await dense.finalLogits(h, T)
  return await dense.finalLogits(h.slice((T - 1) * H), 1)
}

export type ScoreOptions = Pick<GenerateOptions, 'dense' | 'experts' | 'signal' | 'onMoe'>

/** Logits of every position of `ids` (positions 0..T-1, a fresh KV cache): [T, vocab]. What
 *  perplexity needs; the same forward pass as generation's prefill. */
export async function forwardAll(
  o: ScoreOptions,
  ids: number[]
): Promise<{ logits: Float32Array; degraded: boolean }> {
  if (ids.length === 0) throw new RangeError('forwardAll: no tokens')
  const st: PassState = { degraded: false, expertMs: 0, expertCalls: 0 }
  const go: GenerateOptions = { ...o, promptIds: ids, maxTokens: 0 }
  const logits = await forward(
    go,
    o.dense.newCache(),
    ids,
    ids.map((_, i) => i),
    'prefill',
    st,
    true
  )
  return { logits, degraded: st.degraded }
}

/** Streams generated tokens; the generator's return value is the summary (see generateAll).
 *  With `speculative`, each decode round is one target pass over the last token and up to k
 *  drafted ones; at temperature 0 the tokens are exactly those of plain decoding, above it they
 *  follow the same distribution (model/speculative.ts). */
export async function* generate(
  o: GenerateOptions
): AsyncGenerator<GeneratedToken, GenerationSummary> {
  const c = o.dense.config
  const V = c.vocabSize
  if (o.promptIds.length === 0)
    throw new RangeError('generate: the prompt is empty (give at least one token, e.g. BOS)')
  if (!Number.isSafeInteger(o.maxTokens) || o.maxTokens < 0)
    throw new RangeError(`generate: maxTokens must be a non-negative integer, got ${o.maxTokens}`)
  const eos = o.eosTokenId === undefined ? c.eosTokenId : o.eosTokenId
  const random = seededRandom(o.seed ?? 0)
  const spec = o.speculative
  const accept = spec?.acceptRule ?? speculativeAccept
  const length =
    spec == null
      ? null
      : spec.draftTokens == null && spec.length != null
        ? spec.length
        : new DraftLength(spec.draftTokens, {
            max: spec.maxDraftTokens,
            maxCostRatio: spec.maxCostRatio
          })
  const st: PassState = { degraded: false, expertMs: 0, expertCalls: 0 }
  const tokens: number[] = []
  let prefillMs = 0
  let decodeMs = 0
  let draftMs = 0
  let rounds = 0
  let drafted = 0
  let accepted = 0
  let stopReason: GenerationSummary['stopReason'] = o.maxTokens === 0 ? 'empty' : 'max_tokens'
  const cache = o.dense.newCache()
  const context = [...o.promptIds]
  const step = (
    id: number,
    logits: Float32Array,
    phase: GeneratedToken['phase']
  ): GeneratedToken => {
    const tok: GeneratedToken = {
      id,
      index: tokens.length,
      margin: topMargin(logits),
      degraded: st.degraded,
      phase
    }
    if (o.returnLogits === true) tok.logits = logits
    tokens.push(id)
    context.push(id)
    return tok
  }

  if (o.maxTokens > 0) {
    o.signal?.throwIfAborted()
    const t0 = performance.now()
    const logits = await forward(
      o,
      cache,
      o.promptIds,
      o.promptIds.map((_, i) => i),
      'prefill',
      st
    )
    o.processLogits?.(logits, tokens)
    const tok = step(sampleToken(logits, o, random), logits, 'prefill')
    prefillMs = performance.now() - t0
    yield tok
    if (eos != null && tok.id === eos) stopReason = 'eos'
  }
  // `pos`: position of the last token, the one not yet in the KV cache
  let pos = o.promptIds.length
  while (stopReason !== 'eos' && tokens.length < o.maxTokens) {
    o.signal?.throwIfAborted()
    const t0 = performance.now()
    const left = o.maxTokens - tokens.length
    let proposal: DraftProposal = { tokens: [], q: [] }
    let asked = 0
    let roundDraftMs = 0
    if (spec != null && length != null && left > 1) {
      asked = Math.min(length.next(), left - 1, o.draftLimit?.(tokens) ?? Infinity)
      if (asked > 0) {
        proposal = await spec.draft.propose(context, asked, {
          temperature: o.temperature ?? 0,
          topP: o.topP ?? 1,
          random
        })
        checkProposal(proposal, asked, V, spec.draft.name)
        roundDraftMs = performance.now() - t0
      }
    }
    const ids = [context[context.length - 1], ...proposal.tokens]
    const tv = performance.now()
    const logits = await forward(
      o,
      cache,
      ids,
      ids.map((_, i) => pos + i),
      'decode',
      st,
      ids.length > 1
    )
    const verifyMs = performance.now() - tv
    // rows 0..n: the target's logits for the token after ids[0..i]
    const row = (i: number): Float32Array =>
      ids.length > 1 ? logits.slice(i * V, (i + 1) * V) : logits
    const out: GeneratedToken[] = []
    let kept = 0
    let ended = false
    for (let i = 0; i < proposal.tokens.length && !ended; i++) {
      const r = row(i)
      o.processLogits?.(r, tokens)
      const d = proposal.tokens[i]
      const instead = accept(tokenDistribution(r, o), proposal.q[i] ?? null, d, random)
      out.push(step(instead ?? d, r, 'decode'))
      if (instead == null) kept++
      else ended = true
      if (eos != null && out[out.length - 1].id === eos) {
        ended = true
        stopReason = 'eos'
      }
    }
    if (!ended) {
      const r = row(proposal.tokens.length)
      o.processLogits?.(r, tokens)
      out.push(step(sampleToken(r, o, random), r, 'decode'))
      if (eos != null && out[out.length - 1].id === eos) stopReason = 'eos'
    }
    // the cache holds ids[0..n]; keep the last token and the accepted drafts, drop the rest
    pos += kept + 1
    cache.truncate(pos)
    rounds++
    drafted += proposal.tokens.length
    accepted += kept
    draftMs += roundDraftMs
    const m = {
      asked,
      proposed: proposal.tokens.length,
      accepted: kept,
      verifyMs,
      draftMs: roundDraftMs
    }
    length?.record(m)
    decodeMs += performance.now() - t0
    o.onRound?.({ ...m, emitted: out.length })
    for (const tok of out) yield tok
  }
  const decoded = Math.max(0, tokens.length - 1)
  return {
    tokens,
    degraded: st.degraded,
    stopReason,
    timings: {
      promptTokens: o.promptIds.length,
      generatedTokens: tokens.length,
      prefillMs,
      decodeMs,
      expertMs: st.expertMs,
      expertCalls: st.expertCalls,
      prefillTokensPerSecond: prefillMs > 0 ? o.promptIds.length / (prefillMs / 1000) : 0,
      decodeTokensPerSecond: decodeMs > 0 ? decoded / (decodeMs / 1000) : 0,
      rounds,
      draftedTokens: drafted,
      acceptedTokens: accepted,
      draftMs
    }
  }
}

/** A draft's proposal must be what was asked: at most k in-vocabulary ids, a q per token. */
function checkProposal(p: DraftProposal, k: number, vocab: number, name: string): void {
  const bad = (why: string): never => {
    throw new RangeError(`draft ${name}: ${why}`)
  }
  if (p.tokens.length > k) bad(`proposed ${p.tokens.length} tokens, at most ${k} were asked`)
  if (p.q.length !== p.tokens.length)
    bad(`${p.q.length} distributions for ${p.tokens.length} tokens`)
  p.tokens.forEach((id, i) => {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocab)
      bad(`token ${id} is outside the vocabulary (0..${vocab - 1})`)
    const q = p.q[i]
    if (q != null && q.length !== vocab)
      bad(`distribution ${i} has ${q.length} values, not ${vocab}`)
  })
}

/** Runs `generate` to the end; returns the summary plus every step. */
export async function generateAll(
  o: GenerateOptions,
  onToken?: (t: GeneratedToken) => void
): Promise<GenerationSummary & { steps: GeneratedToken[] }> {
  const steps: GeneratedToken[] = []
  const it = generate(o)
  for (;;) {
    const r = await it.next()
    if (r.done === true) return { ...r.value, steps }
    steps.push(r.value)
    onToken?.(r.value)
  }
}
