// The gateway's lane keeper against a real node's payment check (issue 24: requests made while a
// lane was topped up got 503 no_node_available). A node may act on a lane read up to
// LANE_CACHE_MS old; a voucher signed above the old balance right after a top-up was refused as
// `insufficient escrow`, the refused call benched the node, and with every replica refused at
// once the request had no node left. The keeper now counts new money only once nodes can see it:
// a call that needs it waits (bounded), and never sends a voucher the node would refuse. One
// fake clock drives the keeper's wait and the node's cache: no sleeps.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { voucherDomain } from '../../../protocol/voucher.js'
import { LANE_CACHE_MS } from '../../../protocol/payment.js'
import { PaymentError, Status } from '../../../protocol/errors.js'
import { VoucherStore } from '../../../node/payments/voucher-store.js'
import { PaymentVerifier } from '../../../node/payments/verifier.js'
import { Payer } from '../../../router/payer.js'
import { LaneKeeper } from '../../../router/gateway/lanes.js'
import type { PovEscrowContract } from '../../../chain/contracts.js'

const domain = voucherDomain('0x00000000000000000000000000000000000000e5', 31337)
const PRICE = 10n // wei per unit
const cleanup: Array<() => Promise<void>> = []
after(async () => {
  for (const c of cleanup.reverse()) await c()
})

/**
 * A payer with `free` wei unallocated and `lane` wei in its lane to one node, that node's real
 * payment check, and the keeper; `visibleAfterMs` as given to the keeper (0: the old behaviour,
 * new money usable at once). Time moves only when the keeper waits.
 */
async function setup(free: bigint, lane: bigint, visibleAfterMs?: number) {
  let t = 1_000_000
  const chain = { free, balance: lane, allocations: 0 }
  const payerKey = Wallet.createRandom()
  const operator = Wallet.createRandom()
  const escrow = {
    depositOf: async () => [chain.free, 0n],
    laneOf: async () => [chain.balance, 0n, 0n],
    connect: () => ({
      allocate: async (_payees: string[], amounts: bigint[]) => ({
        wait: async () => {
          chain.balance += amounts[0]
          chain.free -= amounts[0]
          chain.allocations++
        }
      })
    })
  } as unknown as PovEscrowContract
  const payer = await Payer.create({ signer: payerKey, domain, paidOnChain: async () => 0n })
  const keeper = await LaneKeeper.open({
    escrow,
    signer: payerKey,
    payer,
    operators: () => [operator.address],
    tickMs: 1e9, // no background top-ups: each one here is the call's own
    ...(visibleAfterMs != null ? { visibleAfterMs } : {}),
    now: () => t,
    sleep: async (ms) => {
      t += ms
    }
  })
  const dir = await mkdtemp(join(tmpdir(), 'pov-lanes-'))
  const store = await VoucherStore.open(dir)
  cleanup.push(async () => {
    keeper.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })
  const node = new PaymentVerifier(
    { payee: operator.address, pricePerUnit: PRICE, domain },
    store,
    { laneOf: async () => ({ balance: chain.balance, paid: 0n, unlockAt: 0n }) },
    { now: () => t }
  )
  /** One paid call of `units` rows, as the gateway makes it: lane check, voucher, the node's check. */
  const call = async (units: number): Promise<void> => {
    const amount = BigInt(units) * PRICE
    if (keeper.headroom(operator.address, amount) < 0n) {
      if (!(await keeper.cover(operator.address, amount)))
        throw new Error('the deposit is spent (the gateway answers 402)')
    }
    const p = await payer.pay(operator.address, amount, units)
    await node.verify(p.voucher, units)
  }
  return {
    chain,
    call,
    keeper,
    get t() {
      return t
    },
    advance: (ms: number) => {
      t += ms
    }
  }
}

test('a call that needs a lane top-up waits until the node can see it, and the node takes its voucher', async () => {
  const s = await setup(10_000n, 100n)
  await s.call(5) // 50 of 100: the node reads the lane now
  s.advance(100)
  const t0 = s.t
  await s.call(8) // 130 > 100: a top-up, then a voucher above the balance the node read
  assert.equal(s.chain.allocations, 1)
  const waited = s.t - t0
  assert.ok(waited >= LANE_CACHE_MS, `waited ${waited} ms: the node's cached read has expired`)
  assert.ok(waited <= LANE_CACHE_MS + 250, `waited ${waited} ms: bounded`)
  // the top-up is visible now: the next calls neither wait nor top up again
  const t1 = s.t
  for (let i = 0; i < 5; i++) await s.call(8)
  assert.equal(s.t, t1)
  assert.equal(s.chain.allocations, 1)
  // the lane's room counts the allocation at once for the funds view (a 402 is for money gone)
  assert.ok(s.keeper.funds().available > 0n)
})

test('the old behaviour, for contrast: new money used at once is refused by the node (insufficient escrow)', async () => {
  const s = await setup(10_000n, 100n, 0)
  await s.call(5)
  s.advance(100)
  await assert.rejects(
    s.call(8),
    (err: Error) =>
      err instanceof PaymentError &&
      err.code === Status.PAYMENT_REQUIRED &&
      /insufficient escrow/.test(err.message)
  )
})

test('the deposit spent: cover says so at once (the 402 path), without waiting', async () => {
  const s = await setup(0n, 100n)
  await s.call(5)
  const t0 = s.t
  await assert.rejects(s.call(8), /the deposit is spent/)
  assert.equal(s.t, t0)
  assert.equal(s.chain.allocations, 0)
})
