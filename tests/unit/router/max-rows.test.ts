// A prompt longer than the rows a node takes per call (InfoResponse.maxRows): the router splits
// the prefill calls, and the generation equals the single-process one (the --local path: the
// same ExpertRuntime called directly). Real tiny model, real node service over loopback libp2p.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { convertCheckpoint } from '../../../model/bundle/convert.js'
import { loadBundle } from '../../../model/bundle/load.js'
import { loadExpertRuntime } from '../../../model/runtime/expert.js'
import { loadDenseRuntime } from '../../../model/dense/index.js'
import { generateAll } from '../../../model/generate.js'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import type { HostedModel } from '../../../node/runtime.js'
import { Router } from '../../../router/router.js'

const MAX_ROWS = 4
const TOL = 1e-4

const root = await mkdtemp(join(tmpdir(), 'pov-max-rows-'))
const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers.reverse()) await c()
  await rm(root, { recursive: true, force: true })
})

test('a prompt longer than the node maxRows is split by the router and equals the local run', async () => {
  await writeTinyCheckpoint(join(root, 'hf'), { seed: 3 })
  await convertCheckpoint(join(root, 'hf'), join(root, 'b'))
  const bundle = await loadBundle(join(root, 'b'))
  const dense = await loadDenseRuntime(bundle, { allowSpinning: false })
  closers.push(async () => await dense.close())
  const all = bundle.manifest.shards.map((s) => s.id)
  const experts = await loadExpertRuntime(bundle, all, { intraOpNumThreads: 1 })
  closers.push(async () => await experts.close())

  const rowsRun: number[] = []
  const hosted: HostedModel = {
    modelId: bundle.modelId,
    manifestHash: bundle.modelId,
    hidden: bundle.config.hiddenSize,
    numLayers: bundle.config.numLayers,
    numExperts: bundle.config.numExperts,
    shards: all,
    experts: experts.experts(),
    runtime: {
      has: (l, e) => experts.has(l, e),
      runExpert: async (l, e, x, rows, o) => {
        rowsRun.push(rows)
        return await experts.runExpert(l, e, x, rows, o)
      }
    }
  }
  const node = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: { expert: expertService({ models: [hosted], maxBatchRows: MAX_ROWS }) }
  })) as Libp2p<{ expert: ExpertService }>
  closers.push(async () => await node.stop())
  const router = await Router.init({
    opts: {
      peers: [node.getMultiaddrs()[0].toString()],
      modelId: bundle.modelId,
      hidden: bundle.config.hiddenSize,
      busyPollUs: 0
    }
  })
  closers.push(async () => await router.close())
  assert.equal(router.routes.maxRows(0, 0), MAX_ROWS, 'the advertised limit is read')

  const prompt = [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41] // 11 tokens > 4 rows
  const run = async (ex: typeof experts | typeof router.executor) =>
    await generateAll({
      dense,
      experts: ex,
      promptIds: prompt,
      maxTokens: 6,
      eosTokenId: null,
      returnLogits: true
    })
  const local = await run(experts)
  const remote = await run(router.executor)

  assert.ok(rowsRun.length > 0)
  assert.ok(
    rowsRun.every((r) => r <= MAX_ROWS),
    `the node ran ${Math.max(...rowsRun)} rows at once`
  )
  assert.ok(
    rowsRun.some((r) => r === MAX_ROWS),
    'the prefill reached the node in full-size parts'
  )
  assert.equal(remote.degraded, false)
  assert.deepEqual(
    remote.steps.map((s) => s.id),
    local.steps.map((s) => s.id)
  )
  for (let i = 0; i < local.steps.length; i++) {
    // a near-tie would let a correct but differently ordered sum flip a token
    assert.ok(local.steps[i].margin > 10 * TOL, `step ${i}: near-tie (${local.steps[i].margin})`)
    let d = 0
    const a = local.steps[i].logits!
    const b = remote.steps[i].logits!
    for (let j = 0; j < a.length; j++) d = Math.max(d, Math.abs(a[j] - b[j]))
    assert.ok(d < TOL, `step ${i}: logits differ by ${d}`)
  }
})
