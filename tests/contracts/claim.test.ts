/**
 * node/payments/claim.ts against the real escrow (in-process Hardhat network): one redeemBatch,
 * then withdrawEarnings — or, with `withdraw: false`, the redemption alone, the earnings staying
 * pending until a later claim takes them out.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { by, heldVoucher, load, op1HoldingTwoVouchers, POV, FEE_BPS } from './fixture.js'
import { claimAll } from '../../node/payments/claim.js'
import { redeemedEvents } from '../../cli/node/paid.js'

describe('claimAll', () => {
  it('redeems without withdrawing, then a later claim withdraws everything pending', async () => {
    const env = await load()
    const { escrow, token } = env.contracts
    const { op, opAddr, held } = await op1HoldingTwoVouchers(env)
    const before = await token.balanceOf(opAddr)

    const first = await claimAll(by(escrow, op), opAddr, held, redeemedEvents, { withdraw: false })
    assert.equal(first.redeemed.length, 2)
    assert.equal(first.amount, POV(5))
    assert.equal(first.fee, (POV(5) * FEE_BPS) / 10_000n)
    assert.equal(first.withdrawReceipt, null)
    assert.equal(first.withdrawn, 0n)
    assert.equal(await token.balanceOf(opAddr), before, 'no tokens move without a withdrawal')
    assert.equal(await escrow.pendingEarnings(opAddr), first.amount - first.fee)

    // a higher voucher from alice, then a full claim: redeems it and withdraws both claims' earnings
    const a2 = await heldVoucher(env, env.alice, opAddr, POV(4))
    const second = await claimAll(by(escrow, op), opAddr, [a2, held[1]], redeemedEvents)
    assert.deepEqual(
      second.redeemed.map((l) => l.owed),
      [POV(2)]
    )
    assert.deepEqual(
      second.skipped.map((s) => s.reason),
      ['already redeemed']
    )
    assert.notEqual(second.withdrawReceipt, null)
    const net = POV(7) - (POV(7) * FEE_BPS) / 10_000n
    assert.equal(second.withdrawn, net)
    assert.equal(await token.balanceOf(opAddr), before + net)
    assert.equal(await escrow.pendingEarnings(opAddr), 0n)

    // nothing left: no transaction at all
    const third = await claimAll(by(escrow, op), opAddr, [a2, held[1]], redeemedEvents)
    assert.equal(third.receipt, null)
    assert.equal(third.withdrawReceipt, null)
  })
})
