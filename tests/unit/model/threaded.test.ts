// The worker-thread expert runtime: same outputs as the in-thread one, the calling thread stays
// free during a run, and bad input or a bad load fails with the same clear errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { convertCheckpoint, loadBundle } from '../../../model/bundle/index.js'
import {
  assignWorker,
  ExpertInputError,
  ExpertNotHostedError,
  loadExpertRuntime,
  loadThreadedExpertRuntime
} from '../../../model/runtime/index.js'

async function bundleDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pov-threaded-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  await writeTinyCheckpoint(join(d, 'hf'), { seed: 5 })
  await convertCheckpoint(join(d, 'hf'), join(d, 'b'))
  return join(d, 'b')
}

const input = (n: number, seed: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed))

test('assignWorker deals the experts a layer hosts round-robin', () => {
  assert.deepEqual(
    [3, 6].map((e) => assignWorker([6, 3], e, 2)),
    [0, 1]
  )
  assert.deepEqual(
    [0, 1, 2, 3].map((e) => assignWorker([0, 1, 2, 3], e, 2)),
    [0, 1, 0, 1]
  )
  assert.deepEqual(
    [5].map((e) => assignWorker([5], e, 3)),
    [0]
  )
})

test("threaded runtime: the in-thread runtime's outputs, bit for bit, from 2 workers", async (t) => {
  const dir = await bundleDir(t)
  const bundle = await loadBundle(dir)
  const shards = [1, 4, 6]
  const directProgress: number[] = []
  const threadedProgress: Array<[number, number]> = []
  const direct = await loadExpertRuntime(bundle, shards, {
    onProgress: (n) => directProgress.push(n)
  })
  const threaded = await loadThreadedExpertRuntime(dir, shards, {
    workers: 2,
    onProgress: (n, total) => threadedProgress.push([n, total])
  })
  t.after(async () => {
    await direct.close()
    await threaded.close()
  })
  const D = bundle.config.hiddenSize
  assert.deepEqual(threaded.experts(), direct.experts())
  // loading reports each expert as it comes (a real Mixtral shard takes minutes), in both runtimes
  const n = direct.experts().length
  assert.deepEqual(
    directProgress,
    [...Array(n).keys()].map((i) => i + 1)
  )
  assert.deepEqual(
    threadedProgress,
    [...Array(n).keys()].map((i) => [i + 1, n])
  )
  assert.equal(threaded.hidden, D)
  assert.equal(threaded.modelId, bundle.modelId)
  for (const [l, e] of direct.experts()) {
    const rows = 1 + ((l + e) % 4)
    const x = input(rows * D, l * 10 + e)
    const before = x.slice()
    // all experts of the layer at once, as the service submits them
    const [a, b] = await Promise.all([
      direct.runExpert(l, e, x, rows),
      threaded.runExpert(l, e, x, rows)
    ])
    assert.deepEqual(Array.from(b), Array.from(a), `expert ${e} of layer ${l}`)
    assert.deepEqual(
      x,
      before,
      "the caller's input is left intact (it is hashed for the signature)"
    )
  }
})

test('threaded runtime: the calling thread keeps running while an expert runs', async (t) => {
  const dir = await bundleDir(t)
  const rt = await loadThreadedExpertRuntime(dir, [0], { workers: 1 })
  t.after(async () => {
    await rt.close()
  })
  const D = rt.hidden
  // In-thread, onnxruntime-node runs synchronously, so an immediate queued beside the call can
  // fire only after the run: it never wins. With a worker it wins unless the worker finishes
  // before the main thread reaches its next check phase, which a loaded machine allows now and
  // then — so the worker gets a few tries, and one turn that ran during a run is the proof.
  let ranBeside = false
  for (let attempt = 0; attempt < 5 && !ranBeside; attempt++) {
    let ticked = false
    const run = rt.runExpert(0, 0, input(1024 * D, attempt + 1), 1024).then(() => ticked)
    setImmediate(() => {
      ticked = true
    })
    ranBeside = await run
  }
  assert.equal(ranBeside, true, 'an event-loop turn ran while the worker computed')
})

test('threaded runtime: bad calls and bad loads fail with clear errors', async (t) => {
  const dir = await bundleDir(t)
  const rt = await loadThreadedExpertRuntime(dir, [2], { workers: 2 })
  const D = rt.hidden
  await assert.rejects(rt.runExpert(0, 3, input(D, 1), 1), ExpertNotHostedError)
  await assert.rejects(rt.runExpert(0, 2, input(D + 1, 1), 1), ExpertInputError)
  await assert.rejects(rt.runExpert(0, 2, input(D, 1), 0), /rows must be a positive integer/)
  // still serving after the bad calls
  assert.equal((await rt.runExpert(0, 2, input(2 * D, 1), 2)).length, 2 * D)
  await rt.close()
  await assert.rejects(rt.runExpert(0, 2, input(D, 1), 1), /closed/)
  await assert.rejects(
    loadThreadedExpertRuntime(dir, [42], { workers: 2 }),
    /failed to load: .*no shard 42/
  )
  await assert.rejects(
    loadThreadedExpertRuntime(join(dir, 'missing'), [0], { workers: 1 }),
    /ENOENT|no such file/
  )
})
