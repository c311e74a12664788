// A simulated pov network on this machine, as operators and clients would run it across the
// internet: a local chain with the contracts and a governance-approved tiny model; N operator
// nodes (`pov node init / register / start`, real processes, paid calls only), each reachable
// only through its own delay link (announced on-chain as the node's address) with a seeded
// one-way delay and jitter; paying clients that follow the registry (router/paid.ts) with
// latency-aware choice and hedging; and churn: SIGKILL + restart, unbonding, a node joining.
// Used by tests/e2e/network.test.ts (small) and tests/bench/network.ts (≥ 12 nodes).
import { join } from 'node:path'
import { Wallet, parseEther, type Signer } from 'ethers'
import { LocalNet, freePort, type OperatorHandle } from '../../deploy/localnet.js'
import { writeTinyCheckpoint, type TinyOptions } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime, type DenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import {
  generateAll,
  type ExpertExecutor,
  type RoundEvent,
  type SpeculativeOptions
} from '../../model/generate.js'
import { openPaidRouter, type PaidRouter } from '../../router/paid.js'
import type { RouterOptions } from '../../router/router.js'
import { LinkProcess } from './links.js'
import { seededRandom } from '../../model/sampling.js'

const REGISTER_CONCURRENCY = 3

export interface SimOptions {
  dir: string
  /** Nodes at start. */
  nodes: number
  /** Shards per node (1 or 2): node i serves shards i·s … i·s + s − 1 (mod shard count). */
  shardsPerNode: number
  /** A random tiny model with these options, or a checkpoint directory (e.g. models/tiny-en,
   *  its draft/ carried into the bundle). */
  model: TinyOptions | { checkpoint: string }
  seed: number
  /** One-way delay range of the links, ms. @default [5, 60] */
  delayMs?: [number, number]
  /** Per-chunk jitter, uniform in [0, jitterMs). @default 2 */
  jitterMs?: number
  /** Extra `pov node start` flags (threads, spinning). */
  nodeArgs?: string[]
  /** POV per unit. @default '0.0001' */
  price?: string
  log?: (line: string) => void
  /** Address the chain binds. @default 127.0.0.1 */
  chainHost?: string
}

export interface SimNode {
  index: number
  op: OperatorHandle
  shards: number[]
  delayMs: number
  jitterMs: number
  linkPort: number
  state: 'up' | 'down' | 'unbonding'
}

export class SimNetwork {
  readonly nodes: SimNode[] = []
  readonly net: LocalNet
  readonly links = new LinkProcess()
  bundle!: Bundle
  private readonly random: () => number
  private readonly log: (line: string) => void

  private constructor(readonly o: SimOptions) {
    this.log = o.log ?? (() => {})
    this.net = new LocalNet(o.dir, this.log)
    this.random = seededRandom(o.seed)
  }

  static async start(o: SimOptions): Promise<SimNetwork> {
    const sim = new SimNetwork(o)
    try {
      await sim.init()
    } catch (err) {
      await sim.close()
      throw err
    }
    return sim
  }

  get shardCount(): number {
    return this.bundle.manifest.shards.length
  }

  get shardExperts(): Array<Array<[number, number]>> {
    return this.bundle.manifest.shards.map((s) => s.experts)
  }

  private async init(): Promise<void> {
    await this.net.start({ hostname: this.o.chainHost })
    let hf = join(this.o.dir, 'hf')
    if ('checkpoint' in this.o.model) hf = this.o.model.checkpoint
    else await writeTinyCheckpoint(hf, this.o.model)
    await convertCheckpoint(hf, join(this.o.dir, 'bundle'), { quant: 'none' })
    this.bundle = await loadBundle(join(this.o.dir, 'bundle'))
    const c = this.bundle.config
    await this.net.approveModel({
      modelId: this.bundle.modelId,
      name: 'tiny-sim',
      layers: c.numLayers,
      experts: c.numExperts,
      shardCount: this.shardCount,
      uri: 'file://' + this.bundle.dir
    })
    this.log(`model ${this.bundle.modelId}: ${c.numLayers} layers, ${c.numExperts} experts`)
    const s = this.o.shardsPerNode
    // a few registrations at a time: each is a `pov` process, and the machine may be small
    const queue = Array.from({ length: this.o.nodes }, (_, i) => i)
    await Promise.all(
      Array.from({ length: REGISTER_CONCURRENCY }, async () => {
        for (let i = queue.shift(); i != null; i = queue.shift()) {
          const shards = Array.from({ length: s }, (_, j) => (i * s + j) % this.shardCount)
          await this.addNode(
            shards.sort((a, b) => a - b),
            i
          )
        }
      })
    )
  }

  /** Registers a node behind a new delay link and starts it; resolves when it serves. */
  async addNode(shards: number[], index = this.nodes.length): Promise<SimNode> {
    const [lo, hi] = this.o.delayMs ?? [5, 60]
    const delayMs = Math.round(lo + this.random() * (hi - lo))
    const jitterMs = this.o.jitterMs ?? 2
    const port = await freePort()
    const linkPort = await this.links.add({
      targetPort: port,
      delayMs,
      jitterMs,
      seed: this.o.seed * 1000 + index
    })
    const op = await this.net.addOperator(`node${index}`, {
      modelId: this.bundle.modelId,
      shards,
      stake: '1000',
      price: this.o.price ?? '0.0001',
      fundPov: parseEther('1500'),
      port,
      announcePort: linkPort
    })
    const node: SimNode = { index, op, shards, delayMs, jitterMs, linkPort, state: 'down' }
    this.nodes[index] = node
    await this.startNode(node)
    this.log(`node${index} shards ${shards.join(',')} one-way ${delayMs} ms, link :${linkPort}`)
    return node
  }

  async startNode(n: SimNode): Promise<void> {
    await this.net.startNode(n.op, this.bundle.dir, { args: this.o.nodeArgs })
    n.state = 'up'
  }

  /** SIGKILL: no goodbye, in-flight calls die with the connection. */
  async kill(n: SimNode): Promise<void> {
    n.state = 'down'
    await this.net.stopNode(n.op, 'SIGKILL')
  }

  /** `pov node unbond`: the registry drops the node at once; the process is stopped after `graceMs`. */
  async unbond(n: SimNode, graceMs = 3000): Promise<void> {
    await this.net.povJson(['node', 'unbond', ...this.net.chainFlags(n.op.keystore, n.op.dir)])
    n.state = 'unbonding'
    setTimeout(() => {
      void this.net.stopNode(n.op)
    }, graceMs).unref()
  }

  /** Round trip of the link in front of `peerId`, ms: 2 × (delay + mean jitter). */
  rttOf(peerId: string): number {
    const n = this.nodes.find((x) => x?.op.peerId === peerId)
    return n == null ? NaN : 2 * (n.delayMs + n.jitterMs / 2)
  }

  /** RTT of the closest node up that serves (layer, expert), ms. */
  bestRtt(layer: number, expert: number): number {
    const shard = this.shardExperts.findIndex((xs) =>
      xs.some(([l, e]) => l === layer && e === expert)
    )
    let best = Infinity
    for (const n of this.nodes)
      if (n?.state === 'up' && n.shards.includes(shard))
        best = Math.min(best, this.rttOf(n.op.peerId))
    return best
  }

  /** A funded client with `deposit` POV in escrow. */
  async client(deposit = '50'): Promise<Wallet> {
    const w = new Wallet(Wallet.createRandom().privateKey, this.net.provider)
    await this.net.fund(w.address, parseEther(deposit) * 2n)
    const { token, escrow } = this.net.contracts
    const amount = parseEther(deposit)
    await (
      await (token.connect(w) as typeof token).approve(await escrow.getAddress(), amount)
    ).wait()
    await (await (escrow.connect(w) as typeof escrow).deposit(amount)).wait()
    return w
  }

  /** A paying router for `signer` that follows the registry. */
  async router(
    signer: Signer,
    calls?: RouterOptions['calls'],
    refreshMs = 1000,
    /** Listen addresses (a client nodes behind NAT can dial back, tests/sim/nat-network.ts). */
    listen?: string[]
  ): Promise<PaidRouter> {
    return await openPaidRouter({
      contracts: this.net.contracts,
      chainId: Number(this.net.deployment.chainId),
      registryAddress: this.net.deployment.contracts.registry,
      signer,
      modelId: this.bundle.modelId,
      hidden: this.bundle.config.hiddenSize,
      shardCount: this.shardCount,
      shardExperts: this.shardExperts,
      refreshMs,
      busyPollUs: 0, // the processes share two cores
      calls,
      listen
    })
  }

  async dense(): Promise<DenseRuntime> {
    return await loadDenseRuntime(this.bundle, { allowSpinning: false })
  }

  /** The single-process (`--local`) greedy tokens of `promptIds`, and the smallest top-1/top-2 margin met. */
  async reference(
    dense: DenseRuntime,
    promptIds: number[],
    maxTokens: number
  ): Promise<{ tokens: number[]; minMargin: number }> {
    const rt = await loadExpertRuntime(
      this.bundle,
      this.bundle.manifest.shards.map((s) => s.id),
      { intraOpNumThreads: 1, allowSpinning: false }
    )
    try {
      const r = await generateAll({ dense, experts: rt, promptIds, maxTokens, eosTokenId: null })
      return { tokens: r.tokens, minMargin: Math.min(...r.steps.map((s) => s.margin)) }
    } finally {
      await rt.close()
    }
  }

  async close(): Promise<void> {
    this.links.close()
    await this.net.close()
  }
}

export interface GenerationRecord {
  ok: boolean
  exact: boolean
  degraded: boolean
  error?: string
  tokens: number[]
  ttftMs: number
  /** Per decode token: wall time, and its floor (Σ over layers of the largest RTT among the replicas that answered). */
  tokenMs: number[]
  floorMs: number[]
  /** Per decode token: Σ over layers of the longest call as the router timed it (RTT + node + queues). */
  callMs: number[]
  /** Per decode token: the floor had each call gone to its closest live replica (when asked for). */
  bestFloorMs: number[]
  calls: number
  hedged: number
  retried: number
  /** Failed attempts met on the way (`L<layer>E<expert> <peer>: <error>`): why a generation degraded. */
  failedAttempts: string[]
  /** Decode rounds, drafted and accepted tokens, draft time (speculative decoding; plain: one
   *  round per decode token, nothing drafted). */
  rounds: number
  draftedTokens: number
  acceptedTokens: number
  draftMs: number
}

/** Records the replicas that answered each call, to compute each token's physical floor. */
export class CallLog {
  private calls: Array<{
    layer: number
    expert: number
    peer: string
    ms: number
    attempts: number
    hedged: boolean
  }> = []
  private failures: string[] = []
  readonly onCall: NonNullable<NonNullable<RouterOptions['calls']>['onCall']> = (c) => {
    this.calls.push(c)
  }

  readonly onAttempt: NonNullable<NonNullable<RouterOptions['calls']>['onAttempt']> = (a) => {
    if (!a.ok) this.failures.push(`L${a.layer}E${a.expert} ${a.peer.slice(-6)}: ${a.error}`)
  }

  /** Floor of the calls since the last take(): consecutive calls of one layer ran in parallel. */
  take(
    rttOf: (peer: string) => number,
    bestRttOf?: (layer: number, expert: number) => number
  ): {
    floor: number
    /** The same sum over the calls' measured times. */
    callMs: number
    /** The same sum over each call's closest live replica (NaN without `bestRttOf`). */
    best: number
    calls: number
    hedged: number
    retried: number
    /** Failed attempts since the last take(). */
    failures: string[]
  } {
    let floor = 0
    let callMs = 0
    let layer = -1
    let layerMax = 0
    let layerMs = 0
    let best = 0
    let layerBest = 0
    let hedged = 0
    let retried = 0
    for (const c of this.calls) {
      if (c.layer !== layer) {
        floor += layerMax
        callMs += layerMs
        best += layerBest
        layer = c.layer
        layerMax = 0
        layerMs = 0
        layerBest = 0
      }
      layerMax = Math.max(layerMax, rttOf(c.peer))
      layerMs = Math.max(layerMs, c.ms)
      layerBest = Math.max(layerBest, bestRttOf?.(c.layer, c.expert) ?? NaN)
      if (c.hedged) hedged++
      if (c.attempts > 1 && !c.hedged) retried++
    }
    floor += layerMax
    callMs += layerMs
    best += layerBest
    const calls = this.calls.length
    const failures = this.failures
    this.calls = []
    this.failures = []
    return { floor, callMs, best, calls, hedged, retried, failures }
  }
}

/** One paid greedy generation through `experts`, timed per token, checked against `reference`.
 *  With speculative decoding a round yields several tokens at once: each of them is given the
 *  round's time divided by their number, and the round's floor. */
export async function timedGeneration(o: {
  dense: DenseRuntime
  experts: ExpertExecutor
  log: CallLog
  rttOf: (peer: string) => number
  /** RTT of the closest live replica of (layer, expert), for the best possible floor. */
  bestRttOf?: (layer: number, expert: number) => number
  promptIds: number[]
  maxTokens: number
  reference: number[]
  speculative?: SpeculativeOptions
}): Promise<GenerationRecord> {
  const rec: GenerationRecord = {
    ok: false,
    exact: false,
    degraded: false,
    tokens: [],
    ttftMs: NaN,
    tokenMs: [],
    floorMs: [],
    callMs: [],
    bestFloorMs: [],
    calls: 0,
    hedged: 0,
    retried: 0,
    failedAttempts: [],
    rounds: 0,
    draftedTokens: 0,
    acceptedTokens: 0,
    draftMs: 0
  }
  o.log.take(o.rttOf) // drop anything left from an earlier run
  const t0 = performance.now()
  let last = t0
  let round: RoundEvent | undefined
  let pending = 0
  try {
    const r = await generateAll(
      {
        dense: o.dense,
        experts: o.experts,
        promptIds: o.promptIds,
        maxTokens: o.maxTokens,
        eosTokenId: null,
        ...(o.speculative != null ? { speculative: o.speculative } : {}),
        onRound: (r) => {
          round = r
        }
      },
      (t) => {
        const now = performance.now()
        if (t.phase === 'decode' && pending > 0) {
          pending-- // a later token of a round already accounted for
          last = now
          return
        }
        const f = o.log.take(o.rttOf, o.bestRttOf)
        rec.calls += f.calls
        rec.hedged += f.hedged
        rec.retried += f.retried
        rec.failedAttempts.push(...f.failures)
        if (t.phase === 'prefill') rec.ttftMs = now - t0
        else {
          const n = round?.emitted ?? 1
          for (let i = 0; i < n; i++) {
            rec.tokenMs.push((now - last) / n)
            rec.floorMs.push(f.floor)
            rec.callMs.push(f.callMs)
            rec.bestFloorMs.push(f.best)
          }
          pending = n - 1
        }
        last = now
      }
    )
    rec.rounds = r.timings.rounds
    rec.draftedTokens = r.timings.draftedTokens
    rec.acceptedTokens = r.timings.acceptedTokens
    rec.draftMs = r.timings.draftMs
    rec.tokens = r.tokens
    rec.degraded = r.degraded
    rec.ok = true
    rec.exact = !r.degraded && r.tokens.join() === o.reference.join()
  } catch (err) {
    rec.error = (err as Error).message
  }
  rec.failedAttempts.push(...o.log.take(o.rttOf).failures)
  return rec
}
