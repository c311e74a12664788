// The paying router's payment step against real in-process nodes (libp2p on 127.0.0.1, fake
// runtimes, the real PaymentVerifier with a fake lane): a call a node refuses is not owed (issue
// 12, finding 11: the client's total rose for refused calls), a served one is; covered calls
// carry the same voucher again, so a run signs far fewer vouchers than it makes calls (finding 10).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { Wallet } from 'ethers'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import { voucherDomain } from '../../../protocol/voucher.js'
import { voucherFromWire } from '../../../protocol/payment.js'
import { PaymentError, Status } from '../../../protocol/errors.js'
import { VoucherStore } from '../../../node/payments/voucher-store.js'
import { PaymentVerifier } from '../../../node/payments/verifier.js'
import { Router } from '../../../router/router.js'
import { Payer } from '../../../router/payer.js'
import { paymentHooks, type CallCharge } from '../../../router/paid.js'
import { fakeModel, MODEL_ID, HIDDEN, rowsOf } from '../node/fixtures.js'

type Host = Libp2p<{ expert: ExpertService }>
const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup.reverse()) await c()
})

const domain = voucherDomain('0x00000000000000000000000000000000000000e5', 31337)
const PRICE = 10n

/**
 * A paid node: the real verifier over a lane of `lane` wei; `refuse` makes it refuse every call.
 * `restart()` gives it a new verifier over its reopened journal, as a restarted process has.
 */
async function paidNode(operator: { address: string }, lane: bigint, refuse = false) {
  const dir = await mkdtemp(join(tmpdir(), 'pov-paid-hooks-'))
  const open = async () => {
    const store = await VoucherStore.open(dir)
    const verifier = new PaymentVerifier(
      { payee: operator.address, pricePerUnit: PRICE, domain },
      store,
      {
        laneOf: async () => ({ balance: lane, paid: 0n, unlockAt: 0n })
      }
    )
    return { store, verifier }
  }
  let state = await open()
  const h = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: {
      expert: expertService({
        models: [fakeModel()],
        verifyPayment: async (req) => {
          if (refuse) throw new PaymentError('refused for the test', Status.PAYMENT_REQUIRED)
          return (await state.verifier.verify(voucherFromWire(req.payment), req.rows)).refund
        }
      })
    }
  })) as unknown as Host
  cleanup.push(async () => {
    await h.stop()
    await state.store.close()
    await rm(dir, { recursive: true, force: true })
  })
  return {
    host: h,
    get store() {
      return state.store
    },
    restart: async () => {
      await state.store.close()
      state = await open()
    }
  }
}

test('a refused call is not owed; served calls are, and reuse the prepaid voucher', async () => {
  const payerKey = Wallet.createRandom()
  const opA = Wallet.createRandom()
  const opB = Wallet.createRandom()
  const a = await paidNode(opA, 10n ** 18n, true) // refuses everything
  const b = await paidNode(opB, 10n ** 18n)
  const payer = await Payer.create({
    signer: new Wallet(payerKey.privateKey),
    domain,
    paidOnChain: async () => 0n,
    prepay: () => PRICE * 64n
  })
  const charges: CallCharge[] = []
  const refunds: CallCharge[] = []
  const nodes = new Map([
    [a.host.peerId.toString(), { operator: opA.address, price: PRICE }],
    [b.host.peerId.toString(), { operator: opB.address, price: PRICE }]
  ])
  const router = await Router.init({
    opts: {
      peers: [a.host, b.host].map((h) => h.getMultiaddrs()[0].toString()),
      modelId: MODEL_ID,
      hidden: HIDDEN,
      ...paymentHooks(
        payer,
        nodes,
        undefined,
        (c) => {
          charges.push(c)
        },
        (c) => refunds.push(c)
      )
    }
  })
  cleanup.push(async () => {
    await router.close()
  })
  const calls = 40
  for (let i = 0; i < calls; i++) await router.executor.runExpert(1, 1, rowsOf(1), 1)
  const spent = payer.spent()
  assert.equal(spent.get(opA.address)?.amount ?? 0n, 0n, 'nothing owed to the refusing node')
  assert.equal(spent.get(opB.address)?.amount, PRICE * BigInt(calls), 'every served call owed')
  assert.ok(payer.stats().refunds >= 1, 'the refused attempt was refunded')
  // the observers (a gateway's per-request accounting) see the same: each refund is one of the
  // charges, once, and charges less refunds is what the payer owes each operator
  assert.equal(refunds.length, payer.stats().refunds)
  assert.equal(new Set(refunds.map((r) => r.requestId)).size, refunds.length)
  for (const r of refunds) assert.ok(charges.includes(r), 'a refund of a charge never made')
  for (const op of [opA.address, opB.address]) {
    const net = (xs: CallCharge[]) =>
      xs.filter((c) => c.operator === op).reduce((t, c) => t + c.amount, 0n)
    assert.equal(net(charges) - net(refunds), spent.get(op)?.amount ?? 0n, op)
  }
  // the serving node holds a voucher covering every call it served, and not beyond the margin
  const held = b.store.get(payer.address)!.cumulativeAmount
  assert.ok(held >= PRICE * BigInt(calls) && held <= PRICE * BigInt(calls) + PRICE * 64n)
  assert.ok(
    payer.stats().signatures < calls / 4,
    `${payer.stats().signatures} signatures for ${calls} calls`
  )
})

test('a node that restarted counts the last voucher as spent: the payer concedes it (again only after a margin of work) and goes on', async () => {
  const payerKey = Wallet.createRandom()
  const op = Wallet.createRandom()
  const b = await paidNode(op, 10n ** 18n)
  const payer = await Payer.create({
    signer: new Wallet(payerKey.privateKey),
    domain,
    paidOnChain: async () => 0n,
    prepay: () => PRICE * 64n
  })
  const attempts: Array<{ ok: boolean; error?: string }> = []
  const router = await Router.init({
    opts: {
      peers: [b.host.getMultiaddrs()[0].toString()],
      modelId: MODEL_ID,
      hidden: HIDDEN,
      // the paid router's setting: a benched node's replicas are waited for, not given up on
      calls: { unavailableWaitMs: 10_000, onAttempt: (a) => attempts.push(a) },
      ...paymentHooks(
        payer,
        new Map([[b.host.peerId.toString(), { operator: op.address, price: PRICE }]])
      )
    }
  })
  cleanup.push(async () => {
    await router.close()
  })
  for (let i = 0; i < 5; i++) await router.executor.runExpert(1, 1, rowsOf(1), 1)
  const held = b.store.get(payer.address)!.cumulativeAmount
  assert.ok(held > PRICE * 5n, 'the voucher it holds prepays beyond the 5 calls served')
  await b.restart()
  // the call after the restart carries the same voucher: refused as underpaid (not owed); the
  // payer then signs above the held voucher, and the retry (once the node's bench ends) is served
  const refundsBefore = payer.stats().refunds
  await router.executor.runExpert(1, 1, rowsOf(1), 1)
  const failed = attempts.filter((a) => !a.ok)
  assert.equal(failed.length, 1, JSON.stringify(failed))
  assert.match(failed[0].error ?? '', /underpaid/)
  assert.equal(payer.stats().refunds, refundsBefore + 1)
  for (let i = 0; i < 4; i++) await router.executor.runExpert(1, 1, rowsOf(1), 1)
  assert.equal(payer.spent().get(op.address)?.amount, PRICE * 10n, 'the refused attempt not owed')
  assert.ok(b.store.get(payer.address)!.cumulativeAmount >= held + PRICE * 5n)
  assert.equal(attempts.filter((a) => !a.ok).length, 1)
  // not again until the node has served a margin's worth: a node that keeps refusing gains
  // at most one margin per margin of work
  assert.equal(payer.resync(op.address), false)
  // after more work, a second restart is followed too
  for (let i = 0; i < 70; i++) await router.executor.runExpert(1, 1, rowsOf(1), 1) // > 64-unit margin
  await b.restart()
  await router.executor.runExpert(1, 1, rowsOf(1), 1)
  assert.equal(attempts.filter((a) => !a.ok).length, 2)
  assert.equal(payer.spent().get(op.address)?.amount, PRICE * 81n)
})
