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
import { SpotChecker } from '../../../router/spot-check.js'
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

async function through(
  peers: Host[],
  rate: number
): Promise<{ ids: number[]; checker: SpotChecker; referee: OnDemandExperts }> {
  const referee = new OnDemandExperts(f.bundle)
  const checker = new SpotChecker({
    rate,
    modelId: f.bundle.modelId,
    reputation: new Reputation(),
    local: referee
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
    return { ids: await f.run(router.executor), checker, referee }
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
