import { test, after, mock } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { signVoucher, voucherDomain } from '../../../../protocol/voucher.js'
import { Status } from '../../../../protocol/errors.js'
import {
  VoucherStore,
  JOURNAL_FILE,
  type SignedVoucher
} from '../../../../node/payments/voucher-store.js'
import { PaymentVerifier, type EscrowView } from '../../../../node/payments/verifier.js'

const domain = voucherDomain('0x00000000000000000000000000000000000000e5', 31337)
const payer = new Wallet('0x' + '11'.repeat(32))
const operator = new Wallet('0x' + '22'.repeat(32))
const price = 10n
const opened: VoucherStore[] = []
after(async () => {
  for (const s of opened) await s.close()
})

async function voucher(
  cumulative: bigint,
  opts: { signer?: Wallet; payee?: string } = {}
): Promise<SignedVoucher> {
  const v = {
    payer: payer.address,
    payee: opts.payee ?? operator.address,
    cumulativeAmount: cumulative
  }
  return { ...v, signature: await signVoucher(opts.signer ?? payer, domain, v) }
}

function fakeEscrow(balance: bigint, paid = 0n, unlockAt = 0n): EscrowView & { reads: number } {
  const e = {
    reads: 0,
    async laneOf() {
      e.reads++
      return { balance, paid, unlockAt }
    }
  }
  return e
}

async function setup(
  escrow: EscrowView
): Promise<{ dir: string; store: VoucherStore; verifier: PaymentVerifier }> {
  const dir = await mkdtemp(join(tmpdir(), 'pov-vouchers-'))
  const store = await VoucherStore.open(dir)
  opened.push(store)
  return {
    dir,
    store,
    verifier: new PaymentVerifier(
      { payee: operator.address, pricePerUnit: price, domain },
      store,
      escrow
    )
  }
}

function assertPaymentError(code: Status, re: RegExp) {
  return (err: unknown): boolean => {
    assert.equal((err as { name: string }).name, 'PaymentError')
    assert.equal((err as { code: Status }).code, code)
    assert.match((err as Error).message, re)
    return true
  }
}

test('accepts a valid voucher and journals it durably', async () => {
  const { dir, store, verifier } = await setup(fakeEscrow(1000n))
  assert.equal((await verifier.verify(await voucher(30n), 3)).charged, 30n)
  assert.equal((await verifier.verify(await voucher(50n), 2)).charged, 20n)
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
  await store.close()
  const reopened = await VoucherStore.open(dir)
  assert.equal(
    reopened.get(payer.address)?.cumulativeAmount,
    50n,
    'the highest voucher survives a restart'
  )
  await reopened.close()
})

test('refuses a call with no voucher', async () => {
  const { verifier } = await setup(fakeEscrow(1000n))
  await assert.rejects(
    verifier.verify(undefined, 1),
    assertPaymentError(Status.PAYMENT_REQUIRED, /paid calls only/)
  )
})

test('refuses a forged signature', async () => {
  const { verifier, store } = await setup(fakeEscrow(1000n))
  const forged = await voucher(30n, { signer: new Wallet('0x' + '33'.repeat(32)) })
  await assert.rejects(
    verifier.verify(forged, 3),
    assertPaymentError(Status.PAYMENT_INVALID, /forged/)
  )
  assert.equal(store.get(payer.address), undefined, 'nothing is journaled')
})

test('refuses a voucher for another payee', async () => {
  const { verifier } = await setup(fakeEscrow(1000n))
  await assert.rejects(
    verifier.verify(await voucher(30n, { payee: payer.address }), 3),
    assertPaymentError(Status.PAYMENT_INVALID, /payee/)
  )
})

test('a prepaid voucher covers later calls (no new signature), and a replay covers nothing more', async () => {
  const escrow = fakeEscrow(1000n)
  const { verifier, store } = await setup(escrow)
  const v = await voucher(50n) // prepays 5 units
  for (let i = 0; i < 5; i++) assert.equal((await verifier.verify(v, 1)).charged, 10n)
  await assert.rejects(
    verifier.verify(v, 1),
    assertPaymentError(Status.PAYMENT_INVALID, /underpaid: .* charges to 60, the voucher covers 50/)
  )
  await assert.rejects(verifier.verify(await voucher(20n), 1), /underpaid/)
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
  assert.equal(escrow.reads, 1, 'the lane is read once, not per call')
})

test('counts what was already redeemed on-chain as the floor', async () => {
  const { verifier } = await setup(fakeEscrow(1000n, 100n))
  await assert.rejects(verifier.verify(await voucher(100n), 1), /underpaid/)
  assert.equal((await verifier.verify(await voucher(110n), 1)).charged, 10n)
})

test('a refund takes a charge back (work not delivered)', async () => {
  const { verifier } = await setup(fakeEscrow(1000n))
  const v = await voucher(10n)
  const r = await verifier.verify(v, 1)
  r.refund()
  assert.equal((await verifier.verify(v, 1)).charged, 10n)
})

test('after a price change the old price is honoured for the grace period, then refused', async () => {
  let t = 1_000
  const dir = await mkdtemp(join(tmpdir(), 'pov-vouchers-'))
  const store = await VoucherStore.open(dir)
  opened.push(store)
  const verifier = new PaymentVerifier(
    { payee: operator.address, pricePerUnit: 10n, domain },
    store,
    fakeEscrow(1000n),
    { priceGraceMs: 5_000, laneCacheMs: 1e9, now: () => t }
  )
  verifier.setPrice(20n) // raised: a client still paying 10 is served during the grace
  await verifier.verify(await voucher(10n), 1)
  t += 5_000
  await assert.rejects(verifier.verify(await voucher(20n), 1), /underpaid: 1 units at 20/)
  verifier.setPrice(5n) // lowered: a client paying the old 20 is served, charged 5
  assert.equal((await verifier.verify(await voucher(30n), 1)).charged, 5n)
})

test('a lowered price applies from the previous price read: a client that priced at it is not refused', async () => {
  let t = 1_000
  const dir = await mkdtemp(join(tmpdir(), 'pov-vouchers-'))
  const store = await VoucherStore.open(dir)
  opened.push(store)
  let onChain = 10n
  const verifier = new PaymentVerifier(
    { payee: operator.address, pricePerUnit: 10n, domain },
    store,
    fakeEscrow(1000n),
    { laneCacheMs: 1e9, now: () => t, readPrice: async () => onChain }
  )
  await verifier.verify(await voucher(20n), 2) // 2 units at 10, before the change
  verifier.setPrice(10n) // the node's poll: unchanged
  onChain = 5n // `pov node update --price` lowers it; the node has not polled yet
  // a client that read the new price prepays 4 units at 5 beyond the 20 it owes (40), and its
  // calls reach the node first: charged at the old 10 until the node reads the price again
  assert.equal((await verifier.verify(await voucher(40n), 1)).charged, 10n)
  assert.equal((await verifier.verify(await voucher(40n), 1)).charged, 10n)
  t += 1_000
  // the client's count: 20 + 3 × 5 = 35 ≤ 40; the node's was 20 + 3 × 10 = 50 > 40 — refused,
  // unless the units since the last read are charged at the lowered price
  assert.equal((await verifier.verify(await voucher(40n), 1)).charged, 5n)
  assert.equal((await verifier.verify(await voucher(40n), 1)).charged, 5n)
  await assert.rejects(verifier.verify(await voucher(40n), 2), /underpaid: 2 units at 5 .* to 50/)
})

test('refuses an underpaying voucher', async () => {
  const { verifier } = await setup(fakeEscrow(1000n))
  await assert.rejects(
    verifier.verify(await voucher(25n), 3),
    assertPaymentError(Status.PAYMENT_INVALID, /underpaid: 3 units at 10 wei\/unit bring .* to 30/)
  )
})

test('refuses when the escrow does not cover what is unredeemed, and a payer with no deposit', async () => {
  const { verifier } = await setup(fakeEscrow(40n))
  await verifier.verify(await voucher(30n), 3)
  await assert.rejects(
    verifier.verify(await voucher(50n), 2),
    assertPaymentError(Status.PAYMENT_REQUIRED, /insufficient escrow/)
  )
  const empty = await setup(fakeEscrow(0n))
  await assert.rejects(
    empty.verifier.verify(await voucher(10n), 1),
    /insufficient escrow.*in its lane to this node/
  )
})

test('refuses new work from a payer that started unlocking', async () => {
  const { verifier } = await setup(fakeEscrow(1000n, 0n, 12345n))
  await assert.rejects(verifier.verify(await voucher(10n), 1), /withdrawing its deposit/)
})

test('concurrent vouchers from one payer are checked in order', async () => {
  const { verifier, store } = await setup(fakeEscrow(1000n))
  const vs = await Promise.all([10n, 20n, 30n, 40n].map(async (c) => await voucher(c)))
  const added = await Promise.all(vs.map(async (v) => (await verifier.verify(v, 1)).charged))
  assert.deepEqual(added, [10n, 10n, 10n, 10n])
  assert.equal(store.get(payer.address)?.cumulativeAmount, 40n)
})

test('a torn last journal line (crash mid-write) is skipped on replay', async () => {
  const { dir, store, verifier } = await setup(fakeEscrow(1000n))
  await verifier.verify(await voucher(30n), 3)
  await store.close()
  await appendFile(join(dir, JOURNAL_FILE), '{"payer":"0xdead')
  const reopened = await VoucherStore.open(dir)
  assert.equal(reopened.get(payer.address)?.cumulativeAmount, 30n)
  assert.equal(
    (await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n').length,
    1,
    'compacted to one line per payer'
  )
  await reopened.close()
})

/** A real journal whose writes wait for `release()` while `held` (a slow disk). */
function gate(store: VoucherStore): { release: () => void; hold: () => void } {
  let held = false
  let waiting: Array<() => void> = []
  const put = store.put.bind(store)
  store.put = async (v) => {
    if (held) await new Promise<void>((resolve) => waiting.push(resolve))
    await put(v)
  }
  return {
    hold: () => {
      held = true
    },
    release: () => {
      held = false
      for (const w of waiting) w()
      waiting = []
    }
  }
}

test('a voucher signed ahead of need does not hold up the call it rides on, and counts only once journaled', async () => {
  const { verifier, store } = await setup(fakeEscrow(1000n))
  const disk = gate(store)
  await verifier.verify(await voucher(50n), 3) // needed at once: checked and journaled first
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
  disk.hold()
  // 100 rides on a call that 50 still covers: served while the journal write is pending
  assert.equal((await verifier.verify(await voucher(100n), 1)).charged, 10n)
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n, 'not money before it is on disk')
  // a call that needs 100 waits for the journal
  let served = false
  const needs = verifier.verify(await voucher(100n), 2).then(() => {
    served = true
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(served, false, 'the call that needs the new voucher waits for its journal line')
  disk.release()
  await needs
  assert.equal(store.get(payer.address)?.cumulativeAmount, 100n)
})

test('a forged voucher sent ahead of need is never counted, and refused when it is needed', async () => {
  const { verifier, store } = await setup(fakeEscrow(1000n))
  await verifier.verify(await voucher(50n), 3)
  const forged = await voucher(500n, { signer: new Wallet('0x' + '33'.repeat(32)) })
  // covered by the 50 the node holds: served (the node risks nothing), the forgery is not kept
  await verifier.verify(forged, 1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
  await assert.rejects(
    verifier.verify(forged, 2),
    assertPaymentError(Status.PAYMENT_INVALID, /forged/),
    'the call that needs it is refused'
  )
})

test('a voucher ahead of need that its lane does not cover is refused when needed', async () => {
  const { verifier, store } = await setup(fakeEscrow(60n))
  await verifier.verify(await voucher(50n), 3)
  await verifier.verify(await voucher(100n), 1)
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
  await assert.rejects(verifier.verify(await voucher(100n), 2), /insufficient escrow/)
})

/** A verifier over `escrow` on a fake clock (`clock.t`), lanes cached `laneCacheMs`; its store. */
async function clocked(escrow: EscrowView, clock: { t: number }, laneCacheMs = 2000) {
  const dir = await mkdtemp(join(tmpdir(), 'pov-vouchers-'))
  const store = await VoucherStore.open(dir)
  opened.push(store)
  const verifier = new PaymentVerifier(
    { payee: operator.address, pricePerUnit: price, domain },
    store,
    escrow,
    { laneCacheMs, now: () => clock.t }
  )
  return { store, verifier }
}

test('the lane is re-read in the background once half stale, and a call waits only past laneCacheMs', async () => {
  const clock = { t: 0 }
  let unlockAt = 0n
  let reads = 0
  let gateOpen = true
  const waiting: Array<() => void> = []
  const escrow: EscrowView = {
    async laneOf() {
      reads++
      if (!gateOpen) await new Promise<void>((resolve) => waiting.push(resolve))
      return { balance: 1000n, paid: 0n, unlockAt }
    }
  }
  const { verifier } = await clocked(escrow, clock, 1000)
  const v = await voucher(1000n)
  await verifier.verify(v, 1)
  assert.equal(reads, 1)
  clock.t = 600 // half stale: this call is served on the cached read, a new read starts beside it
  gateOpen = false
  unlockAt = 99n // the payer starts unlocking
  await verifier.verify(v, 1)
  assert.equal(reads, 2)
  await verifier.verify(v, 1) // one read in flight at a time
  assert.equal(reads, 2)
  for (const w of waiting.splice(0)) w()
  gateOpen = true
  await new Promise((resolve) => setImmediate(resolve))
  await assert.rejects(verifier.verify(v, 1), /withdrawing its deposit/, 'the new read is used')
  // past laneCacheMs a call waits for a fresh read
  unlockAt = 0n
  clock.t = 2000
  gateOpen = false
  let served = false
  const p = verifier.verify(v, 1).then(() => {
    served = true
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(served, false, 'no call is accepted on a lane read older than laneCacheMs')
  for (const w of waiting.splice(0)) w()
  await p
})

test("a voucher signed ahead of need is kept although the cached lane read predates its allocation: the run's last voucher is never presented again", async () => {
  const clock = { t: 0 }
  let balance = 60n
  let reads = 0
  const { store, verifier } = await clocked(
    {
      async laneOf() {
        reads++
        return { balance, paid: 0n, unlockAt: 0n }
      }
    },
    clock
  )
  await verifier.verify(await voucher(50n), 3) // the lane is read: 60
  balance = 1000n // the client allocates more; the node's read is still within laneCacheMs
  clock.t = 100
  // the run's last call: covered by the 50 held, it carries the next voucher signed ahead
  await verifier.verify(await voucher(100n), 1)
  await verifier.drain()
  assert.equal(store.get(payer.address)?.cumulativeAmount, 100n, 'the node holds what it was given')
  assert.equal(reads, 2, 'the lane was read again once, fresh')
})

test('a voucher ahead of need whose check met a chain error is tried again laneCacheMs later; a forged one never', async () => {
  mock.timers.enable({ apis: ['setTimeout'] })
  try {
    const clock = { t: 0 }
    let balance = 60n
    let failing = false
    let reads = 0
    const { store, verifier } = await clocked(
      {
        async laneOf() {
          reads++
          if (failing) throw new Error('RPC timeout')
          return { balance, paid: 0n, unlockAt: 0n }
        }
      },
      clock
    )
    await verifier.verify(await voucher(50n), 3)
    balance = 1000n
    failing = true // the fresh read fails too
    await verifier.verify(await voucher(100n), 1)
    await verifier.drain()
    assert.equal(store.get(payer.address)?.cumulativeAmount, 50n, 'not money before it is checked')
    assert.equal(reads, 2)
    failing = false
    clock.t = 2000
    mock.timers.tick(2000)
    await verifier.drain()
    assert.equal(store.get(payer.address)?.cumulativeAmount, 100n, 'kept on the retry')
    assert.equal(reads, 3)
    // a forgery is dropped at once: no lane read, no retry
    const forged = await voucher(500n, { signer: new Wallet('0x' + '33'.repeat(32)) })
    await verifier.verify(forged, 1)
    await verifier.drain()
    mock.timers.tick(10_000)
    await verifier.drain()
    assert.equal(reads, 3)
    assert.equal(store.get(payer.address)?.cumulativeAmount, 100n)
  } finally {
    mock.timers.reset()
  }
})

test('a voucher ahead of need its lane does not cover is read for at most ADOPT_TRIES times, then dropped', async () => {
  mock.timers.enable({ apis: ['setTimeout'] })
  try {
    const clock = { t: 0 }
    let reads = 0
    const { store, verifier } = await clocked(
      {
        async laneOf() {
          reads++
          return { balance: 60n, paid: 0n, unlockAt: 0n }
        }
      },
      clock
    )
    await verifier.verify(await voucher(50n), 3)
    const v = await voucher(100n)
    await verifier.verify(v, 1)
    await verifier.drain()
    for (let i = 0; i < 5; i++) {
      clock.t += 2000
      mock.timers.tick(2000)
      await verifier.drain()
    }
    assert.equal(reads, 1 + 2, 'the first read, then two fresh reads (cached, at once, later)')
    assert.equal(store.get(payer.address)?.cumulativeAmount, 50n)
    await verifier.verify(v, 1) // presented again on a covered call: not checked again
    await verifier.drain()
    assert.equal(reads, 4, 'only the call itself read the lane (its read was past laneCacheMs)')
  } finally {
    mock.timers.reset()
  }
})
