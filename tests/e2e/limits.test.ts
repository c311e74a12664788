// No lock-out: one host holding hundreds of idle libp2p connections and another hundreds of
// silent TCP sockets, against a real OperatorNode (tiny model, ORT experts) with its default
// limits; a legitimate router on a third address still gets its answers. Loopback only: the
// hosts are 127.0.0.2-5 (Linux routes all of 127/8 to lo), bound as source addresses.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { OperatorNode } from '../../node/operator-node.js'
import { defaultLimits, type ConnectionLimitsInit } from '../../node/limits.js'
import { createNodeMetrics, type NodeMetrics } from '../../node/metrics.js'
import { transportOptions } from '../../protocol/transport.js'
import { EXPERT_PROTOCOL } from '../../protocol/constants.js'
import { DType, Status } from '../../protocol/expert.js'
import { encodeTensor, hexToBytes } from '../../protocol/codec.js'
import { ExpertChannel } from '../../router/channel.js'

const IDLE = 320
let dir: string
let bundle: Bundle
const cleanup: Array<() => Promise<unknown> | unknown> = []
const logs: Array<Record<string, unknown>> = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pov-limits-'))
  await writeTinyCheckpoint(join(dir, 'hf'), { seed: 0 })
  await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'), { dense: false })
  bundle = await loadBundle(join(dir, 'bundle'))
})
after(async () => {
  for (const f of cleanup.reverse()) await f()
  await rm(dir, { recursive: true, force: true })
})

function logger(): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  return pino({ level: 'info' }, sink) as unknown as Logger
}

async function startNode(
  metrics: NodeMetrics,
  limits: ConnectionLimitsInit = {}
): Promise<OperatorNode> {
  const node = await OperatorNode.init({
    opts: {
      model: join(dir, 'bundle'),
      shards: [0],
      listen: ['/ip4/127.0.0.1/tcp/0'],
      spin: false,
      limits
    },
    logger: logger(),
    metrics
  })
  cleanup.push(async () => await node.close())
  return node
}

/** A libp2p host whose TCP dials leave from `ip` (a host of its own on loopback). */
async function hostAt(ip: string, stock = false): Promise<Libp2p> {
  const t = stock
    ? { connectionEncrypters: [noise()], streamMuxers: [yamux()] }
    : (({ transports: _, ...rest }) => rest)(transportOptions())
  const h = await createLibp2p({
    addresses: { listen: [] },
    ...t,
    // @libp2p/tcp passes dialOpts on to net.connect
    transports: [tcp({ dialOpts: { localAddress: ip } as object })]
  })
  cleanup.push(async () => await h.stop())
  return h
}

let nextId = 1n
async function expertCall(ch: ExpertChannel): Promise<void> {
  const x = Float32Array.from({ length: bundle.config.hiddenSize }, (_, i) => Math.sin(i))
  const res = await ch.call(
    {
      requestId: nextId++,
      modelId: hexToBytes(bundle.modelId),
      layer: 0,
      expert: 0,
      dtype: DType.FP32,
      rows: 1,
      hidden: bundle.config.hiddenSize
    },
    encodeTensor(x, DType.FP32),
    { timeoutMs: 15_000 }
  )
  assert.equal(res.status, Status.OK, res.message)
}

async function refusals(metrics: NodeMetrics): Promise<Record<string, number>> {
  const m = await metrics.refusals.get()
  return Object.fromEntries(m.values.map((v) => [String(v.labels.reason), v.value]))
}

test('one host with 320 idle libp2p connections and one with 320 silent sockets lock nobody out', async () => {
  const metrics = createNodeMetrics()
  const node = await startNode(metrics)
  const target = multiaddr(node.addrs[0])
  const port = Number(target.toString().split('/')[4])

  // host 127.0.0.2: silent TCP sockets, never a byte of handshake
  const silent: Socket[] = []
  cleanup.push(() => {
    for (const s of silent) s.destroy()
  })
  await Promise.all(
    Array.from(
      { length: IDLE },
      async () =>
        await new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
          s.on('error', () => {})
          s.on('close', () => {
            resolve()
          })
          s.on('connect', () => {
            silent.push(s)
            resolve()
          })
        })
    )
  )

  // host 127.0.0.3: full libp2p connections (noise + yamux done), then idle, each forced new
  // (libp2p joins concurrent dials to one peer, so they go one after another)
  const attacker = await hostAt('127.0.0.3', true)
  for (let i = 0; i < IDLE; i++) await attacker.dial(target, { force: true }).catch(() => {})

  // the legitimate router, from its own address, while all of the above is held
  const t0 = performance.now()
  const router = await hostAt('127.0.0.4')
  const stream = await router.dialProtocol(target, EXPERT_PROTOCOL, {
    signal: AbortSignal.timeout(15_000)
  })
  const ch = new ExpertChannel(stream)
  for (let i = 0; i < 20; i++) await expertCall(ch)
  const ms = performance.now() - t0

  const r = await refusals(metrics)
  const conns = node.libp2p.getConnections()
  const held = conns.filter((c) => c.remoteAddr.toString().includes('/127.0.0.3/')).length
  assert.ok(held <= defaultLimits.maxConnectionsPerPeer, `attacker holds ${held} connections`)
  // every attacking connection beyond the caps was refused and counted: the silent sockets by the
  // per-IP cap, the libp2p ones (each closed before the next) by the per-peer cap
  const ip = r['ip-connections'] ?? 0
  const peer = r['peer-connections'] ?? 0
  assert.ok(ip >= IDLE - defaultLimits.maxConnectionsPerIp, JSON.stringify(r))
  assert.ok(ip + peer >= 2 * IDLE - defaultLimits.maxConnectionsPerIp - held, JSON.stringify(r))
  // logged, rate-limited: a handful of lines for hundreds of refusals
  const lines = logs.filter((l) => l.reason === 'ip-connections')
  assert.ok(lines.length >= 1 && lines.length <= 5, `${lines.length} log lines`)
  // exposed on /metrics
  assert.match(
    await metrics.registry.metrics(),
    /pov_refusals_total\{reason="ip-connections"\} \d+/
  )
  console.log(
    `# legit router: dial + 20 calls in ${ms.toFixed(0)} ms; attacker held ${held} libp2p connections, refusals ${JSON.stringify(r)}`
  )

  // the silent sockets that got in are dropped at the handshake timeout, and counted
  const deadline = Date.now() + defaultLimits.handshakeTimeoutMs + 5000
  while (((await refusals(metrics)).handshake ?? 0) < 1 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 200))
  assert.ok(((await refusals(metrics)).handshake ?? 0) >= 1)
  await expertCall(ch) // and the router is still served
})

test('idle connections are closed after --idle-timeout-ms; allow-listed routers pass every cap', async () => {
  const metrics = createNodeMetrics()
  const node = await startNode(metrics, {
    idleTimeoutMs: 400,
    maxConnectionsPerIp: 1,
    allow: ['127.0.0.6']
  })
  const target = multiaddr(node.addrs[0])
  const idle = await hostAt('127.0.0.5')
  const conn = await idle.dial(target)
  const closed = new Promise<void>((resolve) => {
    conn.addEventListener('close', () => {
      resolve()
    })
  })
  await closed
  assert.ok(((await refusals(metrics)).idle ?? 0) >= 1)
  // 127.0.0.6 is trusted: 3 connections although the per-IP cap is 1, and none closed for idling
  const trusted = await hostAt('127.0.0.6')
  const c = []
  for (let i = 0; i < 3; i++) c.push(await trusted.dial(target, { force: true }))
  await new Promise((resolve) => setTimeout(resolve, 1200))
  assert.ok(c.every((x) => x.status === 'open'))
  const ch = new ExpertChannel(await trusted.dialProtocol(target, EXPERT_PROTOCOL))
  await expertCall(ch)
})
