// The network in the wild, small: 4 paid nodes behind delay links (5–20 ms one way), two paying
// clients that follow the registry; a node SIGKILLed mid-generation and restarted, one unbonding
// and a new one registering while the clients run. Every generation must equal the
// single-process run. The full-size version with figures is `npm run bench:network`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getAddress } from 'ethers'
import { SimNetwork, CallLog, timedGeneration, type GenerationRecord } from '../sim/network.js'
import type { PaidRouter } from '../../router/paid.js'
import type { DenseRuntime } from '../../model/dense/index.js'
import { generateAll, type MoeEvent } from '../../model/generate.js'
import type { Draft } from '../../model/draft.js'

const PROMPT = [1, 2, 3]
const TOKENS = 5
const LAYERS = 2
/** Per-chunk jitter of the links, uniform in [0, JITTER_MS): the floor counts its mean. */
const JITTER_MS = 2

let dir: string
let sim: SimNetwork
let dense: DenseRuntime
let reference: number[]
const clients: Array<{ paid: PaidRouter; log: CallLog }> = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pov-e2e-network-'))
  sim = await SimNetwork.start({
    dir,
    nodes: 4,
    shardsPerNode: 2,
    model: { seed: 7, layers: LAYERS, experts: 4 },
    seed: 1,
    delayMs: [5, 20],
    jitterMs: JITTER_MS,
    nodeArgs: ['--threads', '1', '--no-spin']
  })
  dense = await sim.dense()
  const ref = await sim.reference(dense, PROMPT, TOKENS)
  // greedy tokens are only comparable when no step is a near-tie
  assert.ok(ref.minMargin > 1e-3, `reference margin ${ref.minMargin}`)
  reference = ref.tokens
  for (let i = 0; i < 2; i++) {
    const log = new CallLog()
    const paid = await sim.router(
      await sim.client(),
      { onCall: log.onCall, onAttempt: log.onAttempt },
      300
    )
    clients.push({ paid, log })
  }
})

after(async () => {
  for (const c of clients) await c.paid.close().catch(() => {})
  await dense?.close()
  await sim?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

async function generateAllClients(): Promise<GenerationRecord[]> {
  return await Promise.all(
    clients.map(
      async (c) =>
        await timedGeneration({
          dense,
          experts: c.paid.router.executor,
          log: c.log,
          rttOf: (p) => sim.rttOf(p),
          promptIds: PROMPT,
          maxTokens: TOKENS,
          reference
        })
    )
  )
}

/** Exact, and if not, why: a failed or degraded generation says so before its tokens differ. */
function assertExact(recs: GenerationRecord[]): void {
  recs.forEach((r, i) => {
    const why =
      r.failedAttempts.length > 0 ? `; failed attempts: ${r.failedAttempts.join(' | ')}` : ''
    assert.equal(r.error, undefined, `client ${i}: ${r.error}${why}`)
    assert.equal(r.degraded, false, `client ${i}: degraded (an expert had no replica left)${why}`)
    assert.deepEqual(r.tokens, reference, `client ${i}: tokens differ from --local${why}`)
  })
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('two paying clients over delayed links get the single-process tokens; each token costs at least its floor', async () => {
  const recs = await generateAllClients()
  assertExact(recs)
  for (const r of recs) {
    assert.equal(r.tokenMs.length, TOKENS - 1)
    for (let i = 0; i < r.tokenMs.length; i++) {
      // the floor is what the links impose: a link never delivers early, so no token beats
      // the round trips of its layers less their mean jitter, on any machine
      assert.ok(r.floorMs[i] >= LAYERS * 2 * 5, `floor ${r.floorMs[i]}: ${LAYERS} layers × ≥ 10 ms`)
      const hard = r.floorMs[i] - LAYERS * JITTER_MS
      assert.ok(r.tokenMs[i] >= hard, `token ${r.tokenMs[i]} ms under its floor ${hard} ms`)
    }
  }
})

test('a node SIGKILLed during generation: calls move to its replica, tokens stay exact; it restarts and serves again', async () => {
  // the replica client 0 would call first for expert 0 of layer 0
  const r = clients[0].paid.router
  const peer = r.routes.select(
    0,
    0,
    new Set(),
    r.executor.latency.estimates(r.routes.replicas(0, 0), 1)
  )
  const victim = sim.nodes.find((n) => n.op.peerId === peer) ?? sim.nodes[0]
  const running = generateAllClients()
  await sim.kill(victim)
  const during = await running
  assertExact(during)
  await sim.startNode(victim)
  const after = await generateAllClients()
  assertExact(after)
})

test('speculative decoding over the network: multi-row verify passes, a node SIGKILLed in the middle of one loses no accepted token', async () => {
  const N = 12
  const ref = await sim.reference(dense, PROMPT, N)
  assert.ok(ref.minMargin > 1e-3, `reference margin ${ref.minMargin}`)
  // a draft that knows the continuation and gets every 4th token wrong: long accepted runs and
  // rejections, every verify pass several rows
  const draft: Draft = {
    name: 'scripted',
    async propose(context, k) {
      const from = context.length - PROMPT.length
      const tokens = ref.tokens
        .slice(from, from + k)
        .map((t, i) => ((from + i) % 4 === 3 ? (t + 1) % dense.config.vocabSize : t))
      return { tokens, q: tokens.map(() => null) }
    }
  }
  const c = clients[0]
  const r = c.paid.router
  // the node this client calls for the most experts of the last layer
  const votes = new Map<string, number>()
  for (let e = 0; e < dense.config.numExperts; e++) {
    const p = r.routes.select(
      LAYERS - 1,
      e,
      new Set(),
      r.executor.latency.estimates(r.routes.replicas(LAYERS - 1, e), 1)
    )
    if (p != null) votes.set(p, (votes.get(p) ?? 0) + 1)
  }
  const peer = [...votes].sort((a, b) => b[1] - a[1])[0][0]
  const victim = sim.nodes.find((n) => n.op.peerId === peer)!
  let killing: Promise<void> | undefined
  let killedDuring: MoeEvent | undefined
  const spentBefore = [...c.paid.payer.spent().values()].reduce((a, x) => a + x.units, 0)
  const res = await generateAll({
    dense,
    experts: r.executor,
    promptIds: PROMPT,
    maxTokens: N,
    eosTokenId: null,
    speculative: { draft, draftTokens: 3 },
    onMoe: (e) => {
      // after the first layer of the second verify pass: the last layer's calls meet the kill
      if (e.phase === 'decode' && e.tokens > 1 && e.layer === 0 && killing == null) {
        if (killedDuring === undefined) {
          killedDuring = e
          return
        }
        killing = sim.kill(victim)
      }
    }
  })
  await killing
  assert.ok(killing != null, 'the kill happened inside a verify pass')
  assert.deepEqual(res.tokens, ref.tokens, 'tokens differ from --local')
  assert.equal(res.degraded, false)
  const t = res.timings
  assert.ok(t.acceptedTokens > 0 && t.acceptedTokens < t.draftedTokens, JSON.stringify(t))
  assert.equal(t.rounds + t.acceptedTokens, N - 1)
  // every verified row is paid, rejected ones included: prefill + (rounds + drafted) decode rows
  const units = [...c.paid.payer.spent().values()].reduce((a, x) => a + x.units, 0) - spentBefore
  const rows = PROMPT.length + t.rounds + t.draftedTokens
  assert.ok(
    units >= rows * LAYERS * dense.config.topK,
    `${units} units paid for ${rows} rows × ${LAYERS} layers × top-${dense.config.topK}`
  )
  await sim.startNode(victim)
  assertExact(await generateAllClients())
})

test('a node unbonds and a new one registers: the clients follow the registry without a restart', async () => {
  const leaving = sim.nodes[1]
  const newcomer = await sim.addNode(leaving.shards)
  await sim.unbond(leaving)
  for (const c of clients)
    await until(
      () => c.paid.nodes.has(newcomer.op.peerId) && !c.paid.nodes.has(leaving.op.peerId),
      'the registry change to reach the router'
    )
  const before = new Map(clients.map((c) => [c, callsTo(c.paid, leaving.op.address)]))
  const recs = await generateAllClients()
  assertExact(recs)
  for (const c of clients) {
    assert.equal(callsTo(c.paid, leaving.op.address), before.get(c), 'no call to the unbonded node')
    assert.equal(c.paid.router.routes.table.peers.has(leaving.op.peerId), false)
    assert.ok(c.paid.router.routes.table.peers.has(newcomer.op.peerId))
  }
  assert.ok(
    clients.some((c) => callsTo(c.paid, newcomer.op.address) > 0),
    'the new node is tried and paid'
  )
})

function callsTo(paid: PaidRouter, operator: string): number {
  const s = paid.payer.spent().get(getAddress(operator))
  return s?.calls ?? 0
}
