// Checks the payment of every paid expert call before anything runs, and decides whether this
// node will be paid for the work: the node charges each call units × price and accepts it only
// when the highest voucher it holds from the payer covers everything charged so far, and that
// voucher is covered by the payer's lane to this node (PovEscrow: only this node's vouchers draw
// from it, and the payer gets it back only after an unlock period the node sees). So a node that
// redeems before the payer's unlock ends is paid everything it accepted — whatever the payer signs
// to itself or to other nodes.
//
// Clients prepay a little (router/payer.ts): a voucher covers the next calls too, and a call that
// is already covered carries the same voucher again — no signature to check, no chain read, no
// journal write. A voucher counts as money only once its signature and lane are checked and it is
// journaled durably (VoucherStore, fdatasync). A call that needs the new voucher waits for all
// three; a call still covered by the voucher the node already holds (the client signs the next one
// ahead of need) runs at once, and the new voucher is checked and journaled beside it, off the
// call's path — so the node is never exposed beyond what it holds, and never counts a voucher it
// could lose in a crash. Chain reads: a payer's lane once, then re-read in the background once a
// read is half `laneCacheMs` old; a call waits for a read only when the last one is older than
// `laneCacheMs` (as before: no call is accepted on a lane read older than that).
import { checksummed, isVoucherSignedByPayer, type VoucherDomain } from '../../protocol/voucher.js'
import { PaymentError, Status, UNDERPAID } from '../../protocol/errors.js'
import { LANE_CACHE_MS } from '../../protocol/payment.js'
import type { SignedVoucher, VoucherStore } from './voucher-store.js'

/** How many times a voucher signed ahead of need is checked in the background before it is dropped. */
const ADOPT_TRIES = 3

/** A payer's lane to this node as the escrow reports it (PovEscrow.laneOf). */
export interface Lane {
  /** What is left allocated to this node. */
  balance: bigint
  /** What this node's vouchers were already paid from it. */
  paid: bigint
  /** When the payer's unlock ends (0 when not unlocking). */
  unlockAt: bigint
}

/** The chain reads the verifier needs (the escrow contract, or a fake in unit tests). */
export interface EscrowView {
  laneOf(payer: string, payee: string): Promise<Lane>
}

export interface PaymentTerms {
  /** The operator address vouchers must name as payee. */
  payee: string
  /** POV wei per unit of work (one token row through one (layer, expert)); from the registry. */
  pricePerUnit: bigint
  domain: VoucherDomain
}

export interface VerifierOptions {
  /** How long a payer's lane read from the chain is trusted before it is read again (at most the
   *  protocol's LANE_CACHE_MS: clients rely on it). @default LANE_CACHE_MS */
  laneCacheMs?: number
  /** After a price change, how long the old price is still honoured (ms). @default 600000 */
  priceGraceMs?: number
  /**
   * Reads this node's registry price. When a call is underpaid the price is read again (at most
   * once a second) before refusing: a client that already priced at a newly lowered price is
   * served at once, without waiting for the node's next price poll.
   */
  readPrice?: () => Promise<bigint>
  now?: () => number
}

interface PayerState {
  /** Cumulative cost of the work accepted from this payer (never below what the chain paid). */
  charged: bigint
  lane: Lane & { at: number }
  /** The lane being re-read in the background. */
  reading: Promise<void> | null
  /** A higher voucher being checked and journaled beside the calls it is not needed for yet. */
  adopting: { amount: bigint; done: Promise<void> } | null
  /** The signature of the last voucher whose background check failed for good (not checked again). */
  rejected: string | null
  /** Units accepted from this payer since the node last read its registry price. */
  unitsSinceRead: bigint
}

export class PaymentVerifier {
  private readonly payee: string
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly payers = new Map<string, PayerState>()
  private readonly cacheMs: number
  private readonly graceMs: number
  private readonly now: () => number
  private price: bigint
  private priceReadAt = -Infinity
  /** Prices replaced less than `graceMs` ago, with when they stop being honoured. */
  private oldPrices: Array<{ price: bigint; until: number }> = []

  constructor(
    private readonly terms: PaymentTerms,
    private readonly store: VoucherStore,
    private readonly escrow: EscrowView,
    opts: VerifierOptions = {}
  ) {
    this.payee = checksummed(terms.payee)
    this.cacheMs = opts.laneCacheMs ?? LANE_CACHE_MS
    this.graceMs = opts.priceGraceMs ?? 600_000
    this.now = opts.now ?? Date.now
    this.price = terms.pricePerUnit
    this.readPrice = opts.readPrice
  }

  private readonly readPrice?: () => Promise<bigint>

  /** The registry price this node was last told about. */
  get currentPrice(): bigint {
    return this.price
  }

  /** The price a call is charged now: the lowest of the current price and those still in grace. */
  get pricePerUnit(): bigint {
    const t = this.now()
    this.oldPrices = this.oldPrices.filter((p) => p.until > t)
    return this.oldPrices.reduce((m, p) => (p.price < m ? p.price : m), this.price)
  }

  /**
   * The registry price as just read (call it on every read, changed or not). A raised price: calls
   * priced at the old one are still honoured for the grace period, so clients that priced them
   * before the change are not refused. A lowered price applies from the previous read: the chain
   * had it at some point since, a client may have priced calls at it already, and charging those
   * at the old price would leave its vouchers short of this node's count (refusals, "underpaid").
   */
  setPrice(price: bigint): void {
    if (price !== this.price) {
      const before = this.pricePerUnit
      this.oldPrices.push({ price: this.price, until: this.now() + this.graceMs })
      this.price = price
      const after = this.pricePerUnit
      if (after < before)
        for (const s of this.payers.values()) {
          const credit = (before - after) * s.unitsSinceRead
          s.charged = s.charged > credit ? s.charged - credit : 0n
        }
    }
    for (const s of this.payers.values()) s.unitsSinceRead = 0n
  }

  /**
   * Accepts `units` of work paid by `voucher`, or throws PaymentError (PAYMENT_REQUIRED /
   * PAYMENT_INVALID) saying why; returns a receipt whose `refund()` takes the charge back when
   * the work is not delivered after all.
   */
  async verify(
    voucher: SignedVoucher | undefined,
    units: number
  ): Promise<{ charged: bigint; refund: () => void }> {
    if (voucher == null)
      throw new PaymentError(
        'this node serves paid calls only: attach a voucher (pov infer pays automatically)',
        Status.PAYMENT_REQUIRED
      )
    let payer: string
    try {
      payer = checksummed(voucher.payer)
    } catch {
      throw invalid('voucher payer is not an address')
    }
    // One payer's vouchers are checked in arrival order, so two in flight cannot both count.
    const prev = this.locks.get(payer) ?? Promise.resolve()
    const run = prev
      .catch(() => {})
      .then(async () => await this.check({ ...voucher, payer }, units))
    this.locks.set(payer, run)
    try {
      const charged = await run
      return {
        charged,
        refund: () => {
          const s = this.payers.get(payer)
          if (s != null) s.charged -= charged
        }
      }
    } finally {
      if (this.locks.get(payer) === run) this.locks.delete(payer)
    }
  }

  private async check(v: SignedVoucher, units: number): Promise<bigint> {
    let payee: string
    try {
      payee = checksummed(v.payee)
    } catch {
      throw invalid('voucher payee is not an address')
    }
    if (payee !== this.payee)
      throw invalid(`voucher is for payee ${payee}, this node is paid as ${this.payee}`)
    const s = await this.state(v.payer)
    if (s.lane.unlockAt !== 0n)
      throw new PaymentError(
        `payer ${v.payer} is withdrawing its deposit (unlock started): no new work is accepted`,
        Status.PAYMENT_REQUIRED
      )
    let price = this.pricePerUnit
    let cost = price * BigInt(units)
    let need = s.charged + cost
    let covered = this.covered(v.payer, s)
    let raise = false
    if (v.cumulativeAmount > covered) {
      if (need <= covered) {
        // signed ahead of need: this call is covered already; the voucher counts once checked
        // and on disk
        this.adoptLater(v, s)
      } else {
        if (s.adopting != null) {
          await s.adopting.done
          covered = this.covered(v.payer, s)
        }
        if (v.cumulativeAmount > covered) {
          // a new, higher voucher this call needs: it must be the payer's, and its lane must cover it
          this.vet(v, s)
          covered = v.cumulativeAmount
          raise = true
        }
      }
    }
    if (need > covered && this.readPrice != null && this.now() - this.priceReadAt >= 1000) {
      this.priceReadAt = this.now()
      this.setPrice(await this.readPrice())
      price = this.pricePerUnit
      cost = price * BigInt(units)
      need = s.charged + cost
    }
    if (need > covered)
      throw invalid(
        `${UNDERPAID} ${units} units at ${price} wei/unit bring this node's charges to ${need}, the voucher covers ${covered} (the voucher is ${v.cumulativeAmount}; a client that priced at an older price is refused once its grace period is over — re-read the registry price)`
      )
    if (raise) await this.store.put(v)
    s.charged = need
    s.unitsSinceRead += BigInt(units)
    return cost
  }

  /** What this node may count on from `payer`: its highest journaled voucher, or what the chain paid. */
  private covered(payer: string, s: PayerState): bigint {
    const held = this.store.get(payer)?.cumulativeAmount ?? 0n
    return held > s.lane.paid ? held : s.lane.paid
  }

  /** Throws PaymentError unless `v` is the payer's and its lane to this node covers it. */
  private vet(v: SignedVoucher, s: PayerState): void {
    if (!isVoucherSignedByPayer(this.terms.domain, v, v.signature))
      throw invalid(`forged voucher: the signature is not ${v.payer}'s`)
    this.vetLane(v, s)
  }

  /** Throws PaymentError unless the payer's lane to this node (as last read) covers `v`. */
  private vetLane(v: SignedVoucher, s: PayerState): void {
    const unredeemed = v.cumulativeAmount - s.lane.paid
    if (unredeemed > s.lane.balance)
      throw new PaymentError(
        `insufficient escrow: payer ${v.payer} has ${s.lane.balance} in its lane to this node (${this.payee}) but would owe it ${unredeemed} — the client allocates more with \`pov infer\` (or PovEscrow.allocate)`,
        Status.PAYMENT_REQUIRED
      )
  }

  /**
   * Adopts `v` after the current work (on the next turn of the event loop), once at a time per
   * payer. A failure is not reported here: the call that needs the voucher checks it again and
   * is refused with the reason. Only a forged voucher is final: any other failure (a cached lane
   * read that predates the payer's allocation, a chain or disk error) is tried again on a fresh
   * lane read — at once, then `laneCacheMs` later, ADOPT_TRIES in all — since an honest client's
   * last voucher (signed ahead, then carried by the run's last calls) is never presented again.
   */
  private adoptLater(v: SignedVoucher, s: PayerState, attempt = 0): void {
    if (s.adopting != null && s.adopting.amount >= v.cumulativeAmount) return
    if (s.rejected === v.signature) return
    const prev = s.adopting?.done ?? Promise.resolve()
    let failed = false
    const job = {
      amount: v.cumulativeAmount,
      done: prev
        .then(async () => {
          await new Promise((resolve) => setImmediate(resolve))
          if (v.cumulativeAmount <= this.covered(v.payer, s)) return
          if (!isVoucherSignedByPayer(this.terms.domain, v, v.signature)) {
            s.rejected = v.signature
            return
          }
          if (attempt > 0) await this.readLane(v.payer, s, this.now())
          this.vetLane(v, s)
          await this.store.put(v)
        })
        .catch(() => {
          failed = true
        })
        .finally(() => {
          if (s.adopting === job) s.adopting = null
          if (!failed) return
          if (attempt + 1 >= ADOPT_TRIES) s.rejected = v.signature
          else if (attempt === 0) this.adoptLater(v, s, 1)
          else {
            const timer = setTimeout(() => this.adoptLater(v, s, attempt + 1), this.cacheMs)
            timer.unref()
          }
        })
    }
    s.adopting = job
  }

  /**
   * Waits for the vouchers being checked and journaled in the background (not for retries still
   * waiting their turn): call it before closing the store.
   */
  async drain(): Promise<void> {
    for (;;) {
      const pending = [...this.payers.values()].flatMap((s) =>
        s.adopting != null ? [s.adopting.done] : []
      )
      if (pending.length === 0) return
      await Promise.all(pending)
    }
  }

  /**
   * The payer's state, reading its lane when first seen or when the last read is older than
   * `laneCacheMs`, and re-reading it in the background once it is half that old.
   */
  private async state(payer: string): Promise<PayerState> {
    let s = this.payers.get(payer)
    const t = this.now()
    if (s == null) {
      const lane = await this.escrow.laneOf(payer, this.payee)
      // work this node accepted before a restart is covered by the voucher it holds
      const held = this.store.get(payer)?.cumulativeAmount ?? 0n
      s = {
        charged: held > lane.paid ? held : lane.paid,
        lane: { ...lane, at: t },
        reading: null,
        adopting: null,
        rejected: null,
        unitsSinceRead: 0n
      }
      this.payers.set(payer, s)
      return s
    }
    const age = t - s.lane.at
    if (age >= this.cacheMs) await this.readLane(payer, s, t)
    else if (age >= this.cacheMs / 2 && s.reading == null) {
      const st = s
      st.reading = this.readLane(payer, st, t)
        .catch(() => {}) // the next call past laneCacheMs reads again, and fails with the reason
        .finally(() => {
          st.reading = null
        })
    }
    return s
  }

  /** Reads the lane (started at `t`) into `s`, unless a newer read landed meanwhile. */
  private async readLane(payer: string, s: PayerState, t: number): Promise<void> {
    const lane = await this.escrow.laneOf(payer, this.payee)
    if (t < s.lane.at) return
    s.lane = { ...lane, at: t }
    if (lane.paid > s.charged) s.charged = lane.paid
  }

  /** Forgets cached lane reads (after a redeem, say). */
  invalidate(): void {
    for (const s of this.payers.values()) s.lane.at = -Infinity
  }
}

function invalid(msg: string): PaymentError {
  return new PaymentError(msg, Status.PAYMENT_INVALID)
}

/** The escrow contract as an EscrowView. */
export function escrowView(escrow: {
  laneOf(payer: string, payee: string): Promise<readonly [bigint, bigint, bigint]>
}): EscrowView {
  return {
    async laneOf(payer, payee) {
      const [balance, paid, unlockAt] = await escrow.laneOf(payer, payee)
      return { balance: BigInt(balance), paid: BigInt(paid), unlockAt: BigInt(unlockAt) }
    }
  }
}
