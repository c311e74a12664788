// Keeps the gateway's escrow lanes funded while it runs. A node accepts a voucher only while its
// lane covers it (cumulative − paid ≤ balance, i.e. cumulative ≤ balance + paid: the lane's
// ceiling, which a redeem leaves unchanged and an allocate raises). The keeper knows every lane's
// ceiling and what the payer's next voucher may sign (router/payer.ts `exposure`), so:
// - each tick, a lane whose room falls below what it spent in the last `horizonMs` (plus one
//   margin) is topped up from the unallocated deposit, early enough that the node's cached lane
//   read (2 s) sees it before the lane runs dry; the unallocated deposit is re-read then, and
//   every few seconds anyway, so a fresh `pov deposit` is used without a restart;
// - a call whose voucher its lane cannot cover waits for a top-up, or is refused at once when
//   the deposit is spent (the gateway then ends the request with a clear reason: never a voucher
//   the node would refuse, never a hang);
// - money just allocated counts for vouchers only once every node can see it: a node may act on
//   a lane read up to LANE_CACHE_MS old (docs/protocol.md), so a voucher signed above the old
//   balance right after the top-up would be refused as `insufficient escrow` — and a refused
//   call counts against the node (benched: with every replica refused at once, the request had
//   no node left, a 503). A call that needs the new room waits for it instead (bounded).
import { formatUnits, type Signer } from 'ethers'
import type { Logger } from 'pino'
import type { PovEscrowContract } from '../../chain/contracts.js'
import { LANE_CACHE_MS } from '../../protocol/payment.js'
import type { Payer } from '../payer.js'
import { povFloat, type GatewayMetrics } from './metrics.js'

export interface LaneKeeperOptions {
  escrow: PovEscrowContract
  signer: Signer
  payer: Payer
  /** Operators the router may pay now (their lanes are kept). */
  operators: () => string[]
  /** How often lanes are looked at. @default 1000 */
  tickMs?: number
  /** A lane holds at least what it spent in this long (plus one voucher margin). @default 10000 */
  horizonMs?: number
  /** The unallocated deposit is re-read at least this often while idle. @default 5000 */
  depositReadMs?: number
  /**
   * How long after an allocation is mined its money counts for vouchers: the nodes' lane cache
   * plus a margin for clocks. @default LANE_CACHE_MS + 250
   */
  visibleAfterMs?: number
  /** Clock and wait (tests). @default Date.now, setTimeout */
  now?: () => number
  sleep?: (ms: number) => Promise<void>
  logger?: Logger
  metrics?: GatewayMetrics | null
}

export interface LaneState {
  operator: string
  /** balance + paid: the highest cumulative voucher the lane covers (wei), allocations that
   *  nodes may not see yet included. */
  ceiling: bigint
  /** What the next voucher may still add before the lane stops covering it (wei, ≥ 0). */
  room: bigint
}

/** The payer's money as the keeper sees it. */
export interface Funds {
  /** Unallocated deposit (wei), as last read. */
  free: bigint
  /** The deposit is unlocking: nodes refuse vouchers drawn on it. */
  unlocking: boolean
  lanes: LaneState[]
  /** free + every lane's room. */
  available: bigint
}

export class LaneKeeper {
  private readonly ceilings = new Map<string, bigint>()
  /** Per operator: allocations mined less than `visibleAfterMs` ago (a node may not see them). */
  private readonly pending = new Map<string, Array<{ amount: bigint; visibleAt: number }>>()
  /** Per operator: (time, owed) samples over the last horizon, to see how fast a lane drains. */
  private readonly samples = new Map<string, Array<{ t: number; owed: bigint }>>()
  private free = 0n
  private unlocking = false
  private freeAt = -Infinity
  private busy: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private closed = false
  /** Allocations made, and wei allocated, since start. */
  readonly stats = { allocations: 0, allocated: 0n }

  private constructor(private readonly o: LaneKeeperOptions) {}

  static async open(o: LaneKeeperOptions): Promise<LaneKeeper> {
    const k = new LaneKeeper(o)
    await k.readDeposit()
    await Promise.all(o.operators().map(async (op) => await k.readLane(op)))
    k.timer = setInterval(() => {
      void k.tick()
    }, o.tickMs ?? 1000)
    k.timer.unref()
    return k
  }

  close(): void {
    this.closed = true
    if (this.timer != null) clearInterval(this.timer)
  }

  private get payer(): string {
    return this.o.payer.address
  }

  private get now(): number {
    return (this.o.now ?? Date.now)()
  }

  /**
   * What a voucher to `operator` covering `amount` more leaves in its lane as every node sees it
   * (negative: refused, or not yet visible). `pending`: count allocations nodes may not see yet.
   */
  headroom(operator: string, amount = 0n, pending = false): bigint {
    const ceiling = this.ceilings.get(operator)
    if (ceiling == null) return -1n
    return (
      ceiling - (pending ? 0n : this.unseen(operator)) - this.o.payer.exposure(operator, amount)
    )
  }

  /** Wei allocated to `operator`'s lane that a node may not see yet. */
  private unseen(operator: string, at = this.now): bigint {
    const p = this.pending.get(operator)
    if (p == null) return 0n
    while (p.length > 0 && p[0].visibleAt <= at) p.shift()
    return p.reduce((sum, x) => sum + x.amount, 0n)
  }

  funds(): Funds {
    const lanes: LaneState[] = []
    let available = this.free
    for (const op of this.o.operators()) {
      const ceiling = this.ceilings.get(op) ?? 0n
      const h = this.headroom(op, 0n, true)
      const room = h > 0n ? h : 0n
      available += room
      lanes.push({ operator: op, ceiling, room })
    }
    return { free: this.free, unlocking: this.unlocking, lanes, available }
  }

  /**
   * Makes the lane to `operator` cover a voucher for `amount` more, as the node sees it: at once
   * when it does; after a top-up from the unallocated deposit when it can, once the node can see
   * the top-up (a wait of at most `visibleAfterMs`); false when the deposit is spent.
   */
  async cover(operator: string, amount: bigint): Promise<boolean> {
    if (this.headroom(operator, amount) >= 0n) return true
    if (this.headroom(operator, amount, true) < 0n) {
      const extra = new Map([[operator, amount]])
      try {
        await this.refill(true, extra)
      } catch (err) {
        // a transaction of the same key sent meanwhile (a `pov deposit`) can take the nonce:
        // once more, from a fresh read
        this.o.logger?.warn({ err: (err as Error).message }, 'lane top-up failed; trying again')
        await this.refill(true, extra)
      }
    }
    const at = this.visibleAt(operator, amount)
    if (at == null) return false
    const wait = at - this.now
    if (wait > 0) await (this.o.sleep ?? sleep)(wait)
    return this.headroom(operator, amount) >= 0n
  }

  /** When the lane to `operator` covers `amount` more as nodes see it; null: it never will. */
  private visibleAt(operator: string, amount: bigint): number | null {
    if (this.headroom(operator, amount, true) < 0n) return null
    let short = -this.headroom(operator, amount)
    if (short <= 0n) return this.now
    for (const p of this.pending.get(operator) ?? []) {
      short -= p.amount
      if (short <= 0n) return p.visibleAt
    }
    return null
  }

  /** The funds after a fresh read of the unallocated deposit (a request deciding whether to start). */
  async fresh(): Promise<Funds> {
    await this.refill(true)
    return this.funds()
  }

  private async readDeposit(): Promise<void> {
    const [free, unlockAt] = await this.o.escrow.depositOf(this.payer)
    this.free = BigInt(free)
    this.unlocking = BigInt(unlockAt) !== 0n
    this.freeAt = this.now
    this.o.metrics?.depositFree.set(povFloat(this.free))
  }

  private async readLane(op: string): Promise<void> {
    const [balance, paid] = await this.o.escrow.laneOf(this.payer, op)
    this.ceilings.set(op, BigInt(balance) + BigInt(paid))
  }

  private async tick(): Promise<void> {
    if (this.closed || this.busy != null) return
    const now = this.now
    const stale = now - this.freeAt > (this.o.depositReadMs ?? 5000)
    const want = this.wanted(now)
    if (want.size === 0 && !stale) return
    await this.refill(stale || want.size > 0).catch((err: unknown) => {
      this.o.logger?.warn({ err: (err as Error).message }, 'could not top up the escrow lanes')
    })
  }

  /** Per operator whose lane runs low: how much more it should hold (wei). */
  private wanted(now: number, extra = new Map<string, bigint>()): Map<string, bigint> {
    const horizon = this.o.horizonMs ?? 10_000
    const out = new Map<string, bigint>()
    for (const op of this.o.operators()) {
      const owed = this.o.payer.owed(op)
      let s = this.samples.get(op)
      if (s == null) this.samples.set(op, (s = []))
      s.push({ t: now, owed })
      while (s.length > 1 && s[0].t < now - horizon) s.shift()
      const recent = owed - s[0].owed
      const margin = this.o.payer.exposure(op) - owed
      // hold twice the recent spend (so a top-up lands before the lane is dry) and a margin
      const low = 2n * recent + margin
      const h = this.headroom(op, extra.get(op) ?? 0n, true)
      if (h < low) out.set(op, low - h + recent)
      this.o.metrics?.laneRoom.set({ operator: op }, povFloat(h > 0n ? h : 0n))
    }
    return out
  }

  /**
   * One allocation at a time: re-reads the unallocated deposit (when `read`), then tops up the
   * lanes that run low (and those in `extra`, by what they lack) in one transaction. What lanes
   * ask for beyond the deposit is shared in proportion; with room to spare each gets a quarter of
   * the deposit per lane, so allocations are few.
   */
  private async refill(read: boolean, extra = new Map<string, bigint>()): Promise<void> {
    while (this.busy != null) await this.busy.catch(() => {})
    const run = (async () => {
      if (read) await this.readDeposit()
      for (const op of this.o.operators()) if (!this.ceilings.has(op)) await this.readLane(op)
      const want = this.wanted(this.now, extra)
      if (want.size === 0 || this.free === 0n || this.unlocking) return
      const ops = this.o.operators()
      const share = this.free / BigInt(4 * Math.max(1, ops.length))
      let total = 0n
      for (const [op, w] of want) {
        const v = w > share ? w : share
        want.set(op, v)
        total += v
      }
      const payees: string[] = []
      const amounts: bigint[] = []
      let left = this.free
      for (const [op, w] of want) {
        let give = total > this.free ? (w * this.free) / total : w
        if (give > left) give = left
        if (give <= 0n) continue
        payees.push(op)
        amounts.push(give)
        left -= give
      }
      if (payees.length === 0) return
      const escrow = this.o.escrow.connect(this.o.signer) as PovEscrowContract
      await (await escrow.allocate(payees, amounts)).wait()
      const visibleAt = this.now + (this.o.visibleAfterMs ?? LANE_CACHE_MS + 250)
      payees.forEach((op, i) => {
        this.ceilings.set(op, (this.ceilings.get(op) ?? 0n) + amounts[i])
        const p = this.pending.get(op) ?? []
        p.push({ amount: amounts[i], visibleAt })
        this.pending.set(op, p)
      })
      const sum = amounts.reduce((a, b) => a + b, 0n)
      this.free -= sum
      this.stats.allocations++
      this.stats.allocated += sum
      this.o.metrics?.allocated.inc(povFloat(sum))
      this.o.metrics?.depositFree.set(povFloat(this.free))
      this.o.logger?.info(
        { lanes: payees.length, amount: formatUnits(sum, 18), free: formatUnits(this.free, 18) },
        'topped up escrow lanes from the unallocated deposit'
      )
    })()
    this.busy = run
    try {
      await run
    } finally {
      this.busy = null
    }
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
