// --verify-rate 1 with the demo's two-replica layout: a node that answers with another model's
// weights (signed, or not signed at all) beside one honest node never changes a temperature-0
// generation — every answer is confirmed by the other operator or by the router's own run of
// that one expert (router/referee.ts), loaded from the bundle on demand. Without checking, the
// same cheat does change the tokens (so the equality below means something).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import type { ExpertBackend } from '../../../node/runtime.js'
import { Router } from '../../../router/router.js'
import { SpotChecker, type CheckOutcome } from '../../../router/spot-check.js'
import type { SpeculativeOptions } from '../../../model/generate.js'
import type { Draft } from '../../../model/draft.js'
import { Reputation } from '../../../router/reputation.js'
import { OnDemandExperts } from '../../../router/referee.js'
import { cheatFixture, type CheatFixture } from '../../sim/cheat-fixture.js'

type Host = Libp2p<{ expert: ExpertService }>
const PROMPT = [1, 2, 3]
const MAX_TOKENS = 10
let dir: string
let f: CheatFixture
const hosts: Host[] = []

async function node(rt: ExpertBackend, sign = true): Promise<Host> {
  const c = f.bundle.config
  const h = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: {
      expert: expertService({
        models: [
          {
            modelId: f.bundle.modelId,
            manifestHash: f.bundle.modelId,
            hidden: c.hiddenSize,
            numLayers: c.numLayers,
            numExperts: c.numExperts,
            shards: f.bundle.manifest.shards.map((s) => s.id),
            experts: f.honestRt.experts(),
            runtime: rt
          }
        ],
        sign
      })
    }
  })) as unknown as Host
  hosts.push(h)
  return h
}

before(
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'pov-strict-'))
    f = await cheatFixture(dir, { prompt: PROMPT, maxTokens: MAX_TOKENS })
  },
  { timeout: 120_000 }
)

after(async () => {
  await Promise.all(hosts.map(async (h) => await h.stop()))
  await f?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

/** Another model's experts under the approved id: a large, signed lie. */
const otherWeights = (): ExpertBackend => f.otherWeights()

/** A checked call: its rows, the outcome, and whether it came after the prefill (the draft had
 *  proposed: from then on a call of several rows is a verify pass's). */
interface Checked {
  rows: number
  outcome: CheckOutcome
  decoding: boolean
}
let decoding = false

async function through(
  peers: Host[],
  rate: number,
  speculative?: SpeculativeOptions
): Promise<{
  ids: number[]
  checker: SpotChecker
  referee: OnDemandExperts
  checked: Checked[]
}> {
  const referee = new OnDemandExperts(f.bundle)
  const checked: Checked[] = []
  decoding = false
  const checker = new SpotChecker({
    rate,
    modelId: f.bundle.modelId,
    reputation: new Reputation(),
    local: referee,
    onCheck: (c) => checked.push({ rows: c.rows, outcome: c.outcome, decoding })
  })
  const router = await Router.init({
    opts: {
      peers: peers.map((h) => h.getMultiaddrs()[0].toString()),
      modelId: f.bundle.modelId,
      hidden: f.bundle.config.hiddenSize,
      spotCheck: checker
    }
  })
  try {
    return { ids: await f.run(router.executor, speculative), checker, referee, checked }
  } finally {
    await router.close()
    await referee.close()
  }
}

test('the --local reference has no near-ties', () => {
  assert.equal(f.local.length, MAX_TOKENS)
  assert.ok(f.minMargin > 2e-2, `margin ${f.minMargin}`)
})

test('unchecked, the cheat changes the tokens (control)', async () => {
  // the cheat alone, nothing checked: its answers are the generation's
  const { ids } = await through([await node(otherWeights())], 0)
  assert.notDeepEqual(ids, f.local)
})

test('--verify-rate 1, two replicas, a signed cheat: tokens equal --local; the cheat is convicted; few experts loaded', async (t) => {
  const honest = await node(f.honestRt)
  const cheat = await node(otherWeights())
  const { ids, checker, referee } = await through([honest, cheat], 1)
  assert.deepEqual(ids, f.local)
  assert.equal(checker.reputation.isConvicted(cheat.peerId.toString()), true)
  assert.equal(checker.reputation.isConvicted(honest.peerId.toString()), false)
  assert.equal(checker.counts.undecided + checker.counts.unchecked, 0)
  const total = f.bundle.config.numLayers * f.bundle.config.numExperts
  t.diagnostic(
    `referee loaded ${referee.loads} of ${total} experts; ${JSON.stringify(checker.counts)}`
  )
  assert.ok(referee.loads >= 1 && referee.loads < total, `${referee.loads} of ${total}`)
})

test('--verify-rate 1, two replicas, an unsigned cheat: tokens equal --local', async () => {
  const honest = await node(f.honestRt)
  const cheat = await node(otherWeights(), false)
  const { ids, checker } = await through([honest, cheat], 1)
  assert.deepEqual(ids, f.local)
  assert.equal(checker.counts.undecided + checker.counts.unchecked, 0)
})

/** Speculative decoding with a fixed k of 3 and a draft that knows the --local continuation but
 *  gets every third token wrong: verify passes of 4 tokens, with rejections (roll-backs). Its
 *  first proposal comes right after the prefill: it sets `decoding`. */
const speculative = (): SpeculativeOptions => {
  const draft: Draft = {
    name: 'scripted',
    async propose(context, k) {
      decoding = true
      const from = context.length - PROMPT.length
      const tokens: number[] = []
      for (let i = from; i < Math.min(f.local.length, from + k); i++)
        tokens.push(i % 3 === 0 ? (f.local[i] + 1) % f.bundle.config.vocabSize : f.local[i])
      return { tokens, q: tokens.map(() => null) }
    }
  }
  return { draft, draftTokens: 3 }
}

test('--verify-rate 1 on a speculative generation: the calls of its verify passes (several rows) are checked; tokens equal --local', async () => {
  const { ids, checker, checked } = await through(
    [await node(f.honestRt), await node(f.honestRt)],
    1,
    speculative()
  )
  assert.deepEqual(ids, f.local)
  assert.equal(checker.counts.undecided + checker.counts.unchecked + checker.counts.convicted, 0)
  assert.equal(checker.counts.agreed, checked.length)
  const verify = checked.filter((c) => c.decoding && c.rows > 1)
  assert.ok(verify.length > 0, `checked calls: ${JSON.stringify(checked)}`)
})

test('--verify-rate 1, a signed cheat that lies only in verify passes: convicted on a multi-row call; tokens equal --local', async () => {
  // honest through the prefill and on single rows; from the first proposal on, every call of
  // several rows is answered with another model's weights
  const cheatsInVerify: ExpertBackend = {
    has: (l, e) => f.honestRt.has(l, e),
    runExpert: async (l, e, x, rows) =>
      await (decoding && rows > 1 ? f.otherRt : f.honestRt).runExpert(l, e, x, rows)
  }
  const cheat = await node(cheatsInVerify)
  // control: unchecked, alone, it changes the tokens
  assert.notDeepEqual((await through([cheat], 0, speculative())).ids, f.local)
  const honest = await node(f.honestRt)
  const { ids, checker, checked } = await through([honest, cheat], 1, speculative())
  assert.deepEqual(ids, f.local)
  assert.equal(checker.reputation.isConvicted(cheat.peerId.toString()), true)
  assert.equal(checker.reputation.isConvicted(honest.peerId.toString()), false)
  assert.equal(checker.counts.undecided + checker.counts.unchecked, 0)
  const convicted = checked.filter((c) => c.outcome === 'convicted')
  assert.ok(
    convicted.length > 0 && convicted.every((c) => c.decoding && c.rows > 1),
    `convicted on ${JSON.stringify(convicted)}`
  )
})
