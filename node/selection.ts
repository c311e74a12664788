// Whether routers choose this node among the replicas of its experts. A node never sees the calls
// its clients send to other replicas, but it sees their request ids: a router numbers all its
// calls with one counter (router/remote-executor.ts), whichever node they go to, so the span of
// ids a client sent here over a window is how many calls it made in all, and the calls among them
// that came here are this node's part. A router tries every replica it may use and measures it
// again once its samples are stale (router/latency.ts staleMs): a replica it passes over still
// gets those calls (and some hedges), a few percent of the client's traffic, where a chosen one
// gets every call for its experts. Spelled out, with its limits, in docs/operator.md#selection.
import type { Logger } from 'pino'
import type { NodeMetrics } from './metrics.js'

export interface SelectionOptions {
  /**
   * The node's part of a client's calls when it gets every call for its experts: its experts over
   * all experts of the model (routing spreads tokens over experts about evenly over many tokens;
   * MoE models are trained to).
   */
  hostedFraction: number
  /** Calls counted over this long. @default 60000 */
  windowMs?: number
  /** Below this part of `hostedFraction`, a client counts as having chosen other replicas. @default 0.2 */
  lowShare?: number
  /** A client is judged once its ids span this many calls in the window. @default 100 */
  minSpan?: number
  /** A warning that still holds is logged again after this long. @default 600000 */
  repeatMs?: number
  logger?: Logger
  metrics?: NodeMetrics | null
  now?: () => number
}

export interface SelectionView {
  /** Clients whose calls in the window were enough to judge. */
  clients: number
  /** Of them, those that sent this node most of its experts' calls. */
  chose: number
  /** Of them, those that sent it less than `lowShare` of that: they chose other replicas. */
  passedOver: number
  /** This node's part of those clients' calls over `hostedFraction`, 0..1; null: nobody judged. */
  share: number | null
}

/** Ids spanning more calls than this per second are not a counter (a client with random ids). */
const MAX_CALLS_PER_SECOND = 100_000
/** Clients remembered at most (the oldest is dropped). */
const MAX_CLIENTS = 1024

/** A client's requests in one second: how many, and the lowest and highest id among them. */
interface Second {
  sec: number
  calls: number
  lo: bigint
  hi: bigint
}

export class SelectionWatch {
  /** Per client, its seconds in the window, oldest first (bounded memory at any call rate). */
  private readonly clients = new Map<string, Second[]>()
  private readonly windowMs: number
  private readonly lowShare: number
  private readonly minSpan: number
  private readonly repeatMs: number
  private readonly now: () => number
  private warnedAt: number | null = null
  private timer: NodeJS.Timeout | null = null

  constructor(private readonly o: SelectionOptions) {
    this.windowMs = o.windowMs ?? 60_000
    this.lowShare = o.lowShare ?? 0.2
    this.minSpan = o.minSpan ?? 100
    this.repeatMs = o.repeatMs ?? 600_000
    this.now = o.now ?? Date.now
  }

  /** A request read from `peer` (every decoded request counts: the client chose this node for it). */
  observe(peer: string, requestId: bigint): void {
    let s = this.clients.get(peer)
    if (s == null) {
      if (this.clients.size >= MAX_CLIENTS) this.clients.delete(this.clients.keys().next().value!)
      s = []
      this.clients.set(peer, s)
    }
    const sec = Math.floor(this.now() / 1000)
    const last = s.at(-1)
    if (last?.sec === sec) {
      last.calls++
      if (requestId < last.lo) last.lo = requestId
      if (requestId > last.hi) last.hi = requestId
    } else {
      s.push({ sec, calls: 1, lo: requestId, hi: requestId })
      const since = sec - Math.ceil(this.windowMs / 1000)
      while (s.length > 0 && s[0].sec < since) s.shift()
    }
  }

  view(): SelectionView {
    const since = this.now() - this.windowMs
    const maxSpan = BigInt(Math.ceil((MAX_CALLS_PER_SECOND * this.windowMs) / 1000))
    const h = this.o.hostedFraction
    let chose = 0
    let passedOver = 0
    let calls = 0
    let span = 0
    for (const [peer, s] of this.clients) {
      while (s.length > 0 && s[0].sec * 1000 < since) s.shift()
      if (s.length === 0) {
        this.clients.delete(peer)
        continue
      }
      let lo = s[0].lo
      let hi = s[0].hi
      let got = 0
      for (const x of s) {
        if (x.lo < lo) lo = x.lo
        if (x.hi > hi) hi = x.hi
        got += x.calls
      }
      const n = hi - lo + 1n
      if (n < BigInt(this.minSpan) || n > maxSpan) continue
      const share = got / Number(n) / h
      if (share < this.lowShare) passedOver++
      else chose++
      calls += got
      span += Number(n)
    }
    const judged = chose + passedOver
    return {
      clients: judged,
      chose,
      passedOver,
      share: judged === 0 ? null : Math.min(1, calls / span / h)
    }
  }

  /** Judges the window: metrics, and a warning (rate-limited) while most clients go elsewhere. */
  check(): SelectionView {
    const v = this.view()
    const m = this.o.metrics
    if (m != null) {
      m.selectionClients.set({ choice: 'chose' }, v.chose)
      m.selectionClients.set({ choice: 'passed-over' }, v.passedOver)
      if (v.share != null) m.selectionShare.set(v.share)
    }
    const low = v.clients > 0 && v.passedOver > v.chose
    const now = this.now()
    if (low && (this.warnedAt == null || now - this.warnedAt >= this.repeatMs)) {
      this.warnedAt = now
      const pct = Math.round((v.share ?? 0) * 100)
      this.o.logger?.warn(
        {
          share: v.share,
          clients: v.clients,
          passedOver: v.passedOver,
          windowSeconds: this.windowMs / 1000,
          remedy: SELECTION_REMEDY
        },
        `selected less: ${v.passedOver} of ${v.clients} clients sent their calls for this node's experts to other replicas (it got ${pct} % of them) — routers pick the replica with the lowest measured call time; ${SELECTION_REMEDY}`
      )
    } else if (!low && this.warnedAt != null && v.clients > 0) {
      this.warnedAt = null
      this.o.logger?.info(
        { share: v.share, clients: v.clients },
        'selected again: most clients send this node its experts’ calls'
      )
    }
    return v
  }

  /** Checks every `intervalMs` until stop(). */
  start(intervalMs = 10_000): void {
    this.timer = setInterval(() => this.check(), intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = null
  }
}

/** What lowers a node's call time as its clients measure it (docs/operator.md#selection). */
export const SELECTION_REMEDY =
  'run it nearer its clients or on a faster link (a relayed node adds the relay’s round trips: forward a port or enable UPnP), compute faster (`pov node start --device cuda`, or `--workers N` on a many-core CPU), and check /metrics pov_request_duration_seconds for queueing'
