// What the router has measured of each peer: an EWMA of the call time (network round trip plus
// the node's service and queueing time, as the caller sees it) for replica choice, and a window
// of recent samples whose p95 is the hedging delay (Dean & Barroso, "The Tail at Scale": a
// second request after the 95th percentile costs ~5% more calls and cuts the tail).
// Samples are kept apart by call size: a prefill batch must not set a decode call's hedge.

export interface LatencyOptions {
  /** Weight of a new sample in the EWMA. @default 0.2 (about the last 10 calls count) */
  alpha?: number
  /** Samples kept per key for the percentile. @default 64 */
  window?: number
  /** Samples needed before the percentile is trusted; fewer: 2 × EWMA. @default 8 */
  minSamples?: number
  /** Quantile of the hedge delay. @default 0.95 */
  quantile?: number
  /** Never hedge sooner than this (loopback calls take ~0.3 ms: hedging them is waste). @default 2 */
  minHedgeMs?: number
  /**
   * For replica choice, a peer's excess over its fastest recent call (its round trip) halves
   * every this many ms without a new sample: one slow call (a busy moment) does not keep the
   * closest replica out of use for good, since an unused peer is never measured again. @default 1000
   */
  forgetMs?: number
  /**
   * A peer with no sample for this long counts as unmeasured for replica choice, so it is tried
   * (and measured) again: its last samples may all come from a busy moment. @default 10000
   */
  staleMs?: number
  now?: () => number
}

interface Stats {
  ewma: number
  samples: Float64Array
  n: number
  next: number
  /** When the last sample came (the tracker's clock). */
  at: number
  /** The hedge percentile of the samples, until the next sample (asked on every call). */
  pct: number | null
}

/** What replica choice needs of each measured peer (router/routes.ts selectReplica). */
export interface ChoiceEstimates {
  /** Expected time of one more call, ms. */
  expected: Map<string, number>
  /** What each call this router already has in flight to the peer adds to it, ms. */
  perCall: Map<string, number>
}

/**
 * Below this, per-call costs are noise: a call in flight still costs this much, so concurrent
 * calls spread over equally near replicas.
 */
export const MIN_PER_CALL_MS = 0.5

/** Calls of more rows than this are a separate size class (prefill vs decode). */
export const SMALL_CALL_ROWS = 8

export const sizeClass = (rows: number): 'S' | 'L' => (rows <= SMALL_CALL_ROWS ? 'S' : 'L')

export class LatencyTracker {
  private readonly stats = new Map<string, Stats>()
  private readonly alpha: number
  private readonly window: number
  private readonly minSamples: number
  private readonly quantile: number
  readonly minHedgeMs: number
  private readonly forgetMs: number
  private readonly staleMs: number
  private readonly now: () => number

  constructor(opts: LatencyOptions = {}) {
    this.alpha = opts.alpha ?? 0.2
    this.window = opts.window ?? 64
    this.minSamples = opts.minSamples ?? 8
    this.quantile = opts.quantile ?? 0.95
    this.minHedgeMs = opts.minHedgeMs ?? 2
    this.forgetMs = opts.forgetMs ?? 1000
    this.staleMs = opts.staleMs ?? 10_000
    this.now = opts.now ?? (() => performance.now())
  }

  observe(peer: string, rows: number, ms: number): void {
    const key = `${peer}|${sizeClass(rows)}`
    let s = this.stats.get(key)
    if (s == null) {
      s = { ewma: ms, samples: new Float64Array(this.window), n: 0, next: 0, at: 0, pct: null }
      this.stats.set(key, s)
    } else {
      // the excess fades for good, not only in forChoice: else a near node whose EWMA a busy
      // moment inflated is picked again once it faded, answers fast, and the next sample (at
      // weight alpha) barely moves the EWMA while restarting the fade — it looks far again
      const now = this.now()
      const base = minSample(s)
      s.ewma = base + Math.max(0, s.ewma - base) * 2 ** (-(now - s.at) / this.forgetMs)
      s.ewma += this.alpha * (ms - s.ewma)
    }
    s.at = this.now()
    s.pct = null
    s.samples[s.next] = ms
    s.next = (s.next + 1) % this.window
    s.n = Math.min(s.n + 1, this.window)
  }

  /**
   * A call abandoned after `ms` (it lost a hedge race): it would have taken longer, which tells
   * something only when that is more than expected, so only then it raises the EWMA. Never a
   * sample: the loser of a race that the first call won may have been sent a moment before.
   */
  observeAtLeast(peer: string, rows: number, ms: number): void {
    const s = this.stats.get(`${peer}|${sizeClass(rows)}`)
    if (s != null && ms > s.ewma) s.ewma += this.alpha * (ms - s.ewma)
  }

  /** EWMA call time of `peer` for calls of `rows`; undefined before the first sample. */
  estimate(peer: string, rows: number): number | undefined {
    return this.stats.get(`${peer}|${sizeClass(rows)}`)?.ewma
  }

  /** Estimates of `peers` for calls of `rows` (unmeasured peers left out). */
  estimates(peers: Iterable<string>, rows: number): Map<string, number> {
    const out = new Map<string, number>()
    for (const p of peers) {
      const e = this.estimate(p, rows)
      if (e != null) out.set(p, e)
    }
    return out
  }

  /**
   * Replica choice over `peers` for calls of `rows` (unmeasured and stale peers left out). Expected time:
   * the fastest recent call (≈ the round trip) plus the EWMA's excess over it, which fades while
   * the peer goes unused. Per call in flight: that excess (queueing and service spread), at
   * least MIN_PER_CALL_MS — not the whole call time: a second call to a far node waits for the
   * node, not for a second round trip.
   */
  forChoice(peers: Iterable<string>, rows: number): ChoiceEstimates {
    const out: ChoiceEstimates = { expected: new Map(), perCall: new Map() }
    const now = this.now()
    for (const p of peers) {
      const s = this.stats.get(`${p}|${sizeClass(rows)}`)
      if (s == null || now - s.at > this.staleMs) continue
      const base = minSample(s)
      const excess = Math.max(0, s.ewma - base) * 2 ** (-(now - s.at) / this.forgetMs)
      out.expected.set(p, base + excess)
      out.perCall.set(p, Math.max(MIN_PER_CALL_MS, excess))
    }
    return out
  }

  /** When to send a hedge after a call to `peer` went out: its p95, or 2 × EWMA with few samples; null unmeasured. */
  hedgeDelay(peer: string, rows: number): number | null {
    const s = this.stats.get(`${peer}|${sizeClass(rows)}`)
    if (s == null) return null
    const d =
      s.n >= this.minSamples
        ? (s.pct ??= percentile(s.samples.subarray(0, s.n), this.quantile))
        : 2 * s.ewma
    return Math.max(this.minHedgeMs, d)
  }

  forget(peer: string): void {
    this.stats.delete(`${peer}|S`)
    this.stats.delete(`${peer}|L`)
  }
}

/** The fastest call in the window (≈ the round trip plus the node's quickest service). */
function minSample(s: Stats): number {
  let m = Infinity
  for (let i = 0; i < s.n; i++) if (s.samples[i] < m) m = s.samples[i]
  return m
}

/** The q-quantile (nearest rank) of `xs`. */
export function percentile(xs: ArrayLike<number>, q: number): number {
  // a typed array sorts numerically in native code: no comparator call per comparison (asked on
  // every expert call, for its hedge delay)
  const a = new Float64Array(xs).sort()
  if (a.length === 0) return NaN
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil(q * a.length) - 1))]
}
