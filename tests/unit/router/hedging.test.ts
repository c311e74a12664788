// Replica choice by measured latency, hedging after the p95, bounded retries and waiting out a
// bench — the executor driven through a fake wire client whose replicas answer after set delays.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LatencyTracker, MIN_PER_CALL_MS, percentile } from '../../../router/latency.js'
import { RouteManager, buildTable, expertKey, selectReplica } from '../../../router/routes.js'
import {
  PaymentDeferredError,
  RemoteExpertExecutor,
  type ExpertCallClient
} from '../../../router/remote-executor.js'
import type { ExpertResponse } from '../../../protocol/expert.js'
import { okResponse } from './fake-response.js'

const HIDDEN = 4
const MODEL_ID = '0x' + '11'.repeat(32)
const peer = (id: string) => ({
  peerId: id,
  addrs: [],
  shards: [0],
  experts: new Set([expertKey(0, 0)])
})

test('percentile: nearest rank', () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 0.95), 5)
  assert.equal(percentile([5, 1, 3, 2, 4], 0.5), 3)
  assert.ok(Number.isNaN(percentile([], 0.5)))
})

test('latency: EWMA per peer and call size; hedge delay is the p95 once there are enough samples', () => {
  const l = new LatencyTracker({ minSamples: 4, minHedgeMs: 1 })
  assert.equal(l.hedgeDelay('A', 1), null, 'unmeasured: no basis for a hedge')
  l.observe('A', 1, 10)
  assert.equal(l.estimate('A', 1), 10)
  assert.equal(l.hedgeDelay('A', 1), 20, 'few samples: 2 × EWMA')
  for (const ms of [10, 10, 10, 50]) l.observe('A', 1, ms)
  assert.equal(l.hedgeDelay('A', 1), 50)
  assert.ok((l.estimate('A', 1) as number) > 10 && (l.estimate('A', 1) as number) < 50)
  assert.equal(l.estimate('A', 64), undefined, 'a prefill-sized call has its own estimate')
  l.observe('A', 64, 300)
  assert.equal(l.estimate('A', 64), 300)
  assert.equal(l.estimate('A', 1) !== 300, true)
})

test('selection: the lower measured latency wins; unmeasured replicas are tried first; load multiplies', () => {
  const table = buildTable([peer('A'), peer('B'), peer('C')])
  const est = new Map([
    ['A', 40],
    ['B', 10],
    ['C', 25]
  ])
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), new Map(), est), 'B')
  const partial = new Map([
    ['A', 40],
    ['B', 10]
  ])
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), new Map(), partial), 'C')
  // B has 3 calls in flight: 10 × 4 = 40 > C's 25
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), new Map([['B', 3]]), est), 'C')
  // benched and excluded peers stay out whatever their latency
  assert.equal(
    selectReplica(
      table,
      0,
      0,
      new Map([['B', { until: 10, failures: 1 }]]),
      5,
      new Set(['C']),
      new Map(),
      est
    ),
    'A'
  )
})

test('choice estimates: the round trip plus an excess that fades while the peer goes unused', () => {
  let now = 0
  const l = new LatencyTracker({ forgetMs: 1000, now: () => now })
  for (const ms of [60, 61, 60]) l.observe('near', 1, ms)
  l.observe('near', 1, 260) // one slow call (a busy moment)
  for (const ms of [80, 81, 80, 80]) l.observe('far', 1, ms)
  let c = l.forChoice(['near', 'far', 'unmeasured'], 1)
  assert.equal(c.expected.has('unmeasured'), false)
  const nearEwma = l.estimate('near', 1) as number
  assert.ok(nearEwma > 90, `the slow call weighs on the EWMA (${nearEwma})`)
  assert.equal(c.expected.get('near'), nearEwma, 'just measured: the EWMA as it is')
  assert.equal(
    c.perCall.get('near'),
    nearEwma - 60,
    'per call in flight: the excess over the round trip'
  )
  assert.ok((c.perCall.get('far') as number) >= MIN_PER_CALL_MS)
  now = 3000 // three half-lives without a sample of either
  c = l.forChoice(['near', 'far'], 1)
  assert.ok(Math.abs((c.expected.get('near') as number) - (60 + (nearEwma - 60) / 8)) < 1e-9)
  assert.ok((c.expected.get('near') as number) < (c.expected.get('far') as number), 'tried again')
  // picked again, it answers in 61 ms: the faded excess stays faded (it was inflated by a busy
  // moment long ago), so the node still looks near
  l.observe('near', 1, 61)
  c = l.forChoice(['near', 'far'], 1)
  assert.ok((c.expected.get('near') as number) < 70, `near looks near (${c.expected.get('near')})`)
  now = 3000 + 10_001 // no sample for longer than staleMs: measured again, as if new
  assert.equal(l.forChoice(['near'], 1).expected.has('near'), false)
})

test('a hedge loser counts only when it ran past the estimate, and never as a sample', () => {
  const l = new LatencyTracker()
  l.observeAtLeast('far', 1, 3) // unmeasured: nothing to go on
  assert.equal(l.estimate('far', 1), undefined)
  for (const ms of [80, 80]) l.observe('far', 1, ms)
  // a hedge to `far` sent 3 ms before the primary answered: abandoned at 3 ms
  l.observeAtLeast('far', 1, 3)
  assert.equal(l.estimate('far', 1), 80)
  assert.equal(l.forChoice(['far'], 1).expected.get('far'), 80, 'the round trip stays 80')
  l.observeAtLeast('far', 1, 180) // abandoned after 180 ms: slower than believed
  assert.equal(l.estimate('far', 1), 100)
})

test('selection: a call in flight to a far node adds its per-call cost, not a second round trip', () => {
  const table = buildTable([peer('near'), peer('far')])
  const est = new Map([
    ['near', 60],
    ['far', 80]
  ])
  const perCall = new Map([
    ['near', 1],
    ['far', 1]
  ])
  const busy = new Map([['near', 1]])
  // the layer's other expert is already on its way to `near`: 60 + 1 < 80
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), busy, est, perCall), 'near')
  // without per-call costs a call in flight counts as a whole call: 60 × 2 > 80
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), busy, est), 'far')
  // many in flight still spread the load
  const many = new Map([['near', 25]])
  assert.equal(selectReplica(table, 0, 0, new Map(), 0, new Set(), many, est, perCall), 'far')
})

/** A fake wire client: replica `id` answers after delays[id] ms (or fails when the delay is 'fail'). */
function fakeClient(delays: Map<string, number | 'fail'>, log: string[]): ExpertCallClient {
  return {
    drop: () => {},
    channel: async (p: string) => ({
      call: async (req, tensor, opts) =>
        await new Promise<ExpertResponse>((resolve, reject) => {
          log.push(p)
          const d = delays.get(p)
          if (d === 'fail') {
            setImmediate(() => {
              reject(new Error(`${p} is down`))
            })
            return
          }
          const t = setTimeout(() => {
            resolve(okResponse(req, tensor))
          }, d)
          opts?.signal?.addEventListener('abort', () => {
            clearTimeout(t)
            reject(new Error('aborted'))
          })
        })
    })
  }
}

function executor(
  ids: string[],
  delays: Map<string, number | 'fail'>,
  log: string[],
  opts: Partial<ConstructorParameters<typeof RemoteExpertExecutor>[2]> = {},
  routes = new RouteManager(ids.map(peer))
): RemoteExpertExecutor {
  return new RemoteExpertExecutor(fakeClient(delays, log), routes, {
    modelId: MODEL_ID,
    hidden: HIDDEN,
    verifySignatures: 'off',
    latency: { minSamples: 4, minHedgeMs: 1 },
    ...opts
  })
}

const x = new Float32Array(HIDDEN).fill(1)

test('hedging: a call to a replica past its p95 goes to a second one, and the first answer wins', async () => {
  const delays = new Map<string, number | 'fail'>([
    ['A', 5],
    ['B', 250]
  ])
  const log: string[] = []
  // this phase tests the choice, not hedging: a timer late by a few ms would otherwise hedge A
  const ex = executor(['A', 'B'], delays, log, { latency: { minSamples: 4, minHedgeMs: 100 } })
  // measure both: A fast, B slow (a wide gap: a loaded CI machine delays timers by tens of ms)
  for (let i = 0; i < 6; i++) await ex.runExpert(0, 0, x, 1)
  assert.ok((ex.latency.estimate('A', 1) as number) < (ex.latency.estimate('B', 1) as number))
  log.length = 0
  await ex.runExpert(0, 0, x, 1)
  assert.deepEqual(log, ['A'], 'the faster replica is chosen')
  // A turns slow (a loaded node): after its p95 the call is hedged to B, which answers first
  delays.set('A', 400)
  delays.set('B', 10)
  log.length = 0
  const calls: Array<{ peer: string; hedged: boolean }> = []
  const ex2Routes = ex.routes
  const ex2 = new RemoteExpertExecutor(fakeClient(delays, log), ex2Routes, {
    modelId: MODEL_ID,
    hidden: HIDDEN,
    verifySignatures: 'off',
    latency: { minSamples: 1, minHedgeMs: 1 },
    onCall: (c) => calls.push(c)
  })
  for (let i = 0; i < 4; i++) ex2.latency.observe('A', 1, 5)
  ex2.latency.observe('B', 1, 60)
  await ex2.runExpert(0, 0, x, 1)
  assert.deepEqual(log, ['A', 'B'])
  assert.equal(calls[0].peer, 'B')
  assert.equal(calls[0].hedged, true)
  assert.equal(ex2.stats.hedges, 1)
  assert.equal(ex2.stats.hedgesWon, 1)
  assert.ok((ex2.latency.estimate('A', 1) as number) > 5, 'the loser is charged for its wait')
  assert.equal(ex2Routes.benched.size, 0, 'losing a hedge is not a failure')
})

test('hedging off: one request per call', async () => {
  const delays = new Map<string, number | 'fail'>([
    ['A', 30],
    ['B', 1]
  ])
  const log: string[] = []
  const ex = executor(['A', 'B'], delays, log, { hedge: false })
  ex.latency.observe('A', 1, 1)
  ex.latency.observe('B', 1, 5)
  await ex.runExpert(0, 0, x, 1)
  assert.deepEqual(log, ['A'])
})

test('bounded retries: failures move to the next replica and stop after maxAttempts', async () => {
  const delays = new Map<string, number | 'fail'>([
    ['A', 'fail'],
    ['B', 'fail'],
    ['C', 'fail'],
    ['D', 2]
  ])
  const log: string[] = []
  const ex = executor(['A', 'B', 'C', 'D'], delays, log, { maxAttempts: 3, hedge: false })
  for (const p of ['A', 'B', 'C']) ex.latency.observe(p, 1, 1)
  ex.latency.observe('D', 1, 50)
  await assert.rejects(ex.runExpert(0, 0, x, 1), (err: Error) => {
    assert.equal(err.name, 'ExpertUnavailableError')
    assert.match(err.message, /after 3 attempts .*A is down/)
    return true
  })
  assert.equal(log.length, 3)
  assert.equal(ex.routes.benched.size, 3, 'each failed replica is benched')
  log.length = 0
  await ex.runExpert(0, 0, x, 1)
  assert.deepEqual(log, ['D'], 'benched replicas are skipped')
})

test('a replica this client declines to pay now (its lane is empty) is skipped, not benched nor dropped', async () => {
  const delays = new Map<string, number | 'fail'>([
    ['A', 1],
    ['B', 1]
  ])
  const log: string[] = []
  const dropped: string[] = []
  const routes = new RouteManager([peer('A'), peer('B')])
  const client = fakeClient(delays, log)
  const ex = new RemoteExpertExecutor(
    {
      ...client,
      drop: (p: string) => {
        dropped.push(p)
      }
    },
    routes,
    {
      modelId: MODEL_ID,
      hidden: HIDDEN,
      verifySignatures: 'off',
      hedge: false,
      attachPayment: async ({ peer: p }) => {
        if (p === 'A') throw new PaymentDeferredError('the lane to A is empty; B is paid instead')
        return undefined
      }
    }
  )
  for (let i = 0; i < 3; i++) {
    const y = await ex.runExpert(0, 0, x, 1)
    assert.deepEqual(Array.from(y), Array.from(x))
  }
  assert.deepEqual(log, ['B', 'B', 'B'], 'nothing was sent to A')
  assert.equal(routes.benched.has('A'), false, 'A did nothing wrong: not benched')
  assert.deepEqual(dropped, [], 'A keeps its connection (its other calls go on)')
})

test('every replica benched: the call waits for a bench to end (a restarting node) when allowed', async () => {
  const delays = new Map<string, number | 'fail'>([['A', 'fail']])
  const log: string[] = []
  const routes = new RouteManager([peer('A')], { benchBaseMs: 50 })
  const ex = executor(['A'], delays, log, { unavailableWaitMs: 2000, hedge: false }, routes)
  setTimeout(() => delays.set('A', 1), 20) // the node is back before its bench ends
  const y = await ex.runExpert(0, 0, x, 1)
  assert.deepEqual(Array.from(y), Array.from(x))
  assert.deepEqual(log, ['A', 'A'])
  // without the wait the generation would have had to degrade
  delays.set('A', 'fail')
  const ex0 = executor(['A'], delays, [], { hedge: false })
  await assert.rejects(
    ex0.runExpert(0, 0, x, 1),
    (err: Error) => err.name === 'ExpertUnavailableError'
  )
})

test('a multi-row call (a verify pass of speculative decoding) is hedged and failed over like a one-row one', async () => {
  const ROWS = 4
  const x4 = Float32Array.from({ length: ROWS * HIDDEN }, (_, i) => (i % 7) - 3)
  // A is slow past its p95 for 4-row calls: the 4 rows are hedged to B, whose answer is used
  const delays = new Map<string, number | 'fail'>([
    ['A', 400],
    ['B', 10]
  ])
  const log: string[] = []
  const calls: Array<{ peer: string; hedged: boolean }> = []
  const ex = executor(['A', 'B'], delays, log, {
    latency: { minSamples: 1, minHedgeMs: 1 },
    onCall: (c) => calls.push(c)
  })
  for (let i = 0; i < 4; i++) ex.latency.observe('A', ROWS, 5)
  ex.latency.observe('B', ROWS, 60)
  const y = await ex.runExpert(0, 0, x4, ROWS)
  assert.deepEqual(log, ['A', 'B'])
  assert.deepEqual(calls[0], { ...calls[0], peer: 'B', hedged: true })
  assert.equal(y.length, ROWS * HIDDEN)
  // A down: the 4 rows are retried on B
  delays.set('A', 'fail')
  log.length = 0
  calls.length = 0
  const ex2 = executor(['A', 'B'], delays, log, { onCall: (c) => calls.push(c) })
  for (let i = 0; i < 4; i++) ex2.latency.observe('A', ROWS, 5)
  ex2.latency.observe('B', ROWS, 60)
  const y2 = await ex2.runExpert(0, 0, x4, ROWS)
  assert.deepEqual(log, ['A', 'B'])
  assert.equal(calls[0].peer, 'B')
  assert.equal(y2.length, ROWS * HIDDEN)
})
