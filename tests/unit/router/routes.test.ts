import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  RouteManager,
  benchAfterFailure,
  buildTable,
  expertKey,
  selectReplica,
  type PeerRoute
} from '../../../router/routes.js'

const peer = (id: string, pairs: Array<[number, number]>): PeerRoute => ({
  peerId: id,
  addrs: [],
  shards: [],
  experts: new Set(pairs.map(([l, e]) => expertKey(l, e)))
})
const table = buildTable([
  peer('A', [
    [0, 0],
    [0, 1]
  ]),
  peer('B', [
    [0, 0],
    [1, 1]
  ]),
  peer('C', [[0, 1]])
])

test('selection: only replicas that host the expert, none when nobody does', () => {
  assert.equal(selectReplica(table, 1, 1, new Map(), 0), 'B')
  assert.equal(selectReplica(table, 1, 0, new Map(), 0), null)
  assert.ok(['A', 'B'].includes(selectReplica(table, 0, 0, new Map(), 0) as string))
})

test('selection skips benched peers until the bench expires, and excluded ones', () => {
  const benched = new Map([
    ['A', { until: 100, failures: 1 }],
    ['B', { until: 100, failures: 1 }]
  ])
  assert.equal(selectReplica(table, 0, 0, benched, 50), null)
  assert.ok(['A', 'B'].includes(selectReplica(table, 0, 0, benched, 100) as string))
  assert.equal(selectReplica(table, 0, 1, new Map(), 0, new Set(['A'])), 'C')
  assert.equal(selectReplica(table, 0, 1, new Map(), 0, new Set(['A', 'C'])), null)
})

test('selection prefers the least loaded replica and spreads experts over replicas', () => {
  assert.equal(
    selectReplica(
      table,
      0,
      1,
      new Map(),
      0,
      new Set(),
      new Map([
        ['A', 3],
        ['C', 1]
      ])
    ),
    'C'
  )
  assert.equal(
    selectReplica(
      table,
      0,
      1,
      new Map(),
      0,
      new Set(),
      new Map([
        ['A', 0],
        ['C', 1]
      ])
    ),
    'A'
  )
  const t = buildTable([
    peer('X', [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1]
    ]),
    peer('Y', [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1]
    ])
  ])
  const picks = new Set(
    [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1]
    ].map(([l, e]) => selectReplica(t, l, e, new Map(), 0))
  )
  assert.equal(picks.size, 2)
})

test('bench backoff doubles up to the cap; success after expiry resets', () => {
  let b = benchAfterFailure(undefined, 0, 1000, 5000)
  assert.deepEqual(b, { failures: 1, until: 1000 })
  b = benchAfterFailure(b, 0, 1000, 5000)
  assert.equal(b.until, 2000)
  b = benchAfterFailure(b, 0, 1000, 5000)
  assert.equal(b.until, 4000)
  b = benchAfterFailure(b, 0, 1000, 5000)
  assert.equal(b.until, 5000)
  let now = 0
  const rm = new RouteManager([peer('A', [[0, 0]]), peer('B', [[0, 0]])], {
    benchBaseMs: 10,
    benchMaxMs: 100,
    now: () => now
  })
  rm.onFailure('A')
  rm.onFailure('B')
  assert.equal(rm.select(0, 0), null)
  now = 10
  assert.notEqual(rm.select(0, 0), null)
  rm.onFailure('A') // second failure: 20 ms
  assert.equal(rm.benched.get('A')?.until, 30)
  now = 30
  rm.onSuccess('A')
  assert.equal(rm.benched.has('A'), false)
})

test('bad answers: each bench 4 × the last, and a success in between forgives nothing', () => {
  let now = 0
  const r = new RouteManager([peer('A', [[0, 0]])], {
    benchBaseMs: 1000,
    badAnswerMaxMs: 100_000,
    now: () => now
  })
  const lengths: number[] = []
  for (let i = 0; i < 5; i++) {
    const b = r.onBadAnswer('A')
    lengths.push(b.until - now)
    now = b.until
    r.onSuccess('A') // a good answer after the bench ended
    assert.equal(r.select(0, 0), 'A', 'asked again once the bench is over')
  }
  assert.deepEqual(lengths, [1000, 4000, 16_000, 64_000, 100_000])
  assert.equal(r.benched.get('A')?.strikes, 5)
  // an ordinary failure after strikes keeps them, and never shortens a bench
  r.onBadAnswer('A')
  const long = r.benched.get('A')!.until
  r.onFailure('A')
  assert.equal(r.benched.get('A')!.until, long)
  assert.equal(r.benched.get('A')!.strikes, 6)
})
