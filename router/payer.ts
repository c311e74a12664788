// The client's side of payment: one cumulative voucher stream per payee, prepaid a little. Each
// expert call adds rows × the node's price to what this client owes that payee; while the last
// signed voucher still covers it, the call carries that same voucher again (no signature, no
// chain read). A voucher signs what is owed plus a margin: what this run already owes that payee,
// capped at `prepay` — so a steady decode signs about once per payee per half `prepay` worth of
// work (one generated token's worth by default, see PaidRouterOptions.prepayUnits), and a run
// never prepays more than it spent. The next voucher is signed ahead, off the call's path: once a
// call leaves less than half the margin, it goes out with the voucher that covers it and the next
// one is signed while the node works, so a steady decode never waits for a signature (nor the node
// for its check and journal, see node/payments/verifier.ts). The margin is the client's risk: the
// node may redeem the last voucher whole. A call the node refused (or failed) is taken back from
// what is owed, so the client never pays for it beyond the prepaid margin it already chose to
// risk. The payee's on-chain `paid` is read once per payee, and the signed amounts persist per
// (chain, escrow, payer) so a later run continues above what nodes hold.
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { getAddress, type Signer } from 'ethers'
import {
  checksummed,
  signVoucher,
  type SignedVoucher,
  type VoucherDomain
} from '../protocol/voucher.js'

export interface PayerOptions {
  signer: Signer
  domain: VoucherDomain
  /** What the escrow already paid `payee` from this payer (the floor of a new voucher stream). */
  paidOnChain: (payer: string, payee: string) => Promise<bigint>
  /** JSON file holding the last cumulative amount per payee; none = in memory only. */
  ledgerPath?: string
  /**
   * The most a new voucher signs beyond what is owed, per payee (POV wei); the margin is also
   * never more than this run already owes that payee, so a short run prepays little. @default 0
   */
  prepay?: (payee: string) => bigint
}

interface Stream {
  /** What this client owes the payee in total (cumulative, the floor included). */
  owed: bigint
  /** What calls that asked to pay but are not through `pay` yet will add to `owed`. */
  queued: bigint
  /** Where this run started (what the chain paid, or the last run signed). */
  floor: bigint
  /** The last voucher signed for the payee (covers `owed` while its amount is ≥ it). */
  last: SignedVoucher | null
  /** The margin `last` was signed with (its amount minus what was owed then). */
  margin: bigint
  /** The next voucher, being signed ahead of need. */
  ahead: Promise<void> | null
  /** The highest cumulative amount ever signed for the payee (persisted). */
  signed: bigint
  /** What was owed right after the last `resync` conceded a voucher (null: none this run). */
  resyncedAt: bigint | null
  /** The highest voucher a call carried that the payee answered (it holds that voucher). */
  delivered: bigint
  /**
   * Vouchers on calls not answered yet, with how many such calls carry each: a call that is never
   * answered (a hedge that lost, a timeout) is owed, and so is its voucher given.
   */
  carried: Map<bigint, number>
}

/** A payment attached to one call: the voucher, and how to take the charge back if refused. */
export interface Payment {
  voucher: SignedVoucher
  /** The call was refused or failed: it is not owed. */
  refund: () => void
  /** The payee answered the call: it holds the voucher (see `prepaid`). */
  delivered: () => void
}

/**
 * A new voucher is signed ahead once what the last one still prepays falls below this share of
 * the margin it was signed with: late enough that each signature advances by ¾ of a margin, early
 * enough that a steady stream of calls never outruns it.
 */
const AHEAD_BELOW = 4n

export class Payer {
  private readonly streams = new Map<string, Stream>()
  private readonly saved = new Map<string, bigint>()
  private readonly spentNow = new Map<string, { amount: bigint; calls: number; units: number }>()
  private tail = new Map<string, Promise<unknown>>()
  private saving: Promise<void> | null = null
  private dirty = false
  /** The ledger's directory exists (made once, not on every voucher signed). */
  private dirMade = false
  private readonly counters = { signatures: 0, chainReads: 0, refunds: 0 }

  private constructor(
    readonly address: string,
    private readonly opts: PayerOptions,
    saved: Record<string, string>
  ) {
    for (const [payee, c] of Object.entries(saved)) this.saved.set(getAddress(payee), BigInt(c))
  }

  static async create(opts: PayerOptions): Promise<Payer> {
    let saved: Record<string, string> = {}
    if (opts.ledgerPath != null) {
      try {
        saved = JSON.parse(await readFile(opts.ledgerPath, 'utf8')).cumulative ?? {}
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new Error(`cannot read payer ledger ${opts.ledgerPath}: ${(err as Error).message}`)
      }
    }
    return new Payer(getAddress(await opts.signer.getAddress()), opts, saved)
  }

  /** Voucher signatures made, chain reads made and refunds taken by this payer so far. */
  stats(): { signatures: number; chainReads: number; refunds: number } {
    return { ...this.counters }
  }

  /**
   * Pays `payee` `amount` more, for `units` of work. Payments to one payee resolve in call order,
   * so callers that send right after the await keep vouchers increasing on the wire.
   */
  async pay(payee: string, amount: bigint, units = 0): Promise<Payment> {
    const to = checksummed(payee)
    // calls asking together (an MoE layer's experts on one node) are covered by one signature
    const known = this.streams.get(to)
    if (known != null) known.queued += amount
    const prev = this.tail.get(to) ?? Promise.resolve()
    const next = prev
      .catch(() => {})
      .then(async () => {
        const s = known ?? (await this.stream(to))
        if (known != null) s.queued -= amount
        s.owed += amount
        if (s.last == null || s.last.cumulativeAmount < s.owed) {
          // the voucher signed ahead may cover it; else this call waits for a new one
          if (s.ahead != null) await s.ahead.catch(() => {})
          if (s.last == null || s.last.cumulativeAmount < s.owed)
            await this.sign(to, s).catch((err: unknown) => {
              s.owed -= amount // no voucher went out: the call is not owed
              throw err
            })
        }
        const voucher = s.last as SignedVoucher
        if (s.ahead == null && voucher.cumulativeAmount - s.owed < s.margin / AHEAD_BELOW) {
          const ahead = this.sign(to, s, true)
          s.ahead = ahead
          void ahead
            .catch(() => {}) // a call that needs it signs again, and fails with the reason
            .finally(() => {
              if (s.ahead === ahead) s.ahead = null
            })
        }
        const sp = this.spentNow.get(to) ?? { amount: 0n, calls: 0, units: 0 }
        this.spentNow.set(to, {
          amount: sp.amount + amount,
          calls: sp.calls + 1,
          units: sp.units + units
        })
        const amt = voucher.cumulativeAmount
        s.carried.set(amt, (s.carried.get(amt) ?? 0) + 1)
        let settled = false
        const answered = (): void => {
          const n = (s.carried.get(amt) ?? 1) - 1
          if (n > 0) s.carried.set(amt, n)
          else s.carried.delete(amt)
        }
        let refunded = false
        return {
          voucher,
          delivered: () => {
            if (settled || refunded) return
            settled = true
            answered()
            if (amt > s.delivered) s.delivered = amt
            for (const k of s.carried.keys()) if (k <= s.delivered) s.carried.delete(k)
          },
          refund: () => {
            if (refunded) return
            refunded = true
            if (!settled) answered()
            settled = true
            this.counters.refunds++
            s.owed -= amount
            const now = this.spentNow.get(to)
            if (now != null)
              this.spentNow.set(to, {
                amount: now.amount - amount,
                calls: now.calls - 1,
                units: now.units - units
              })
          }
        }
      })
    this.tail.set(to, next)
    return await next
  }

  /**
   * Signs the next voucher to `to`: what is owed, the calls already asking included, plus the
   * margin (what this run owes, capped at `prepay`). Called from a payment (which waits for it)
   * or ahead of need (on the next turn of the event loop, so the call that asked goes out first).
   */
  private async sign(to: string, s: Stream, ahead = false): Promise<void> {
    if (ahead) await new Promise((resolve) => setImmediate(resolve))
    const owed = s.owed + s.queued
    const cap = this.opts.prepay?.(to) ?? 0n
    const run = owed - s.floor
    const margin = run < cap ? run : cap
    const cumulativeAmount = owed + margin
    if (s.last != null && s.last.cumulativeAmount >= cumulativeAmount) return
    const v = { payer: this.address, payee: to, cumulativeAmount }
    const signature = await signVoucher(this.opts.signer, this.opts.domain, v)
    this.counters.signatures++
    // a voucher signed meanwhile (a call that could not wait) may be higher: keep the highest
    if (s.last == null || cumulativeAmount > s.last.cumulativeAmount) {
      s.last = { ...v, signature }
      s.margin = margin
    }
    if (cumulativeAmount > s.signed) {
      s.signed = cumulativeAmount
      this.schedulePersist()
    }
  }

  /**
   * The payee refused the last voucher as not covering the call although, by this client's count,
   * it does: a node that restarted cannot know how much of a voucher's prepaid margin it already
   * served, so it counts the whole voucher as spent. Concede that (the node may redeem the voucher
   * whole anyway, so it costs nothing the margin did not already risk): what is owed becomes the
   * last voucher's amount, and the next call signs above it. Again only once the node has served
   * at least one margin's worth since the last concession: a node that restarts often is followed,
   * while one that refuses to collect margins gets at most one per margin of work it did (the
   * client pays it at most twice for that work); returns whether it conceded.
   */
  resync(payee: string): boolean {
    const s = this.streams.get(checksummed(payee))
    if (s?.last == null) return false
    if (s.resyncedAt != null && s.owed - s.resyncedAt < s.margin) return false
    if (s.last.cumulativeAmount > s.owed) s.owed = s.last.cumulativeAmount
    s.resyncedAt = s.owed
    return true
  }

  /**
   * What the highest voucher given to `payee` signs beyond what this client owes it (0 when none):
   * what the payee may redeem beyond the calls. A voucher counts as given once a call carried it
   * and was not refused: the payee answered it, or never did (it may have read it, as it may have
   * done the work, which stays owed). A voucher signed ahead that no call carried yet — the one
   * signed after a run's last call — is not given: the payee never saw it.
   */
  prepaid(payee: string): bigint {
    const s = this.streams.get(checksummed(payee))
    if (s == null) return 0n
    let given = s.delivered
    for (const k of s.carried.keys()) if (k > given) given = k
    const m = given - s.owed
    return m > 0n ? m : 0n
  }

  /**
   * The highest cumulative amount a voucher to `payee` may sign once `extra` more is owed: what
   * is owed (calls asking included) plus the most a margin adds. Its lane must cover this (the
   * escrow's balance + paid), or the node refuses the voucher.
   */
  exposure(payee: string, extra = 0n): bigint {
    const to = checksummed(payee)
    const s = this.streams.get(to)
    const owed = s == null ? (this.saved.get(to) ?? 0n) : s.owed + s.queued
    return owed + extra + (this.opts.prepay?.(to) ?? 0n)
  }

  /** What this client owes `payee` in total so far (cumulative, calls asking included). */
  owed(payee: string): bigint {
    const to = checksummed(payee)
    const s = this.streams.get(to)
    return s == null ? (this.saved.get(to) ?? 0n) : s.owed + s.queued
  }

  /** The highest cumulative amount this client signed to `payee` (this run or an earlier one). */
  signedFor(payee: string): bigint {
    const to = checksummed(payee)
    return this.streams.get(to)?.signed ?? this.saved.get(to) ?? 0n
  }

  /** Same as `pay`, without the refund handle. */
  async voucherFor(payee: string, amount: bigint, units = 0): Promise<SignedVoucher> {
    return (await this.pay(payee, amount, units)).voucher
  }

  /** Reads the chain's `paid` of every payee now (setup), so that no call waits on the chain. */
  async prepare(payees: string[]): Promise<void> {
    await Promise.all(payees.map(async (p) => await this.stream(checksummed(p))))
  }

  /** The stream of `payee`, starting above what the chain paid and what earlier runs signed. */
  private async stream(to: string): Promise<Stream> {
    let s = this.streams.get(to)
    if (s == null) {
      this.counters.chainReads++
      const onChain = await this.opts.paidOnChain(this.address, to)
      const saved = this.saved.get(to) ?? 0n
      // an earlier run's prepaid margin is not reused: the node counts it as spent
      const floor = saved > onChain ? saved : onChain
      s = {
        owed: floor,
        queued: 0n,
        floor,
        last: null,
        margin: 0n,
        ahead: null,
        signed: floor,
        resyncedAt: null,
        delivered: 0n,
        carried: new Map()
      }
      this.streams.set(to, s)
    }
    return s
  }

  /** What this run paid each payee for calls that were served: amount, calls, units. */
  spent(): Map<string, { amount: bigint; calls: number; units: number }> {
    return new Map(this.spentNow)
  }

  private schedulePersist(): void {
    if (this.opts.ledgerPath == null) return
    this.dirty = true
    this.saving ??= this.persist()
  }

  private async persist(): Promise<void> {
    const path = this.opts.ledgerPath as string
    try {
      while (this.dirty) {
        this.dirty = false
        const all = new Map(this.saved)
        for (const [k, s] of this.streams) all.set(k, s.signed)
        const body = {
          payer: this.address,
          cumulative: Object.fromEntries([...all].map(([k, v]) => [k, v.toString()]))
        }
        if (!this.dirMade) {
          await mkdir(dirname(path), { recursive: true })
          this.dirMade = true
        }
        await writeFile(path + '.tmp', JSON.stringify(body, null, 2) + '\n')
        await rename(path + '.tmp', path)
      }
    } finally {
      this.saving = null
    }
  }

  /** Waits for the ledger to be on disk. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.tail.values()])
    await Promise.allSettled([...this.streams.values()].map(async (s) => await s.ahead))
    while (this.saving != null) await this.saving
  }
}
