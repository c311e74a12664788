// Home operators behind real NATs (issue #23): network namespaces made here, routers that
// masquerade with nftables, a public relay node. A node whose router maps ports (UPnP, miniupnpd)
// is announced and called directly; a node behind a cone NAT and one behind a symmetric NAT are
// reached through the relay, and a client that can be dialed gets a direct connection from them
// (DCUtR); a dial-only client stays on the relay. Every generation equals the single-process
// run. Needs root, iproute2, nftables and miniupnpd (.ci/run installs them): skipped with the
// reason printed where the machine cannot make namespaces. Figures: `npm run bench:nat`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NatLab } from '../sim/nat-lab.js'
import { NatNetwork, type Path } from '../sim/nat-network.js'
import { generateAll } from '../../model/generate.js'
import type { DenseRuntime } from '../../model/dense/index.js'

const PROMPT = [1, 2, 3, 4, 5]
const TOKENS = 5

const skip = await NatLab.check({ upnp: true })
if (skip != null) console.log(`# nat e2e skipped: ${skip}`)

let dir: string
let net: NatNetwork | undefined
let dense: DenseRuntime | undefined
let reference: number[]

before(async () => {
  if (skip != null) return
  dir = await mkdtemp(join(tmpdir(), 'pov-e2e-nat-'))
  net = await NatNetwork.start({
    dir,
    homes: [
      { nat: 'cone', upnp: true },
      { nat: 'cone', upnp: false },
      { nat: 'symmetric', upnp: false }
    ]
  })
  dense = await net.sim.dense()
  const ref = await net.sim.reference(dense, PROMPT, TOKENS)
  assert.ok(ref.minMargin > 1e-3, `reference margin ${ref.minMargin}`)
  reference = ref.tokens
})

after(async () => {
  await dense?.close()
  await net?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

/** Two generations by a new paying client; the paths its answered calls took, per node name. */
async function generate(dialable: boolean): Promise<Map<string, Record<Path, number>>> {
  const n = net!
  const paths = new Map<string, Record<Path, number>>()
  const name = new Map(n.nodes.map((x) => [x.op.peerId, x.name]))
  const failures: string[] = []
  const ref: { paid?: Awaited<ReturnType<NatNetwork['client']>> } = {}
  ref.paid = await n.client(dialable, {
    onCall: (c) => {
      const k = name.get(c.peer) ?? c.peer
      const p = paths.get(k) ?? { direct: 0, 'hole-punched': 0, relayed: 0 }
      p[NatNetwork.pathOf(ref.paid!, c.peer)]++
      paths.set(k, p)
    },
    onAttempt: (a) => {
      if (!a.ok) failures.push(`${name.get(a.peer)}: ${a.error}`)
    }
  })
  try {
    for (let g = 0; g < 2; g++) {
      const r = await generateAll({
        dense: dense!,
        experts: ref.paid.router.executor,
        promptIds: PROMPT,
        maxTokens: TOKENS,
        eosTokenId: null
      })
      const why = failures.length > 0 ? `; failed attempts: ${failures.join(' | ')}` : ''
      assert.equal(r.degraded, false, `degraded${why}`)
      assert.deepEqual(r.tokens, reference, `tokens differ from --local${why}`)
    }
  } finally {
    await ref.paid.close()
  }
  return paths
}

test(
  'NAT: the UPnP-mapped node is reached directly; cone and symmetric NAT nodes through the relay, hole-punched (DCUtR) to a dialable client; tokens equal --local',
  {
    skip: skip ?? false
  },
  async () => {
    try {
      const n = net!
      const home = (i: number) => n.nodes.find((x) => x.name === `home${i}`)!
      assert.equal(home(0).reach?.state, 'mapped', 'the router mapped the port (UPnP/NAT-PMP)')
      assert.ok(home(0).announced.some((a) => a.startsWith(`/ip4/${home(0).home!.wanIp}/tcp/`)))
      for (const i of [1, 2]) {
        assert.equal(home(i).reach?.state, 'relayed', `home${i}: reachable only through the relay`)
        assert.ok(home(i).announced.every((a) => a.includes('/p2p-circuit')))
      }

      const dialable = await generate(true)
      assert.ok(
        (dialable.get('home0')?.direct ?? 0) > 0,
        `home0 direct: ${JSON.stringify([...dialable])}`
      )
      for (const i of [1, 2])
        assert.ok(
          (dialable.get(`home${i}`)?.['hole-punched'] ?? 0) > 0,
          `home${i}: calls moved to the connection DCUtR made: ${JSON.stringify([...dialable])}`
        )

      const dialOnly = await generate(false)
      assert.ok((dialOnly.get('home0')?.direct ?? 0) > 0)
      for (const i of [1, 2]) {
        const p = dialOnly.get(`home${i}`)
        assert.ok(
          (p?.relayed ?? 0) > 0,
          `home${i}: served through the relay: ${JSON.stringify([...dialOnly])}`
        )
        assert.equal(p?.['hole-punched'] ?? 0, 0, 'a dial-only client cannot be dialed back')
      }
    } catch (err) {
      console.log(net?.logs()) // the nodes' warnings say why
      throw err
    }
  }
)
