// The node redeems by itself what a payer could take back: once a payer starts unlocking its
// deposit (PovEscrow.unlock), every voucher of its that the node holds and the escrow has not
// paid is redeemed at once (one redeemBatch; the earnings stay in the escrow until a claim
// withdraws them), long before the unlock period ends — an operator need not be watching.
// The payer's lanes are read every `pollMs` (and once at start, for unlocks that began while the
// node was down); the verifier already refuses new work from an unlocking payer.
import type { TransactionReceipt } from 'ethers'
import { claimAll, outstanding, type ClaimEscrow, type ClaimResult } from './claim.js'
import type { SignedVoucher } from './voucher-store.js'

export interface AutoClaimLog {
  info: (fields: object, msg: string) => void
  warn: (fields: object, msg: string) => void
}

export interface AutoClaimOptions {
  /** The escrow, connected with the operator's signer. */
  escrow: ClaimEscrow
  operator: string
  /** The vouchers held now (VoucherStore.all). */
  vouchers: () => SignedVoucher[]
  parseRedeemed: (r: TransactionReceipt) => Array<{ amount: bigint; fee: bigint }>
  log: AutoClaimLog
  /** Observers for node/metrics.ts: each claim made, and the value unredeemed from unlocking payers. */
  onClaim?: (r: ClaimResult) => void
  onAtRisk?: (wei: bigint) => void
  /** @default 30000 */
  pollMs?: number
}

export class AutoClaimer {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<ClaimResult | null> | null = null

  constructor(private readonly o: AutoClaimOptions) {}

  /** Checks now and redeems what unlocking payers owe; resolves with the claim made, if any. */
  async tick(): Promise<ClaimResult | null> {
    // one at a time: a slow chain must not stack redemptions of the same vouchers
    this.running ??= this.check().finally(() => {
      this.running = null
    })
    return await this.running
  }

  private async check(): Promise<ClaimResult | null> {
    const lines = await outstanding(this.o.escrow, this.o.operator, this.o.vouchers())
    const atRisk = lines.filter((l) => l.owed > 0n && l.unlockAt !== 0n && l.deposit > 0n)
    this.o.onAtRisk?.(atRisk.reduce((a, l) => a + l.expected, 0n))
    if (atRisk.length === 0) return null
    this.o.log.warn(
      {
        payers: atRisk.map((l) => ({
          payer: l.payer,
          owed: l.owed.toString(),
          unlockAt: Number(l.unlockAt)
        }))
      },
      'payer started unlocking its deposit: redeeming its vouchers now'
    )
    const r = await claimAll(
      this.o.escrow,
      this.o.operator,
      atRisk.map((l) => l.voucher),
      this.o.parseRedeemed,
      { withdraw: false }
    )
    this.o.log.info(
      {
        redeemed: r.redeemed.length,
        amount: r.amount.toString(),
        fee: r.fee.toString(),
        tx: r.receipt?.hash ?? null
      },
      'vouchers of unlocking payers redeemed (the earnings wait in the escrow for `pov node claim`)'
    )
    this.o.onClaim?.(r)
    this.o.onAtRisk?.(0n)
    return r
  }

  start(): void {
    const run = (): void => {
      this.tick().catch((err: unknown) => {
        this.o.log.warn(
          { err: (err as Error).message },
          'automatic voucher claim failed; retrying at the next check'
        )
      })
    }
    run()
    this.timer = setInterval(run, this.o.pollMs ?? 30_000)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = null
    await this.running?.catch(() => {})
  }
}
