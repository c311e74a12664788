// A claim: redeems every outstanding voucher of an operator in one transaction
// (PovEscrow.redeemBatch), which credits the operator's earnings in the escrow, then takes the
// earnings out (PovEscrow.withdrawEarnings — pull payments: redemptions move no tokens).
// Vouchers already fully paid are skipped (a second claim pays nothing and sends nothing), and so
// are payers whose lane to this operator is empty (the escrow would skip them too, with a
// VoucherSkipped event, but that costs gas). The withdrawal is
// skipped when nothing is pending, and also picks up earnings a previous claim left behind.
// `withdraw: false` only redeems: an operator that redeems often (to settle before payers'
// unlock periods end) and withdraws rarely pays the token transfer once per withdrawal.
import { getAddress, type ContractTransactionResponse, type TransactionReceipt } from 'ethers'
import type { SignedVoucher } from './voucher-store.js'
import {
  MAX_CUMULATIVE_AMOUNT,
  toRedeemable,
  type RedeemableVoucher
} from '../../chain/vouchers.js'

export interface ClaimEscrow {
  laneOf(payer: string, payee: string): Promise<readonly [bigint, bigint, bigint]>
  redeemBatch(vouchers: RedeemableVoucher[]): Promise<ContractTransactionResponse>
  pendingEarnings(payee: string): Promise<bigint>
  withdrawEarnings(): Promise<ContractTransactionResponse>
}

export interface ClaimLine {
  payer: string
  cumulativeAmount: bigint
  owed: bigint
  expected: bigint
}
export interface ClaimResult {
  redeemed: ClaimLine[]
  skipped: Array<{ payer: string; reason: string }>
  /** Gross amount taken from escrow, and the protocol fee out of it (from the VoucherRedeemed events). */
  amount: bigint
  fee: bigint
  /** The redeemBatch receipt (null when there was nothing to redeem). */
  receipt: TransactionReceipt | null
  /** POV sent to the operator by withdrawEarnings (its pending earnings after the redemption; 0 with `withdraw: false`). */
  withdrawn: bigint
  /** The withdrawEarnings receipt (null when nothing was pending). */
  withdrawReceipt: TransactionReceipt | null
}

/** What is owed to `operator` by each held voucher beyond what the escrow already paid. */
export async function outstanding(
  escrow: Pick<ClaimEscrow, 'laneOf'>,
  operator: string,
  vouchers: SignedVoucher[]
): Promise<Array<ClaimLine & { voucher: SignedVoucher; deposit: bigint; unlockAt: bigint }>> {
  const me = getAddress(operator)
  // one voucher per payer: the chain reads for all of them go out together, not one after another
  return await Promise.all(
    vouchers
      .filter((v) => getAddress(v.payee) === me)
      .map(async (v) => {
        const [lane, paidRaw, unlockAt] = await escrow.laneOf(v.payer, me)
        const deposit = BigInt(lane)
        const paid = BigInt(paidRaw)
        const owed = v.cumulativeAmount > paid ? v.cumulativeAmount - paid : 0n
        return {
          payer: v.payer,
          cumulativeAmount: v.cumulativeAmount,
          owed,
          expected: owed < deposit ? owed : deposit,
          voucher: v,
          deposit,
          unlockAt: BigInt(unlockAt)
        }
      })
  )
}

export async function claimAll(
  escrow: ClaimEscrow,
  operator: string,
  vouchers: SignedVoucher[],
  parseRedeemed: (r: TransactionReceipt) => Array<{ amount: bigint; fee: bigint }>,
  opts: { withdraw?: boolean } = {}
): Promise<ClaimResult> {
  const lines = await outstanding(escrow, operator, vouchers)
  const skipped: ClaimResult['skipped'] = []
  const batch = lines.filter((l) => {
    if (l.owed === 0n) {
      skipped.push({ payer: l.payer, reason: 'already redeemed' })
      return false
    }
    if (l.deposit === 0n) {
      skipped.push({ payer: l.payer, reason: "the payer's lane to this node is empty" })
      return false
    }
    if (l.cumulativeAmount > MAX_CUMULATIVE_AMOUNT) {
      skipped.push({ payer: l.payer, reason: 'cumulative amount does not fit 128 bits' })
      return false
    }
    return true
  })
  let receipt: TransactionReceipt | null = null
  let events: Array<{ amount: bigint; fee: bigint }> = []
  if (batch.length > 0) {
    const tx = await escrow.redeemBatch(batch.map((l) => toRedeemable(l.voucher)))
    receipt = await tx.wait()
    if (receipt == null || receipt.status !== 1) throw new Error('redeemBatch transaction failed')
    events = parseRedeemed(receipt)
  }
  const pending =
    opts.withdraw === false ? 0n : BigInt(await escrow.pendingEarnings(getAddress(operator)))
  let withdrawReceipt: TransactionReceipt | null = null
  if (pending > 0n) {
    withdrawReceipt = await (await escrow.withdrawEarnings()).wait()
    if (withdrawReceipt == null || withdrawReceipt.status !== 1)
      throw new Error('withdrawEarnings transaction failed')
  }
  return {
    redeemed: batch.map(({ payer, cumulativeAmount, owed, expected }) => ({
      payer,
      cumulativeAmount,
      owed,
      expected
    })),
    skipped,
    amount: events.reduce((a, e) => a + e.amount, 0n),
    fee: events.reduce((a, e) => a + e.fee, 0n),
    receipt,
    withdrawn: pending,
    withdrawReceipt
  }
}
