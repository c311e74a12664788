// The route manager: who serves which (layer, expert), who is benched, and selection as pure
// functions over that state (Petals' route manager, with exponential backoff instead of bans).
import { expertKey } from '../model/experts.js'
import { MAX_ROWS } from '../protocol/constants.js'

// expertKey lives in model/experts.ts (node and local runtimes use it too); re-exported here for
// the router's callers.
export { expertKey }

export interface PeerRoute {
  peerId: string
  /** Dialable addresses including /p2p/<peerId>. */
  addrs: string[]
  shards: number[]
  /** (layer, expert) pairs served, as `expertKey(layer, expert)`. */
  experts: Set<number>
  /** Rows the peer takes in one call (InfoResponse.maxRows). @default MAX_ROWS */
  maxRows?: number
}

export interface RouteTable {
  peers: Map<string, PeerRoute>
  /** key -> peer ids serving it, in the order they were added. */
  byExpert: Map<number, string[]>
}

export interface Bench {
  until: number
  failures: number
  /**
   * Answers that failed verification (a bad signature): never forgiven by a success, each one
   * benches the peer 4 × longer than the last, up to `badAnswerMaxMs`.
   */
  strikes?: number
}

export function buildTable(peers: PeerRoute[]): RouteTable {
  const table: RouteTable = { peers: new Map(), byExpert: new Map() }
  for (const p of peers) {
    table.peers.set(p.peerId, p)
    for (const k of p.experts) {
      const list = table.byExpert.get(k) ?? []
      list.push(p.peerId)
      table.byExpert.set(k, list)
    }
  }
  return table
}

/**
 * Picks a replica for (layer, expert): not benched at `now`, not in `exclude` (already tried for
 * this call), with the lowest expected time = expected call time (`estimates`) + calls this
 * router has in flight to it × what each adds (`perCall`; without it, the call time itself:
 * estimate × (1 + in flight)). A replica not measured yet counts as fastest, so a new node
 * gets tried and measured. Ties broken by rotating with the expert key so the experts of a shard
 * spread over its replicas. Returns null when no replica is left.
 */
export function selectReplica(
  table: RouteTable,
  layer: number,
  expert: number,
  benched: ReadonlyMap<string, Bench>,
  now: number,
  exclude: ReadonlySet<string> = new Set(),
  load: ReadonlyMap<string, number> = new Map(),
  estimates: ReadonlyMap<string, number> = new Map(),
  perCall?: ReadonlyMap<string, number>
): string | null {
  const all = table.byExpert.get(expertKey(layer, expert))
  if (all == null || all.length === 0) return null
  const start = (layer * 31 + expert) % all.length
  let best: string | null = null
  let bestCost = Infinity
  for (let i = 0; i < all.length; i++) {
    const p = all[(start + i) % all.length]
    if (exclude.has(p)) continue
    const b = benched.get(p)
    if (b != null && b.until > now) continue
    const e = Math.max(estimates.get(p) ?? 0, MIN_ESTIMATE_MS)
    const cost = e + (load.get(p) ?? 0) * Math.max(perCall?.get(p) ?? e, MIN_ESTIMATE_MS)
    if (cost < bestCost) {
      best = p
      bestCost = cost
    }
  }
  return best
}

/** Below this, measured differences are noise (a loopback call): load decides. */
const MIN_ESTIMATE_MS = 0.5

/** Next bench state after a failure: base · 2^(failures−1), capped. */
export function benchAfterFailure(
  prev: Bench | undefined,
  now: number,
  baseMs: number,
  maxMs: number
): Bench {
  const failures = (prev?.failures ?? 0) + 1
  return { failures, until: now + Math.min(maxMs, baseMs * 2 ** (failures - 1)) }
}

export interface RouteManagerOptions {
  /** First bench: long enough to skip a peer for the rest of a decode step burst. @default 1000 */
  benchBaseMs?: number
  /** Longest bench: a peer that keeps failing is retried about once a minute. @default 60000 */
  benchMaxMs?: number
  /**
   * Longest bench after unverifiable answers (router/remote-executor.ts): a peer that keeps
   * signing wrongly is asked about once an hour. @default 3600000
   */
  badAnswerMaxMs?: number
  now?: () => number
}

export class RouteManager {
  table: RouteTable
  readonly benched = new Map<string, Bench>()
  readonly load = new Map<string, number>()
  private readonly baseMs: number
  private readonly maxMs: number
  private readonly badMaxMs: number
  private readonly now: () => number

  constructor(peers: PeerRoute[] = [], opts: RouteManagerOptions = {}) {
    this.table = buildTable(peers)
    this.baseMs = opts.benchBaseMs ?? 1000
    this.maxMs = opts.benchMaxMs ?? 60_000
    this.badMaxMs = opts.badAnswerMaxMs ?? 3_600_000
    this.now = opts.now ?? Date.now
  }

  setPeers(peers: PeerRoute[]): void {
    this.table = buildTable(peers)
  }

  select(
    layer: number,
    expert: number,
    exclude?: ReadonlySet<string>,
    estimates?: ReadonlyMap<string, number>,
    perCall?: ReadonlyMap<string, number>
  ): string | null {
    return selectReplica(
      this.table,
      layer,
      expert,
      this.benched,
      this.now(),
      exclude,
      this.load,
      estimates,
      perCall
    )
  }

  /** When the first bench among the replicas of (layer, expert) ends (null: none benched). */
  nextUnbench(layer: number, expert: number): number | null {
    let t: number | null = null
    for (const p of this.replicas(layer, expert)) {
      const b = this.benched.get(p)
      if (b != null && (t == null || b.until < t)) t = b.until
    }
    return t
  }

  /**
   * Rows one call for (layer, expert) may carry: the smallest limit its replicas advertise, so
   * that any replica can take any part of a split call (a retry may land anywhere).
   */
  maxRows(layer: number, expert: number): number {
    let n = MAX_ROWS
    for (const p of this.replicas(layer, expert)) {
      const m = this.table.peers.get(p)?.maxRows
      if (m != null && m > 0 && m < n) n = m
    }
    return n
  }

  /** Replicas listed for (layer, expert), benched or not. */
  replicas(layer: number, expert: number): string[] {
    return this.table.byExpert.get(expertKey(layer, expert)) ?? []
  }

  onFailure(peer: string): Bench {
    const prev = this.benched.get(peer)
    const b = benchAfterFailure(prev, this.now(), this.baseMs, this.maxMs)
    if (prev?.strikes != null) {
      b.strikes = prev.strikes
      b.until = Math.max(b.until, prev.until)
    }
    this.benched.set(peer, b)
    return b
  }

  /**
   * An answer that failed verification (its signature): base · 4^(strikes−1), up to
   * `badAnswerMaxMs`. Strikes outlive successes: a node that signs wrongly between good answers
   * is asked less and less often, never back to normal.
   */
  onBadAnswer(peer: string): Bench {
    const prev = this.benched.get(peer)
    const strikes = (prev?.strikes ?? 0) + 1
    const now = this.now()
    const until = Math.max(
      prev?.until ?? 0,
      now + Math.min(this.badMaxMs, this.baseMs * 4 ** (strikes - 1))
    )
    const b: Bench = { failures: (prev?.failures ?? 0) + 1, until, strikes }
    this.benched.set(peer, b)
    return b
  }

  /** A success after the bench expired clears the failure count (strikes stay). */
  onSuccess(peer: string): void {
    const b = this.benched.get(peer)
    if (b == null || b.until > this.now()) return
    if (b.strikes == null) this.benched.delete(peer)
    else b.failures = 0
  }
}
