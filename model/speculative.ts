// Speculative decoding's two decisions, apart from the loop that runs them (model/generate.ts):
// which drafted tokens the target keeps (speculative sampling: the output distribution is the
// target's, exactly), and how many tokens to draft next round (adaptive k from the measured
// acceptance and the measured cost of a round).
import type { Draft } from './draft.js'
import { sampleFrom } from './sampling.js'

/**
 * Given the target's distribution `p` at a drafted position, the draft's `q` there (null: the
 * draft was deterministic, q is one-hot at `token`) and the drafted `token`: null to accept it,
 * else the token the target emits instead (after which the round ends).
 */
export type AcceptRule = (
  p: Float64Array,
  q: Float32Array | null,
  token: number,
  random: () => number
) => number | null

/**
 * Speculative sampling (Leviathan et al. 2023, Chen et al. 2023): accept with probability
 * min(1, p/q); on rejection draw from the normalised max(0, p − q). Every emitted token is then
 * distributed as p, whatever q is. With p one-hot (temperature 0) it keeps the token iff it is
 * the target's argmax and otherwise emits that argmax, so greedy outputs never change.
 */
export const speculativeAccept: AcceptRule = (p, q, token, random) => {
  const qd = q == null ? 1 : q[token]
  if (!(qd > 0))
    throw new RangeError(
      `the draft proposed token ${token} with probability ${qd} under its own distribution`
    )
  const pd = p[token]
  if (pd >= qd || random() < pd / qd) return null
  const residual = new Float64Array(p.length)
  for (let i = 0; i < p.length; i++) residual[i] = Math.max(0, p[i] - (q == null ? 0 : q[i]))
  if (q == null) residual[token] = 0
  // p ≤ q everywhere only when p = q, where rejection cannot happen; rounding aside, p is right
  return sampleFrom(residual, random) ?? sampleFrom(p, random) ?? token
}

export interface SpeculativeOptions {
  draft: Draft
  /** Tokens drafted per round; undefined: adaptive (DraftLength). */
  draftTokens?: number
  /** Most tokens adaptive k drafts per round. @default DEFAULT_MAX_DRAFT_TOKENS */
  maxDraftTokens?: number
  /** Most rows adaptive k pays per generated token, relative to plain decoding's one.
   *  @default DEFAULT_MAX_COST_RATIO */
  maxCostRatio?: number
  /** Adaptive k's measurements, kept across generations (one per client and draft, as a
   *  gateway keeps one per model): a generation then starts from the acceptance and costs the
   *  earlier ones measured rather than from the prior, which a short reply never outgrows.
   *  Unset: a new DraftLength per generation. Ignored when `draftTokens` fixes k. */
  length?: DraftLength
  /** Only replaced by tests that show a wrong rule is caught. @default speculativeAccept */
  acceptRule?: AcceptRule
}

export const DEFAULT_MAX_DRAFT_TOKENS = 8
/** The cost target of speculative decoding (docs/architecture.md): ≤ 1.5 × plain per token. */
export const DEFAULT_MAX_COST_RATIO = 1.5

/** What one round measured. */
export interface RoundMeasure {
  /** Tokens the draft proposed (rows verified = proposed + 1). */
  proposed: number
  /** Of those, accepted by the target. */
  accepted: number
  /** Wall time of the target's pass over the proposed + 1 rows. */
  verifyMs: number
  draftMs: number
  /** Tokens asked of the draft. */
  asked: number
}

/** Weight of old measurements after each new one: ~20 rounds of memory, so k follows a change
 *  of load or of text within a few rounds. */
const DECAY = 0.95
/** At k = 0, a round with one drafted token every so many rounds, so that the acceptance is still
 *  measured (a draft good again on another stretch of text gets k back). */
const PROBE_EVERY = 8
/** Every so many rounds at k > 0, a round at k ± 1, so that the cost of a row stays measurable. */
const EXPLORE_EVERY = 16

/** Adaptive k's measurements as plain numbers (DraftLength.state, DraftLength.restore): what a
 *  one-shot command (`pov generate`, `pov infer`) keeps between its runs. */
export interface DraftLengthState {
  acc: number
  rej: number
  sw: number
  sx: number
  sy: number
  sxx: number
  sxy: number
  dMs: number
  dTok: number
  rounds: number
  sinceProbe: number
  current: number
}

const STATE_KEYS = [
  'acc',
  'rej',
  'sw',
  'sx',
  'sy',
  'sxx',
  'sxy',
  'dMs',
  'dTok',
  'rounds',
  'sinceProbe',
  'current'
] as const satisfies ReadonlyArray<keyof DraftLengthState>

/**
 * Adaptive k. Tokens per round with k drafted at per-token acceptance α are
 * E(k) = (1 − α^(k+1)) / (1 − α); a round costs t(k) = a + (b + d)·k ms (a: the pass over one
 * row, b: each extra row, d: drafting one token), fitted on the measured rounds. The k chosen
 * maximises E(k) / t(k) — tokens per second — among those paying at most `maxCostRatio` rows
 * per token ((k + 1) / E(k)); k = 0 is plain decoding, chosen whenever nothing beats it.
 */
export class DraftLength {
  private readonly max: number
  private readonly maxCostRatio: number
  // acceptance: decayed counts of accepted and of rejected drafted tokens (prior α = 0.5)
  private acc = 1
  private rej = 1
  // decayed least squares of verifyMs on x = proposed
  private sw = 0
  private sx = 0
  private sy = 0
  private sxx = 0
  private sxy = 0
  // decayed draft ms and tokens asked
  private dMs = 0
  private dTok = 0
  private rounds = 0
  private sinceProbe = 0
  private current = 1

  constructor(
    private readonly fixed?: number,
    opts: { max?: number; maxCostRatio?: number } = {}
  ) {
    if (fixed != null && !(Number.isSafeInteger(fixed) && fixed >= 0))
      throw new RangeError(`draft tokens must be a non-negative integer, got ${fixed}`)
    this.max = opts.max ?? DEFAULT_MAX_DRAFT_TOKENS
    this.maxCostRatio = opts.maxCostRatio ?? DEFAULT_MAX_COST_RATIO
  }

  /** The measurements so far (adaptive k only: a fixed k measures nothing). */
  state(): DraftLengthState {
    const { acc, rej, sw, sx, sy, sxx, sxy, dMs, dTok, rounds, sinceProbe, current } = this
    return { acc, rej, sw, sx, sy, sxx, sxy, dMs, dTok, rounds, sinceProbe, current }
  }

  /**
   * An adaptive DraftLength that goes on from `state` (what `state()` returned, read back from
   * JSON). Throws a RangeError naming the field when `state` is not one: a count that is not a
   * finite non-negative number, or a k, round or probe count that is not a whole number. A k above
   * `opts.max` is lowered to it.
   */
  static restore(state: unknown, opts: { max?: number; maxCostRatio?: number } = {}): DraftLength {
    if (typeof state !== 'object' || state == null)
      throw new RangeError('draft length state: not an object')
    const s = state as Record<string, unknown>
    for (const key of STATE_KEYS) {
      const v = s[key]
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new RangeError(`draft length state: ${key} is ${String(v)}, not a count`)
      if (
        (key === 'rounds' || key === 'sinceProbe' || key === 'current') &&
        !Number.isSafeInteger(v)
      )
        throw new RangeError(`draft length state: ${key} is ${v}, not a whole number`)
    }
    const st = s as unknown as DraftLengthState
    if (!(st.acc + st.rej > 0))
      throw new RangeError('draft length state: no acceptance measured (acc + rej is 0)')
    const l = new DraftLength(undefined, opts)
    l.acc = st.acc
    l.rej = st.rej
    l.sw = st.sw
    l.sx = st.sx
    l.sy = st.sy
    l.sxx = st.sxx
    l.sxy = st.sxy
    l.dMs = st.dMs
    l.dTok = st.dTok
    l.rounds = st.rounds
    l.sinceProbe = st.sinceProbe
    l.current = Math.min(st.current, l.max)
    return l
  }

  /** Measured per-token acceptance. */
  get acceptance(): number {
    return this.acc / (this.acc + this.rej)
  }

  /** k for the next round. */
  next(): number {
    if (this.fixed != null) return this.fixed
    this.rounds++
    let k = this.current
    if (k === 0) {
      if (++this.sinceProbe >= PROBE_EVERY) k = 1
    } else if (this.rounds % EXPLORE_EVERY === 0) {
      k = this.rounds % (2 * EXPLORE_EVERY) === 0 ? k - 1 : Math.min(this.max, k + 1)
    }
    if (k > 0) this.sinceProbe = 0
    return k
  }

  record(m: RoundMeasure): void {
    if (this.fixed != null) return
    if (m.proposed > 0) {
      this.acc = this.acc * DECAY + m.accepted
      this.rej = this.rej * DECAY + (m.accepted < m.proposed ? 1 : 0)
    }
    const x = m.proposed
    this.sw = this.sw * DECAY + 1
    this.sx = this.sx * DECAY + x
    this.sy = this.sy * DECAY + m.verifyMs
    this.sxx = this.sxx * DECAY + x * x
    this.sxy = this.sxy * DECAY + x * m.verifyMs
    if (m.asked > 0) {
      this.dMs = this.dMs * DECAY + m.draftMs
      this.dTok = this.dTok * DECAY + m.asked
    }
    this.current = this.choose()
  }

  private choose(): number {
    const den = this.sw * this.sxx - this.sx * this.sx
    // until rounds of different lengths were seen, a row is taken as free: the cost bound
    // still holds k down, and exploration soon measures it
    let b = den > 1e-9 * this.sw * this.sw ? (this.sw * this.sxy - this.sx * this.sy) / den : 0
    b = Math.max(0, b)
    const a = Math.max(1e-6, (this.sy - b * this.sx) / this.sw)
    const d = this.dTok > 0 ? this.dMs / this.dTok : 0
    const alpha = Math.min(this.acceptance, 0.999)
    let best = 0
    let bestScore = 1 / a
    for (let k = 1; k <= this.max; k++) {
      const e = (1 - alpha ** (k + 1)) / (1 - alpha)
      if ((k + 1) / e > this.maxCostRatio) continue
      const score = e / (a + (b + d) * k)
      if (score > bestScore) {
        best = k
        bestScore = score
      }
    }
    return best
  }
}
