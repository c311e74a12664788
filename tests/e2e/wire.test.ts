// User journey: an operator network serves the experts, a client generates through it.
// 4 node PROCESSES on 127.0.0.1 (cli/bin.ts node start), the tiny model with 8 experts = 8
// shards (shard j = expert j of every layer). Shard layout (docs/protocol.md#test-layout):
// "4 nodes, every shard on 2 nodes" needs 16 shard slots, so each node hosts 4 shards:
//   A {0,1,2,3}  B {4,5,6,7}  C {2,3,4,5}  D {6,7,0,1}
// — every shard on exactly 2 nodes, no two nodes identical, any one node can die.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime, type DenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/index.js'
import { generate, type ExpertExecutor } from '../../model/generate.js'
import { Router } from '../../router/index.js'

const ROOT = resolve(import.meta.dirname, '../..')
const PROMPT = [1, 2, 3]
const MAX_TOKENS = 16
/** fp32 on the wire is bit-exact per expert; only batching order could move logits at all. */
const FP32_LOGIT_TOL = 1e-4
/**
 * fp16 on the wire rounds every expert input and output to 11 significant bits (relative error
 * ≤ 2^-11 ≈ 4.9e-4 each way); through 2 layers of the tiny model that moved logits by at most
 * 3.7e-3 when measured — asserted with ~2.7× headroom. (The smallest top-1/top-2 margin of this
 * prompt is 2.9e-2 > 2 × 1e-2, so fp16 cannot flip a greedy token here.)
 */
const FP16_LOGIT_TOL = 1e-2
const LAYOUT = [
  [0, 1, 2, 3],
  [4, 5, 6, 7],
  [2, 3, 4, 5],
  [6, 7, 0, 1]
]

interface Step {
  id: number
  logits: Float32Array
  margin: number
  degraded: boolean
}
interface NodeProc {
  proc: ChildProcess
  peerId: string
  addr: string
  shards: number[]
}

let dir: string
let bundle: Bundle
let dense: DenseRuntime
let nodes: NodeProc[] = []
let reference: Step[]
let cliTokens: number[]
let cliLogits: number[]

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'cli/bin.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.stderr.on('data', (d) => {
      err += d
    })
    p.on('exit', (code) => {
      if (code === 0) resolve(out)
      else reject(new Error(`pov ${args.join(' ')} exited ${code}: ${err}`))
    })
  })
}

// two of the four nodes run their experts in worker threads (--workers 2), two in the network
// thread: both must give the single-process result exactly
function startNode(shards: number[], i: number): Promise<NodeProc> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/bin.ts',
      'node',
      'start',
      '--model',
      join(dir, 'bundle'),
      '--shards',
      shards.join(','),
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--json',
      '--log-level',
      'warn',
      ...(i % 2 === 1 ? ['--workers', '2'] : [])
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let err = ''
  proc.stderr?.on('data', (d) => {
    err += d
  })
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! })
    lines.on('line', (line) => {
      const ev = JSON.parse(line)
      if (ev.event !== 'ready') return
      // the ready line names the execution provider
      if (ev.device !== 'cpu') reject(new Error(`ready line without device: ${line}`))
      else resolve({ proc, peerId: ev.peerId, addr: ev.addrs[0], shards })
    })
    proc.on('exit', (code) => {
      reject(new Error(`node ${shards} exited ${code} before ready: ${err}`))
    })
  })
}

async function collect(
  experts: ExpertExecutor,
  onStep?: (i: number) => Promise<void>
): Promise<Step[]> {
  const steps: Step[] = []
  for await (const t of generate({
    dense,
    experts,
    promptIds: PROMPT,
    maxTokens: MAX_TOKENS,
    eosTokenId: null,
    returnLogits: true
  })) {
    steps.push({ id: t.id, logits: t.logits!, margin: t.margin, degraded: t.degraded })
    await onStep?.(steps.length)
  }
  return steps
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

async function router(wireDType: 'fp32' | 'fp16', peers = nodes): Promise<Router> {
  return await Router.init({
    opts: {
      peers: peers.map((n) => n.addr),
      modelId: bundle.modelId,
      hidden: bundle.config.hiddenSize,
      wireDType,
      callTimeoutMs: 10_000
    }
  })
}

before(
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'pov-wire-'))
    await writeTinyCheckpoint(join(dir, 'hf'), { seed: 0 })
    await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'))
    bundle = await loadBundle(join(dir, 'bundle'))
    assert.equal(bundle.config.numExperts, 8)
    const starting = LAYOUT.map(startNode) // all four at once; each waits on its own ready line
    const [cli, local] = await Promise.all([
      run([
        'generate',
        '--model',
        join(dir, 'bundle'),
        '--local',
        '--prompt-ids',
        PROMPT.join(','),
        '--max-tokens',
        String(MAX_TOKENS),
        '--ignore-eos',
        '--json',
        '--logits'
      ]),
      (async () => {
        dense = await loadDenseRuntime(bundle, { device: 'cpu' })
        const rt = await loadExpertRuntime(
          bundle,
          bundle.manifest.shards.map((s) => s.id),
          { device: 'cpu' }
        )
        try {
          return await collect(rt)
        } finally {
          await rt.close()
        }
      })()
    ])
    const out = JSON.parse(cli)
    cliTokens = out.tokens
    cliLogits = out.logits
    reference = local
    nodes = await Promise.all(starting)
  },
  { timeout: 90_000 }
)

after(async () => {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.proc.exitCode != null || n.proc.signalCode != null) return
      const exited = new Promise((resolve) => n.proc.once('exit', resolve))
      n.proc.kill('SIGTERM')
      await exited
    })
  )
  await dense?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

test('the reference run has no near-ties (so token equality is a real check)', (t) => {
  t.diagnostic(`min margin ${Math.min(...reference.map((s) => s.margin))}`)
  assert.deepEqual(
    reference.map((s) => s.id),
    cliTokens,
    'in-process local == pov generate --local'
  )
  assert.ok(maxDiff(reference[reference.length - 1].logits, cliLogits) <= 1e-6)
  // a flip needs top-1 and top-2 to move by half the margin each way: margin > 2 × tolerance
  for (const [i, s] of reference.entries())
    assert.ok(
      s.margin > 2 * FP16_LOGIT_TOL,
      `step ${i}: top-1/top-2 margin ${s.margin} is too small for this test`
    )
})

test('distributed greedy generation over 4 nodes, fp32 on the wire == single process (tokens exact, logits within 1e-4)', async (t) => {
  const r = await router('fp32')
  try {
    assert.equal(r.routes.table.peers.size, 4)
    assert.deepEqual(r.missing(bundle.config.numLayers, 8), [])
    const steps = await collect(r.executor)
    assert.deepEqual(
      steps.map((s) => s.id),
      cliTokens
    )
    t.diagnostic(
      `fp32 max |Δlogit| ${Math.max(...steps.map((s, i) => maxDiff(s.logits, reference[i].logits)))}`
    )
    steps.forEach((s, i) => {
      assert.equal(s.degraded, false)
      assert.ok(
        maxDiff(s.logits, reference[i].logits) <= FP32_LOGIT_TOL,
        `step ${i}: logits differ by ${maxDiff(s.logits, reference[i].logits)}`
      )
    })
    // every node took part
    const used = new Set(r.libp2p.getConnections().map((c) => c.remotePeer.toString()))
    assert.equal(used.size, 4)
  } finally {
    await r.close()
  }
})

test(`fp16 on the wire: same tokens, logits within ${FP16_LOGIT_TOL}`, async (t) => {
  const r = await router('fp16')
  try {
    const steps = await collect(r.executor)
    assert.deepEqual(
      steps.map((s) => s.id),
      cliTokens
    )
    const worst = Math.max(...steps.map((s, i) => maxDiff(s.logits, reference[i].logits)))
    t.diagnostic(`fp16 max |Δlogit| ${worst}`)
    assert.ok(worst <= FP16_LOGIT_TOL, `fp16 logits differ by ${worst}`)
    assert.ok(worst > 0, 'fp16 really was used on the wire')
  } finally {
    await r.close()
  }
})

test('killing a node mid-generation: retried on the replicas, same tokens, nothing degraded', async (t) => {
  // the victim is the node that answered most calls so far (the router prefers it for some
  // experts, so its next calls fail and go to the replicas); a node the router had stopped
  // choosing would see no call after its death and give this test nothing to check
  const answered = new Map<string, number>()
  let killed: NodeProc | null = null
  let failedAfterKill = 0
  const r = await Router.init({
    opts: {
      peers: nodes.map((n) => n.addr),
      modelId: bundle.modelId,
      hidden: bundle.config.hiddenSize,
      wireDType: 'fp32',
      callTimeoutMs: 10_000,
      onAttempt: (a) => {
        if (a.ok) answered.set(a.peer, (answered.get(a.peer) ?? 0) + 1)
        else if (killed != null && a.peer === killed.peerId) failedAfterKill++
      }
    }
  })
  try {
    const steps = await collect(r.executor, async (n) => {
      if (n !== 5) return
      const top = [...answered].sort((a, b) => b[1] - a[1])[0][0]
      const victim = nodes.find((x) => x.peerId === top)!
      const exited = new Promise((resolve) => victim.proc.once('exit', resolve))
      victim.proc.kill('SIGKILL')
      await exited
      killed = victim
    })
    assert.deepEqual(
      steps.map((s) => s.id),
      cliTokens
    )
    steps.forEach((s, i) => {
      assert.equal(s.degraded, false, `step ${i} degraded`)
      assert.ok(maxDiff(s.logits, reference[i].logits) <= FP32_LOGIT_TOL)
    })
    const victim = killed as NodeProc | null
    assert.ok(victim != null)
    t.diagnostic(`calls to the killed node that failed: ${failedAfterKill}`)
    assert.ok(failedAfterKill > 0, 'the killed node was asked again (and the replicas answered)')
    assert.ok(
      r.routes.benched.has(victim.peerId),
      'the killed node was benched after its calls failed'
    )
  } finally {
    await r.close()
  }
})
