// Summaries of V8 CPU profiles (`node --cpu-prof`), for benchmarks that profile their processes
// (bench:gateway --cpu-prof): where a process's CPU went, by the concerns of an expert call
// (signatures, vouchers, protobuf, noise, yamux, …) counted inclusively — a sample counts for a
// concern when any frame of its stack belongs to it — and the functions with the most self time.
//   tsx tests/bench/cpu-profile.ts FILE.cpuprofile… [--from US] [--to US]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  parent?: number
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** A concern of an expert call, recognised by where a frame's code lives. */
interface Concern {
  name: string
  test: (f: CallFrame) => boolean
}

const inFile =
  (...parts: string[]) =>
  (f: CallFrame): boolean =>
    parts.some((p) => f.url.includes(p))
const fn =
  (file: string, ...names: string[]) =>
  (f: CallFrame): boolean =>
    f.url.includes(file) && names.includes(f.functionName)

/** Concerns, each counted inclusively (they overlap: noise runs inside yamux's writes). */
export const CONCERNS: Concern[] = [
  { name: 'response signature (sign/verify)', test: inFile('/protocol/signature.ts') },
  {
    name: 'voucher (EIP-712, ethers)',
    test: (f) =>
      inFile(
        '/protocol/voucher.ts',
        '/protocol/payment.ts',
        '/node/payments/',
        '/router/payer.ts'
      )(f) || inFile('/node_modules/ethers/', '/node_modules/@noble/')(f)
  },
  {
    name: 'protobuf encode/decode',
    test: inFile('/protocol/expert.ts', '/protocol/strict.ts', '/protons-runtime/')
  },
  { name: 'tensor fp16/fp32', test: inFile('/protocol/fp16.ts', '/model/fp16') },
  { name: 'framing', test: inFile('/protocol/framing.ts', '/protocol/stream.ts') },
  { name: 'noise', test: inFile('/@chainsafe/libp2p-noise/', '/@chainsafe/as-chacha20poly1305') },
  { name: 'yamux', test: inFile('/@chainsafe/libp2p-yamux/') },
  {
    name: 'libp2p other (tcp, streams, connection manager)',
    test: (f) =>
      inFile('/node_modules/libp2p/', '/node_modules/@libp2p/')(f) && !inFile('/@libp2p/crypto/')(f)
  },
  { name: 'uint8arraylist', test: inFile('/uint8arraylist/') },
  { name: 'logging (pino)', test: inFile('/node_modules/pino', '/node_modules/thread-stream/') },
  { name: 'metrics (prom-client)', test: inFile('/node_modules/prom-client/') },
  { name: 'spot checks', test: inFile('/router/spot-check.ts', '/router/reputation.ts') },
  { name: 'latency / routes / hedging', test: inFile('/router/latency.ts', '/router/routes.ts') },
  { name: 'remote executor', test: inFile('/router/remote-executor.ts') },
  { name: 'node expert service', test: inFile('/node/expert-service.ts', '/node/batcher.ts') },
  { name: 'busy poll', test: inFile('/protocol/busy-poll.ts') },
  { name: 'onnxruntime', test: inFile('/onnxruntime-node/', '/onnxruntime-common/') },
  { name: 'draft model', test: inFile('/model/draft/', '/model/draft.ts') },
  {
    name: 'generation loop (model/)',
    test: inFile('/model/generate', '/model/speculative', '/model/sampling', '/model/dense')
  },
  { name: 'gateway (fastify, SSE)', test: inFile('/router/gateway/', '/node_modules/fastify') },
  { name: 'tsx / esbuild (loading)', test: inFile('/node_modules/tsx/', '/node_modules/esbuild') },
  { name: 'garbage collector', test: (f) => f.functionName === '(garbage collector)' },
  { name: 'node:crypto', test: fn('node:internal/crypto', 'sign', 'verify', 'digest', 'update') }
]

export interface ProfileSummary {
  /** Sampled ms on the CPU (idle excluded). */
  busyMs: number
  /** Wall ms covered by the samples counted. */
  wallMs: number
  concerns: Array<{ name: string; ms: number }>
  /** Functions by self time. */
  top: Array<{ fn: string; ms: number }>
}

const repoRel = (url: string): string => {
  const i = url.indexOf('/node_modules/')
  if (i >= 0) return url.slice(i + 14)
  const j = url.lastIndexOf('/work/')
  return j >= 0 ? url.slice(url.indexOf('/', j + 6) + 1) : url
}

/** Summarises one profile; `from`/`to` (µs, the profile's clock) keep only samples in between. */
export function summarize(p: Profile, from = -Infinity, to = Infinity, topN = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>()
  for (const n of p.nodes) byId.set(n.id, n)
  for (const n of p.nodes) for (const c of n.children ?? []) byId.get(c)!.parent = n.id
  const concernOf = new Map<number, Set<number>>()
  const setOf = (id: number): Set<number> => {
    let s = concernOf.get(id)
    if (s != null) return s
    const n = byId.get(id)!
    s = new Set(n.parent != null ? setOf(n.parent) : [])
    CONCERNS.forEach((c, i) => {
      if (c.test(n.callFrame)) s.add(i)
    })
    concernOf.set(id, s)
    return s
  }
  const concernUs = new Float64Array(CONCERNS.length)
  const self = new Map<string, number>()
  let t = p.startTime
  let busy = 0
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0
    t += p.timeDeltas[i]
    if (t < from || t > to) continue
    first = Math.min(first, t)
    last = Math.max(last, t)
    const n = byId.get(p.samples[i])!
    if (n.callFrame.functionName === '(idle)') continue
    busy += dt
    for (const c of setOf(n.id)) concernUs[c] += dt
    const f = n.callFrame
    const key = `${f.functionName || '(anonymous)'} ${repoRel(f.url)}:${f.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + dt)
  }
  return {
    busyMs: busy / 1000,
    wallMs: (last - first) / 1000,
    concerns: CONCERNS.map((c, i) => ({ name: c.name, ms: concernUs[i] / 1000 }))
      .filter((c) => c.ms > 0)
      .sort((a, b) => b.ms - a.ms),
    top: [...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, us]) => ({ fn: k, ms: us / 1000 }))
  }
}

export function readProfile(file: string): Profile {
  return JSON.parse(readFileSync(file, 'utf8')) as Profile
}

/** A readable report of `s`; `calls`, when known, adds µs per expert call. */
export function formatSummary(title: string, s: ProfileSummary, calls?: number): string {
  const per = (ms: number): string =>
    calls != null && calls > 0 ? ` ${((ms * 1000) / calls).toFixed(0).padStart(6)} µs/call` : ''
  const lines = [
    `${title}: ${s.busyMs.toFixed(0)} ms on CPU over ${s.wallMs.toFixed(0)} ms${per(s.busyMs)}`
  ]
  for (const c of s.concerns)
    lines.push(
      `  ${c.name.padEnd(48)} ${c.ms.toFixed(0).padStart(7)} ms ${((100 * c.ms) / s.busyMs).toFixed(1).padStart(5)} %${per(c.ms)}`
    )
  lines.push('  top self time:')
  for (const f of s.top)
    lines.push(
      `    ${f.ms.toFixed(0).padStart(7)} ms ${((100 * f.ms) / s.busyMs).toFixed(1).padStart(5)} %  ${f.fn}`
    )
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string' } }
  })
  for (const file of positionals) {
    const s = summarize(
      readProfile(file),
      values.from != null ? Number(values.from) : -Infinity,
      values.to != null ? Number(values.to) : Infinity,
      values.top != null ? Number(values.top) : 25
    )
    console.log(formatSummary(file, s))
  }
}
