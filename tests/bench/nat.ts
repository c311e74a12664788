// bench:nat — paid generations across real NATs (tests/sim/nat-lab.ts, issue #23): a public
// relay node, a home behind a cone NAT whose router maps ports (UPnP / NAT-PMP), a home behind a
// cone NAT without mapping, and a home behind a symmetric NAT. Two paying clients on the public
// segment: one that can be dialed (DCUtR lets a node behind NAT connect back to it), one that
// cannot (dial-only, like a client behind its own NAT). Per client and node: the path each paid
// call took (direct / hole-punched / relayed / failed), the time from the client's first
// generation to the node's first answered paid call, calls per path, and whether every
// generation equals the single-process (--local) result. Last line: one JSON object.
//   npm run bench:nat [-- --generations 3 --tokens 8]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { NatLab, type HomeSpec } from '../sim/nat-lab.js'
import { NatNetwork, type Path } from '../sim/nat-network.js'
import { generateAll } from '../../model/generate.js'

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '8' }
  }
})
const GENERATIONS = Number(values.generations)
const TOKENS = Number(values.tokens)
const PROMPT = [1, 2, 3, 4, 5]
const HOMES: HomeSpec[] = [
  { nat: 'cone', upnp: true },
  { nat: 'cone', upnp: false },
  { nat: 'symmetric', upnp: false }
]

const skip = await NatLab.check({ upnp: true })
if (skip != null) {
  console.log(`bench:nat skipped: ${skip}`)
  console.log(JSON.stringify({ skipped: skip }))
  process.exit(0)
}

const dir = await mkdtemp(join(tmpdir(), 'pov-bench-nat-'))
let net: NatNetwork | undefined
process.once('exit', () => net?.closeSync())
for (const s of ['SIGINT', 'SIGTERM'] as const)
  process.once(s, () => {
    net?.closeSync()
    process.exit(130)
  })

interface NodeFigures {
  node: string
  nat: string
  reachability: string
  announced: string[]
  path: Path | 'failed' | 'unused'
  firstPaidCallMs: number | null
  calls: Record<Path, number>
  failedAttempts: number
  firstFailure?: string
}

try {
  const t0 = performance.now()
  net = await NatNetwork.start({ dir, homes: HOMES, log: (l) => console.error(l) })
  const setupS = (performance.now() - t0) / 1000
  const dense = await net.sim.dense()
  const ref = await net.sim.reference(dense, PROMPT, TOKENS)
  const results: Array<{
    client: string
    exact: number
    generations: number
    nodes: NodeFigures[]
  }> = []
  for (const dialable of [true, false]) {
    const label = dialable ? 'dialable client' : 'dial-only client'
    const figures = new Map<string, NodeFigures>()
    for (const n of net.nodes)
      figures.set(n.op.peerId, {
        node: n.name,
        nat: n.home == null ? 'public' : `${n.home.nat}${n.home.upnp ? '+upnp' : ''}`,
        reachability: n.reach?.state ?? 'public', // the relay listens on its public address
        announced: n.announced,
        path: 'unused',
        firstPaidCallMs: null,
        calls: { direct: 0, 'hole-punched': 0, relayed: 0 },
        failedAttempts: 0
      })
    let start = 0
    const paid: { current?: Awaited<ReturnType<NatNetwork['client']>> } = {}
    paid.current = await net.client(dialable, {
      onCall: (c) => {
        const f = figures.get(c.peer)
        if (f == null || paid.current == null) return
        const path = NatNetwork.pathOf(paid.current, c.peer)
        f.calls[path]++
        f.firstPaidCallMs ??= Math.round(performance.now() - start)
      },
      onAttempt: (a) => {
        const f = figures.get(a.peer)
        if (f != null && !a.ok) {
          f.failedAttempts++
          f.firstFailure ??= a.error
        }
      }
    })
    let exact = 0
    start = performance.now()
    for (let g = 0; g < GENERATIONS; g++) {
      const r = await generateAll({
        dense,
        experts: paid.current.router.executor,
        promptIds: PROMPT,
        maxTokens: TOKENS,
        eosTokenId: null
      }).catch((err: Error) => {
        console.error(`${label}: generation ${g} failed: ${err.message}`)
        return null
      })
      if (r != null && !r.degraded && r.tokens.join() === ref.tokens.join()) exact++
    }
    for (const f of figures.values()) {
      const used = (Object.entries(f.calls) as Array<[Path, number]>).filter(([, n]) => n > 0)
      // the path that carried the node's last calls: where it settled
      f.path =
        used.length === 0
          ? f.failedAttempts > 0
            ? 'failed'
            : 'unused'
          : used.sort((a, b) => b[1] - a[1])[0][0]
      if (f.calls.direct > 0 && f.calls['hole-punched'] === 0 && f.calls.relayed === 0)
        f.path = 'direct'
      else if (f.calls['hole-punched'] > 0) f.path = 'hole-punched'
    }
    await paid.current.close()
    results.push({ client: label, exact, generations: GENERATIONS, nodes: [...figures.values()] })
  }
  await dense.close()
  if (process.env.POV_BENCH_NODE_LOGS != null) console.error(net.logs())

  const load = loadavg().map((x) => Math.round(x * 100) / 100)
  console.log(
    `\nbench:nat — ${GENERATIONS} generations × ${TOKENS} tokens per client; setup ${setupS.toFixed(1)} s; load average ${load.join(' ')}`
  )
  for (const r of results) {
    console.log(`\n${r.client}: ${r.exact}/${r.generations} generations identical to --local`)
    console.log(
      'node    NAT             reachability  path           first paid call  direct  hole-punched  relayed  failed attempts'
    )
    for (const f of r.nodes)
      console.log(
        [
          f.node.padEnd(7),
          f.nat.padEnd(15),
          f.reachability.padEnd(13),
          f.path.padEnd(14),
          (f.firstPaidCallMs == null ? '—' : `${f.firstPaidCallMs} ms`).padStart(15),
          String(f.calls.direct).padStart(7),
          String(f.calls['hole-punched']).padStart(13),
          String(f.calls.relayed).padStart(8),
          String(f.failedAttempts).padStart(16) +
            (f.firstFailure != null ? `  (${f.firstFailure})` : '')
        ].join(' ')
      )
  }
  console.log(
    JSON.stringify({
      bench: 'nat',
      generations: GENERATIONS,
      tokens: TOKENS,
      setupS,
      loadavg: load,
      clients: results
    })
  )
} finally {
  await net?.close()
  await rm(dir, { recursive: true, force: true })
}
