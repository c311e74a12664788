// Router against real in-process nodes on 127.0.0.1 (libp2p TCP/noise/yamux, fake runtimes):
// stream reuse, signatures, failover to a replica, benching, ExpertUnavailableError.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { transportOptions } from '../../../protocol/transport.js'
import {
  expertService,
  type ExpertService,
  type ExpertServiceInit
} from '../../../node/expert-service.js'
import { Router } from '../../../router/router.js'
import { fakeModel, harness, MODEL_ID, HIDDEN, rowsOf, type Run } from '../node/fixtures.js'
import type { ExpertChannel } from '../../../router/channel.js'
import type { WireClient } from '../../../router/client.js'
import { RouteManager, expertKey } from '../../../router/routes.js'
import { RemoteExpertExecutor } from '../../../router/remote-executor.js'

type Host = Libp2p<{ expert: ExpertService }>
const hosts: Host[] = []
after(async () => {
  await Promise.all(
    hosts.map(async (h) => {
      await h.stop()
    })
  )
})

async function startNode(init: Partial<ExpertServiceInit> = {}, runs?: Run[]): Promise<Host> {
  const h = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: { expert: expertService({ models: [fakeModel({ runs })], ...init }) }
  })) as unknown as Host
  hosts.push(h)
  return h
}

const addr = (h: Host): string => h.getMultiaddrs()[0].toString()

test('calls reuse one stream per peer, verify signatures, and fail over when a node dies', async () => {
  const runsA: Run[] = []
  const runsB: Run[] = []
  const a = await startNode({}, runsA)
  const b = await startNode({}, runsB)
  const router = await Router.init({
    opts: {
      peers: [addr(a), addr(b)],
      modelId: MODEL_ID,
      hidden: HIDDEN,
      routes: { benchBaseMs: 60_000 }
    }
  })
  try {
    assert.equal(router.routes.table.peers.size, 2)
    const x = rowsOf(2)
    for (let i = 0; i < 10; i++) {
      const y = await router.executor.runExpert(1, 1, x, 2)
      assert.deepEqual(
        y,
        x.map((v) => v * 12)
      )
    }
    const conns = router.libp2p.getConnections()
    const expertStreams = conns
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === '/pov/expert/1.0.0')
    // latency-aware choice measures both replicas; each keeps one long-lived stream
    const used = (runsA.length > 0 ? 1 : 0) + (runsB.length > 0 ? 1 : 0)
    assert.equal(expertStreams.length, used, 'one long-lived stream per replica used')
    const peersWithStream = conns
      .filter((c) => c.streams.some((s) => s.protocol === '/pov/expert/1.0.0'))
      .map((c) => c.remotePeer.toString())
    assert.equal(new Set(peersWithStream).size, used)
    // stop the replica the router would call next
    const est = router.executor.latency.forChoice(router.routes.replicas(1, 1), 2)
    const next = router.routes.select(1, 1, new Set(), est.expected, est.perCall)
    const first = next === a.peerId.toString() ? a : b
    const other = first === a ? b : a
    await first.stop()
    const y = await router.executor.runExpert(1, 1, x, 2)
    assert.deepEqual(
      y,
      x.map((v) => v * 12)
    )
    assert.ok(router.routes.benched.has(first.peerId.toString()), 'the dead node is benched')
    await other.stop()
    await assert.rejects(
      router.executor.runExpert(1, 1, x, 2),
      (err: Error) => err.name === 'ExpertUnavailableError'
    )
  } finally {
    await router.close()
  }
})

test('sync verification: a node whose responses do not verify is skipped for a replica that signs', async () => {
  const bad = await startNode({ sign: false })
  const good = await startNode()
  const router = await Router.init({
    opts: {
      peers: [addr(bad), addr(good)],
      modelId: MODEL_ID,
      hidden: HIDDEN,
      verifySignatures: 'sync'
    }
  })
  try {
    const x = rowsOf(1)
    for (const [l, e] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1]
    ]) {
      assert.deepEqual(
        await router.executor.runExpert(l, e, x, 1),
        x.map((v) => v * (1 + 10 * l + e))
      )
    }
    assert.ok(
      router.routes.benched.has(bad.peerId.toString()),
      'the node with bad signatures is benched'
    )
    assert.equal(router.routes.benched.has(good.peerId.toString()), false)
  } finally {
    await router.close()
  }
})

test('fp16 on the wire through the executor', async () => {
  const n = await startNode()
  const router = await Router.init({
    opts: { peers: [addr(n)], modelId: MODEL_ID, hidden: HIDDEN, wireDType: 'fp16' }
  })
  try {
    const x = rowsOf(3)
    assert.deepEqual(
      await router.executor.runExpert(0, 1, x, 3),
      x.map((v) => v * 2)
    )
  } finally {
    await router.close()
  }
})

test('unknown model on every peer: init fails with a clear message', async () => {
  const n = await startNode()
  await assert.rejects(
    Router.init({ opts: { peers: [addr(n)], modelId: '0x' + '11'.repeat(32), hidden: HIDDEN } }),
    /serves another model/
  )
})

test('default verification: an unsigned wrong answer is never used; the node is benched longer at every bad answer', async () => {
  // a node that answers wrongly (× 3) and signs nothing, beside an honest replica
  const m = fakeModel()
  const run = m.runtime.runExpert
  const bad = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: {
      expert: expertService({
        models: [
          {
            ...m,
            runtime: {
              ...m.runtime,
              runExpert: async (l, e, x, rows) => (await run(l, e, x, rows)).map((v) => v * 3)
            }
          }
        ],
        sign: false
      })
    }
  })) as unknown as Host
  hosts.push(bad)
  const honest = await startNode()
  const reported: string[] = []
  const router = await Router.init({
    opts: {
      peers: [addr(bad), addr(honest)],
      modelId: MODEL_ID,
      hidden: HIDDEN,
      routes: { benchBaseMs: 2 },
      calls: { hedge: false },
      onBadSignature: (e) => {
        reported.push(e.peer)
      }
    }
  })
  const badId = bad.peerId.toString()
  const benches: number[] = []
  try {
    const x = rowsOf(2)
    for (let i = 0; i < 40; i++) {
      // every answer used is the honest one: the unsigned one was checked before use
      assert.deepEqual(
        await router.executor.runExpert(1, 1, x, 2),
        x.map((v) => v * 12)
      )
      const b = router.routes.benched.get(badId)
      if (b?.strikes != null && b.strikes > benches.length) benches.push(b.until - Date.now())
      await new Promise((resolve) => setTimeout(resolve, 4))
    }
    assert.ok(
      reported.length >= 2,
      `the bad node was asked again after its bench: ${reported.length}`
    )
    assert.ok(reported.every((p) => p === badId))
    const b = router.routes.benched.get(badId)
    assert.equal(b?.strikes, reported.length, 'one strike per bad answer, none forgiven')
    // 2 ms, then 8 ms, 32 ms...: the last bench is the longest yet
    assert.ok(benches.length >= 2 && benches.at(-1)! > benches[0], benches.join(' < '))
  } finally {
    await router.close()
  }
})

test('a response for another expert than asked (a misread request) is refused and retried on a replica', async () => {
  const misreading = await harness()
  const honest = await harness()
  const channels = new Map<string, ExpertChannel>()
  for (const h of [misreading, honest]) channels.set(h.peer.toString(), (await h.connect()).client)
  // the first node serves expert 0 whatever it was asked for, and says so in its echo
  const lie = misreading.peer.toString()
  const client = {
    channel: async (peer: string) => {
      const ch = channels.get(peer) as ExpertChannel
      if (peer !== lie) return ch
      return {
        call: async (req: Parameters<ExpertChannel['call']>[0], t: Uint8Array) =>
          await ch.call({ ...req, expert: 0 }, t)
      }
    },
    drop: () => {}
  } as unknown as WireClient
  const all = new Set([expertKey(1, 0), expertKey(1, 1)])
  const routes = new RouteManager(
    [misreading, honest].map((h) => ({
      peerId: h.peer.toString(),
      addrs: [],
      shards: [0, 1],
      experts: all
    })),
    { benchBaseMs: 60_000 }
  )
  const failures: string[] = []
  const ex = new RemoteExpertExecutor(client, routes, {
    modelId: MODEL_ID,
    hidden: HIDDEN,
    verifySignatures: 'off', // the echo alone catches it, before any signature check
    onAttempt: (a) => {
      if (!a.ok) failures.push(`${a.peer === lie ? 'misreading' : 'honest'}: ${a.error ?? ''}`)
    }
  })
  const x = rowsOf(1)
  for (let i = 0; i < 3; i++)
    assert.deepEqual(
      await ex.runExpert(1, 1, x, 1),
      x.map((v) => v * 12)
    )
  assert.equal(failures.length, 1, failures.join('; '))
  assert.match(failures[0], /misreading: response is for expert 0 of layer 1 .* not the expert 1/)
  assert.ok(routes.benched.has(lie))
})

test('a paid call is settled only after its answer checks out: a bad signature is not paid for, even with verification off', async () => {
  const unsigned = await harness({ sign: false })
  const signed = await harness()
  for (const verifySignatures of ['off', 'sync'] as const) {
    for (const h of [unsigned, signed]) {
      const channel = (await h.connect()).client
      const peer = h.peer.toString()
      const client = { channel: async () => channel, drop: () => {} } as unknown as WireClient
      const routes = new RouteManager([
        { peerId: peer, addrs: [], shards: [1], experts: new Set([expertKey(1, 1)]) }
      ])
      const settled: Array<{ ok: boolean; message: string }> = []
      const ex = new RemoteExpertExecutor(client, routes, {
        modelId: MODEL_ID,
        hidden: HIDDEN,
        verifySignatures,
        attachPayment: async () => ({
          payer: new Uint8Array(20),
          payee: new Uint8Array(20),
          cumulativeAmount: new Uint8Array([1]),
          signature: new Uint8Array(65),
          extra: new Uint8Array(0)
        }),
        settlePayment: (c) => {
          settled.push({ ok: c.ok, message: c.message })
        }
      })
      const x = rowsOf(1)
      const run = ex.runExpert(1, 1, x, 1)
      if (h === unsigned) await assert.rejects(run, /signature|replicas/)
      else
        assert.deepEqual(
          await run,
          x.map((v) => v * 12)
        )
      for (let i = 0; i < 100 && settled.length === 0; i++)
        await new Promise((resolve) => setTimeout(resolve, 5))
      const want = h === signed
      assert.deepEqual(
        settled[0],
        {
          ok: want,
          message: want ? '' : 'response signature does not verify against the node key'
        },
        `${verifySignatures}, ${want ? 'signed' : 'unsigned'}`
      )
    }
  }
})
