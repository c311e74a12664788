import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { BusyPoll } from '../../../protocol/busy-poll.js'

/** Resolves after the poller has stopped (it re-arms with setImmediate, so a few turns suffice). */
async function untilIdle(p: BusyPoll): Promise<void> {
  for (let i = 0; i < 10_000 && p.active; i++) await new Promise((resolve) => setImmediate(resolve))
}

test('kick keeps the loop turning for the window, then lets it sleep', async () => {
  // a window far longer than the test: its end is checked below with a short one
  const p = new BusyPoll({ windowUs: 10_000_000 })
  assert.equal(p.active, false)
  p.kick()
  assert.equal(p.active, true)
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
  assert.ok(p.turns > 0, 'the loop turned while polling')
  await sleep(5)
  assert.equal(p.active, true, 'still polling inside the window')
  p.stop()
  await untilIdle(p)

  const short = new BusyPoll({ windowUs: 2000 })
  short.kick()
  await sleep(20)
  await untilIdle(short)
  assert.equal(short.active, false, 'the window ended by itself')
  const after = short.turns
  await sleep(5)
  assert.equal(short.turns, after, 'no turns are spent after the window')
})

test('timers and I/O callbacks still run while polling', async () => {
  // a window far longer than the sleep: on a loaded machine a 10 ms timer can take 50+ ms, which
  // must not end the window before the check (seen on a 2-core VM at load 15)
  const p = new BusyPoll({ windowUs: 5_000_000 })
  p.kick()
  const t0 = performance.now()
  await sleep(10)
  assert.ok(performance.now() - t0 >= 9, 'a 10 ms timer fired on time, not early')
  assert.equal(p.active, true)
  p.stop()
  await untilIdle(p)
  assert.equal(p.active, false, 'stop() ends the window at the next turn')
})

test('onlyWhileWaiting: polls while a wait is open and stops once every wait has ended', async () => {
  const p = new BusyPoll({ windowUs: 1_000_000, onlyWhileWaiting: true })
  const endA = p.begin()
  const endB = p.begin()
  assert.equal(p.waiting, 2)
  endA()
  endA() // ending twice counts once
  assert.equal(p.waiting, 1)
  await sleep(2)
  assert.equal(p.active, true, 'one wait still open')
  endB()
  assert.equal(p.waiting, 0)
  await untilIdle(p)
  assert.equal(p.active, false, 'stopped long before the 1 s window')
  // a plain kick with no wait open does not poll either
  p.kick()
  await untilIdle(p)
  assert.equal(p.active, false)
})

test('window 0 never polls; a bad window is refused', async () => {
  const p = new BusyPoll({ windowUs: 0 })
  assert.equal(p.enabled, false)
  p.kick()
  const end = p.begin()
  assert.equal(p.active, false)
  assert.equal(p.waiting, 0)
  end()
  assert.throws(() => new BusyPoll({ windowUs: -1 }), /non-negative/)
  assert.throws(() => new BusyPoll({ windowUs: Number.NaN }), /non-negative/)
})
