// Checks the voucher attached to every paid expert call before anything runs: the payer signed it,
// it names this node's operator as payee, it raises the cumulative amount by at least the price of
// the work, and the payer's escrow covers everything this node holds unredeemed. Accepted vouchers
// are journaled durably (VoucherStore) before the call proceeds.
import { getAddress } from 'ethers'
import { isVoucherSignedByPayer, type VoucherDomain } from '../../protocol/voucher.js'
import { PaymentError, Status } from '../../protocol/errors.js'
import type { SignedVoucher, VoucherStore } from './voucher-store.js'

/** The chain reads the verifier needs (the escrow contract, or a fake in unit tests). */
export interface EscrowView {
  depositOf(payer: string): Promise<{ balance: bigint; unlockAt: bigint }>
  paid(payer: string, payee: string): Promise<bigint>
}

export interface PaymentTerms {
  /** The operator address vouchers must name as payee. */
  payee: string
  /** POV wei per unit of work (one token row through one (layer, expert)); from the registry. */
  pricePerUnit: bigint
  domain: VoucherDomain
}

export interface VerifierOptions {
  /** How long a payer's on-chain deposit is trusted before it is read again. @default 2000 */
  depositCacheMs?: number
}

export class PaymentVerifier {
  private readonly payee: string
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly deposits = new Map<string, { at: number; balance: bigint; unlockAt: bigint }>()
  private readonly paidOnChain = new Map<string, bigint>()
  private readonly cacheMs: number

  constructor(
    private readonly terms: PaymentTerms,
    private readonly store: VoucherStore,
    private readonly escrow: EscrowView,
    opts: VerifierOptions = {}
  ) {
    this.payee = getAddress(terms.payee)
    this.cacheMs = opts.depositCacheMs ?? 2000
  }

  get pricePerUnit(): bigint {
    return this.terms.pricePerUnit
  }

  /**
   * Verifies and journals `voucher` as payment for `units` of work; returns the amount it adds.
   * Throws PaymentError (PAYMENT_REQUIRED / PAYMENT_INVALID) with a message that says why.
   */
  async verify(voucher: SignedVoucher | undefined, units: number): Promise<bigint> {
    if (voucher == null)
      throw new PaymentError(
        'this node serves paid calls only: attach a voucher (pov infer pays automatically)',
        Status.PAYMENT_REQUIRED
      )
    let payer: string
    try {
      payer = getAddress(voucher.payer)
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
      return await run
    } finally {
      if (this.locks.get(payer) === run) this.locks.delete(payer)
    }
  }

  private async check(v: SignedVoucher, units: number): Promise<bigint> {
    let payee: string
    try {
      payee = getAddress(v.payee)
    } catch {
      throw invalid('voucher payee is not an address')
    }
    if (payee !== this.payee)
      throw invalid(`voucher is for payee ${payee}, this node is paid as ${this.payee}`)
    if (!isVoucherSignedByPayer(this.terms.domain, v, v.signature))
      throw invalid(`forged voucher: the signature is not ${v.payer}'s`)

    const paid = await this.paid(v.payer)
    const held = this.store.get(v.payer)?.cumulativeAmount ?? 0n
    const floor = held > paid ? held : paid
    if (v.cumulativeAmount <= floor) {
      throw invalid(
        `stale or replayed voucher: cumulative ${v.cumulativeAmount} is not above the ${floor} already held from ${v.payer}`
      )
    }
    const price = this.terms.pricePerUnit * BigInt(units)
    const added = v.cumulativeAmount - floor
    if (added < price)
      throw invalid(
        `underpaid: ${units} units at ${this.terms.pricePerUnit} cost ${price}, the voucher adds ${added}`
      )

    const dep = await this.deposit(v.payer)
    if (dep.unlockAt !== 0n)
      throw new PaymentError(
        `payer ${v.payer} is withdrawing its deposit (unlock started): no new work is accepted`,
        Status.PAYMENT_REQUIRED
      )
    const unredeemed = v.cumulativeAmount - paid
    if (unredeemed > dep.balance) {
      throw new PaymentError(
        `insufficient escrow: payer ${v.payer} has ${dep.balance} deposited but would owe this node ${unredeemed} — deposit more with \`pov deposit\``,
        Status.PAYMENT_REQUIRED
      )
    }
    await this.store.put(v)
    return added
  }

  private async paid(payer: string): Promise<bigint> {
    let p = this.paidOnChain.get(payer)
    if (p == null) {
      p = await this.escrow.paid(payer, this.payee)
      this.paidOnChain.set(payer, p)
    }
    return p
  }

  private async deposit(payer: string): Promise<{ balance: bigint; unlockAt: bigint }> {
    const c = this.deposits.get(payer)
    if (c != null && Date.now() - c.at < this.cacheMs) return c
    const d = await this.escrow.depositOf(payer)
    const entry = { at: Date.now(), balance: d.balance, unlockAt: d.unlockAt }
    this.deposits.set(payer, entry)
    return entry
  }

  /** Forgets cached chain reads (after a redeem, say). */
  invalidate(): void {
    this.deposits.clear()
    this.paidOnChain.clear()
  }
}

function invalid(msg: string): PaymentError {
  return new PaymentError(msg, Status.PAYMENT_INVALID)
}

/** The escrow contract as an EscrowView. */
export function escrowView(escrow: {
  depositOf(p: string): Promise<readonly [bigint, bigint] | { balance: bigint; unlockAt: bigint }>
  paid(a: string, b: string): Promise<bigint>
}): EscrowView {
  return {
    async depositOf(payer) {
      const r = await escrow.depositOf(payer)
      const [balance, unlockAt] = 'balance' in r ? [r.balance, r.unlockAt] : r
      return { balance: BigInt(balance), unlockAt: BigInt(unlockAt) }
    },
    async paid(payer, payee) {
      return BigInt(await escrow.paid(payer, payee))
    }
  }
}
