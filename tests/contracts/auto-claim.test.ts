/**
 * node/payments/auto-claim.ts against the real escrow (in-process Hardhat network): the node
 * redeems by itself the vouchers of a payer that starts unlocking — with a log line and the
 * metric observers — and leaves the others alone (#22 item 12).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  by,
  depositFor,
  heldVoucher,
  load,
  op1HoldingTwoVouchers,
  POV,
  FEE_BPS
} from './fixture.js'
import { AutoClaimer } from '../../node/payments/auto-claim.js'
import { atRiskLine, atRiskOf, redeemedEvents } from '../../cli/node/paid.js'
import { outstanding } from '../../node/payments/claim.js'
import { toRedeemable } from '../../chain/vouchers.js'
import { formatChainTime } from '../../cli/chain.js'

describe('AutoClaimer', () => {
  it('redeems an unlocking payer’s vouchers at once, and only theirs', async () => {
    const env = await load()
    const { escrow } = env.contracts
    const { op, opAddr, held } = await op1HoldingTwoVouchers(env)
    const lines: string[] = []
    const atRisk: bigint[] = []
    let claims = 0
    const claimer = new AutoClaimer({
      escrow: by(escrow, op),
      operator: opAddr,
      vouchers: () => held,
      parseRedeemed: redeemedEvents,
      log: {
        info: (_f, m) => lines.push(`info: ${m}`),
        warn: (f, m) => lines.push(`warn: ${m} ${JSON.stringify(f)}`)
      },
      onClaim: () => claims++,
      onAtRisk: (w) => atRisk.push(w)
    })
    // nobody unlocking: nothing to do, no transaction
    assert.equal(await claimer.tick(), null)
    assert.deepEqual(atRisk, [0n])
    assert.equal(await escrow.pendingEarnings(opAddr), 0n)

    // alice starts unlocking: her voucher is redeemed at the next check, bob's stays held
    await (await by(escrow, env.alice).unlock()).wait()
    const r = await claimer.tick()
    assert.notEqual(r, null)
    assert.deepEqual(
      r!.redeemed.map((l) => [l.payer, l.owed]),
      [[await env.alice.getAddress(), POV(2)]]
    )
    assert.equal(r!.withdrawReceipt, null, 'redeemed only: the earnings wait in the escrow')
    assert.equal(await escrow.pendingEarnings(opAddr), POV(2) - (POV(2) * FEE_BPS) / 10_000n)
    const [, bobPaid] = await escrow.laneOf(await env.bob.getAddress(), opAddr)
    assert.equal(bobPaid, 0n, 'bob is not unlocking: his voucher is not redeemed')
    assert.equal(claims, 1)
    assert.deepEqual(atRisk.slice(1), [POV(2), 0n], 'at risk until redeemed')
    assert.match(lines[0], /^warn: payer started unlocking its deposit: redeeming its vouchers now/)
    assert.ok(lines[0].includes(await env.alice.getAddress()))
    assert.match(lines[1], /^info: vouchers of unlocking payers redeemed/)

    // nothing owed any more: the next check sends nothing
    assert.equal(await claimer.tick(), null)
    assert.equal(claims, 1)
  })

  it('pov node status: the "at risk" line sums the held vouchers of unlocking payers, with the first unlock’s end', async () => {
    const env = await load()
    const { escrow } = env.contracts
    const opAddr = await env.op2.getAddress()
    const carol = env.attacker // a third payer
    for (const p of [env.alice, env.bob, carol]) await depositFor(env, p, POV(10), opAddr)
    const held = await Promise.all(
      [
        [env.alice, POV(2)],
        [env.bob, POV(3)],
        [carol, POV(4)]
      ].map(
        async ([payer, amount]) =>
          await heldVoucher(env, payer as typeof env.alice, opAddr, amount as bigint)
      )
    )
    const line = async (): Promise<string> =>
      atRiskLine(atRiskOf(await outstanding(escrow, opAddr, held)))
    assert.equal(await line(), 'at risk      0 POV (no payer of a held voucher is unlocking)')

    // bob, then carol, start unlocking: both vouchers at risk, bob's unlock ends first
    await (await by(escrow, env.bob).unlock()).wait()
    const [, , bobEnds] = await escrow.laneOf(await env.bob.getAddress(), opAddr)
    await (await by(escrow, carol).unlock()).wait()
    const risk = atRiskOf(await outstanding(escrow, opAddr, held))
    assert.deepEqual(risk, { amount: POV(7), payers: 2, firstUnlock: BigInt(bobEnds) })
    assert.equal(
      atRiskLine(risk),
      `at risk      7 POV from 2 payer(s) unlocking (the first unlock ends ${formatChainTime(bobEnds)}) — a running node redeems them by itself; \`pov node claim\` does it now`
    )

    // carol's voucher redeemed (as the node's automatic claim does): only bob's stays at risk
    await (await by(escrow, env.op2).redeemBatch([toRedeemable(held[2])])).wait()
    assert.match(await line(), /^at risk {6}3 POV from 1 payer\(s\) unlocking /)
  })
})
