// The client's voucher stream (router/payer.ts): the next voucher is signed ahead of need, so a
// steady stream of calls never waits for a signature; calls asking together share one signature;
// vouchers only rise on the wire and never prepay more than the margin.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet, type TypedDataDomain, type TypedDataField } from 'ethers'
import { voucherDomain } from '../../../protocol/voucher.js'
import { Payer } from '../../../router/payer.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VoucherStore } from '../../../node/payments/voucher-store.js'
import { PaymentVerifier } from '../../../node/payments/verifier.js'

const domain = voucherDomain('0x00000000000000000000000000000000000000e5', 31337)
const payee = Wallet.createRandom().address
const PRICE = 10n
const CAP = PRICE * 64n

/** A wallet whose signatures wait for `release()` while `held` (counts them too). */
class GatedWallet extends Wallet {
  held = false
  signed = 0
  private waiting: Array<() => void> = []
  release(): void {
    this.held = false
    for (const w of this.waiting.splice(0)) w()
  }

  override async signTypedData(
    d: TypedDataDomain,
    t: Record<string, TypedDataField[]>,
    v: Record<string, unknown>
  ): Promise<string> {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.signed++
    return await super.signTypedData(d, t, v)
  }
}

async function payer(signer: Wallet): Promise<Payer> {
  const p = await Payer.create({ signer, domain, paidOnChain: async () => 0n, prepay: () => CAP })
  await p.prepare([payee])
  return p
}

test('a steady stream of calls never waits for a signature: the next voucher is signed ahead', async () => {
  const signer = new GatedWallet(Wallet.createRandom().privateKey)
  const p = await payer(signer)
  // ramp up until the margin is the full cap
  let owed = 0n
  let last = 0n
  for (let i = 0; i < 200; i++) {
    const { voucher } = await p.pay(payee, PRICE * 4n, 4)
    owed += PRICE * 4n
    assert.ok(voucher.cumulativeAmount >= owed, 'every call is covered')
    assert.ok(voucher.cumulativeAmount >= last, 'vouchers only rise')
    assert.ok(voucher.cumulativeAmount - owed <= CAP, 'the margin is never above the cap')
    last = voucher.cumulativeAmount
    await new Promise((resolve) => setImmediate(resolve)) // the node's answer: a turn of the loop
  }
  const steady = signer.signed
  // 200 calls × 4 units, cap 64 units: each signature advances at least ¾ of the cap
  assert.ok(steady <= 10 + (200 * 4) / 48, `${steady} signatures for 200 calls`)
  // a signer that stalls now: calls still covered by the last voucher go out without it
  signer.held = true
  let served = 0
  for (;;) {
    const margin = p.prepaid(payee)
    if (margin < PRICE * 4n) break
    await p.pay(payee, PRICE * 4n, 4)
    served++
  }
  assert.ok(served >= 8, `${served} calls went out while a signature was pending`)
  // the next one needs the new voucher and waits for it
  let paid = false
  const waiting = p.pay(payee, PRICE * 4n, 4).then((x) => {
    paid = true
    return x
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(paid, false, 'a call the last voucher does not cover waits for the next one')
  signer.release()
  const { voucher } = await waiting
  assert.ok(voucher.cumulativeAmount > last)
  await p.flush()
})

test('calls to one payee asking together share one signature', async () => {
  const signer = new GatedWallet(Wallet.createRandom().privateKey)
  const p = await payer(signer)
  await p.pay(payee, CAP, 64) // the run owes a cap's worth: the voucher prepays a full cap
  const before = signer.signed
  // an MoE layer's four experts on one node, a cap's worth of rows each, asked in one tick
  const vs = await Promise.all([1, 2, 3, 4].map(async () => await p.pay(payee, CAP, 64)))
  assert.equal(signer.signed - before, 1, 'one new voucher covers all four calls')
  let owed = CAP
  for (const { voucher } of vs) {
    owed += CAP
    assert.ok(voucher.cumulativeAmount >= owed, 'each call carries a voucher that covers it')
  }
  await p.flush()
})

test('a refused call is taken back from what is owed', async () => {
  const p = await payer(new GatedWallet(Wallet.createRandom().privateKey))
  const a = await p.pay(payee, PRICE, 1)
  await p.pay(payee, PRICE, 1)
  a.refund()
  a.refund() // twice is once
  assert.equal(p.spent().get(payee)?.amount, PRICE)
  assert.equal(p.stats().refunds, 1)
  await p.flush()
})

test('a call whose voucher could not be signed is not owed', async () => {
  const signer = new GatedWallet(Wallet.createRandom().privateKey)
  const p = await payer(signer)
  await p.pay(payee, PRICE, 1)
  const sign = signer.signTypedData.bind(signer)
  signer.signTypedData = async () => {
    throw new Error('keystore locked')
  }
  await assert.rejects(p.pay(payee, CAP * 4n, 256), /keystore locked/)
  signer.signTypedData = sign
  const { voucher } = await p.pay(payee, PRICE, 1)
  assert.ok(voucher.cumulativeAmount < CAP * 4n, 'the failed call is not in what is owed')
  assert.equal(p.spent().get(payee)?.amount, PRICE * 2n)
  await p.flush()
})

test('a voucher given on a call that was never answered counts as given; one on a refused call does not', async () => {
  const p = await payer(new GatedWallet(Wallet.createRandom().privateKey))
  const first = await p.pay(payee, PRICE * 10n, 10)
  first.delivered()
  const held = first.voucher.cumulativeAmount
  // a call owing more than the prepaid margin carries a new voucher; the node refuses it
  const refused = await p.pay(payee, held, 1)
  assert.ok(refused.voucher.cumulativeAmount > held)
  refused.refund()
  await p.flush()
  assert.equal(p.owed(payee) + p.prepaid(payee), held, 'the refused call left the held voucher')
  // a call that is never answered (a hedge that lost): owed, and its voucher may be held
  const lost = await p.pay(payee, held, 1)
  await p.flush()
  assert.equal(p.owed(payee) + p.prepaid(payee), lost.voucher.cumulativeAmount)
})

test('after a run the node holds exactly what the client reports: owed + prepaid', async () => {
  // client (Payer) and node (the real PaymentVerifier and journal) in one process, for every run
  // length from 1 to 24 calls: some runs end right after a voucher was signed ahead
  for (let calls = 1; calls <= 24; calls++) {
    const dir = await mkdtemp(join(tmpdir(), 'pov-payer-node-'))
    const store = await VoucherStore.open(dir)
    const node = new PaymentVerifier({ payee, pricePerUnit: PRICE, domain }, store, {
      laneOf: async () => ({ balance: 10n ** 18n, paid: 0n, unlockAt: 0n })
    })
    const signer = Wallet.createRandom()
    const p = await Payer.create({ signer, domain, paidOnChain: async () => 0n, prepay: () => CAP })
    for (let i = 0; i < calls; i++) {
      const pay = await p.pay(payee, PRICE * 3n, 3)
      await node.verify(pay.voucher, 3)
      pay.delivered()
      await new Promise((resolve) => setImmediate(resolve)) // the node's answer
    }
    await p.flush()
    await node.drain()
    assert.equal(
      p.owed(payee) + p.prepaid(payee),
      store.get(signer.address)?.cumulativeAmount,
      `${calls} calls`
    )
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
})
