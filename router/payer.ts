// The client's side of payment: one cumulative voucher stream per payee. Each expert call raises
// that payee's cumulative amount by rows × the node's on-chain price and is signed (EIP-712) in
// call order, so a node always sees its vouchers increase. The cumulative amounts are persisted
// per (chain, escrow, payer) so a later run continues above what nodes already hold.
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { getAddress, type Signer } from 'ethers'
import { signVoucher, type SignedVoucher, type VoucherDomain } from '../protocol/voucher.js'

export interface PayerOptions {
  signer: Signer
  domain: VoucherDomain
  /** What the escrow already paid `payee` from this payer (the floor of a new voucher stream). */
  paidOnChain: (payer: string, payee: string) => Promise<bigint>
  /** JSON file holding the last cumulative amount per payee; none = in memory only. */
  ledgerPath?: string
}

export class Payer {
  private readonly cumulative = new Map<string, bigint>()
  private readonly spentNow = new Map<string, { amount: bigint; calls: number; units: number }>()
  private tail = new Map<string, Promise<unknown>>()
  private saving: Promise<void> | null = null
  private dirty = false

  private constructor(
    readonly address: string,
    private readonly opts: PayerOptions,
    saved: Record<string, string>
  ) {
    for (const [payee, c] of Object.entries(saved))
      this.cumulative.set(getAddress(payee), BigInt(c))
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

  /**
   * A voucher paying `payee` `amount` more, for `units` of work. Vouchers to one payee resolve in
   * call order, so callers that send right after the await keep them increasing on the wire.
   */
  async voucherFor(payee: string, amount: bigint, units = 0): Promise<SignedVoucher> {
    const to = getAddress(payee)
    const prev = this.tail.get(to) ?? Promise.resolve()
    const next = prev
      .catch(() => {})
      .then(async () => {
        let base = this.cumulative.get(to)
        const onChain = await this.opts.paidOnChain(this.address, to)
        if (base == null || base < onChain) base = onChain
        const cumulativeAmount = base + amount
        this.cumulative.set(to, cumulativeAmount)
        const s = this.spentNow.get(to) ?? { amount: 0n, calls: 0, units: 0 }
        this.spentNow.set(to, {
          amount: s.amount + amount,
          calls: s.calls + 1,
          units: s.units + units
        })
        this.schedulePersist()
        const v = { payer: this.address, payee: to, cumulativeAmount }
        return { ...v, signature: await signVoucher(this.opts.signer, this.opts.domain, v) }
      })
    this.tail.set(to, next)
    return await next
  }

  /** What this run paid each payee: amount, calls, units. */
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
        const body = {
          payer: this.address,
          cumulative: Object.fromEntries([...this.cumulative].map(([k, v]) => [k, v.toString()]))
        }
        await mkdir(dirname(path), { recursive: true })
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
    while (this.saving != null) await this.saving
  }
}
