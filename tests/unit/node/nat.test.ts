// A node with no listen address of its own, reachable only through a Circuit Relay v2 relay
// (node/nat.ts), on 127.0.0.1: the reservation, the relayed address, expert calls through the
// relay, and what the relay's limits refuse. Hole punching needs public addresses: the real-NAT
// network in tests/e2e/nat.test.ts covers it.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { relayedTransportOptions, isDirect } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import { reachability, reachabilityServices, type RelayLimits } from '../../../node/nat.js'
import { Router } from '../../../router/router.js'
import { fakeModel, MODEL_ID, HIDDEN, rowsOf } from './fixtures.js'

const hosts: Libp2p[] = []
const routers: Router[] = []
after(async () => {
  for (const r of routers) await r.close().catch(() => {})
  await Promise.all(hosts.map(async (h) => await h.stop()))
})

async function startRelay(limits: RelayLimits = {}): Promise<Libp2p> {
  const nat = reachabilityServices({ relay: limits, upnp: false })
  const h = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...relayedTransportOptions(),
    services: { ...nat.services, identify: identify() }
  })
  hosts.push(h)
  return h
}

/** A node that listens nowhere itself: only at <relay>/p2p-circuit. */
async function startNatedNode(relay: Libp2p): Promise<Libp2p<{ expert: ExpertService }>> {
  const nat = reachabilityServices({ relays: [relay.getMultiaddrs()[0].toString()], upnp: false })
  const h = (await createLibp2p({
    addresses: { listen: nat.listen },
    ...relayedTransportOptions(),
    services: {
      ...nat.services,
      identify: identify(),
      expert: expertService({ models: [fakeModel()] })
    }
  })) as unknown as Libp2p<{ expert: ExpertService }>
  hosts.push(h)
  const t0 = Date.now()
  while (reachability(h).state !== 'relayed') {
    if (Date.now() - t0 > 10_000)
      throw new Error(`no relay reservation in 10 s: ${JSON.stringify(reachability(h))}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return h
}

test('a node with no listen address serves expert calls through the relay it reserved a slot on', async () => {
  const relay = await startRelay()
  const node = await startNatedNode(relay)
  const r = reachability(node)
  assert.equal(r.state, 'relayed')
  assert.equal(r.direct.length, 0)
  const relayed = r.relayed[0]
  assert.match(
    relayed,
    new RegExp(`/p2p/${relay.peerId.toString()}/p2p-circuit/p2p/${node.peerId.toString()}$`)
  )

  const router = await Router.init({
    opts: { peers: [relayed], modelId: MODEL_ID, hidden: HIDDEN }
  })
  routers.push(router)
  assert.deepEqual([...router.routes.table.peers.keys()], [node.peerId.toString()])
  const x = rowsOf(2)
  for (let i = 0; i < 5; i++)
    assert.deepEqual(
      await router.executor.runExpert(1, 1, x, 2),
      x.map((v) => v * 12)
    )
  const conns = router.libp2p.getConnections(node.peerId)
  assert.ok(conns.length > 0)
  // 127.0.0.1 is not public: DCUtR has nothing to upgrade to, the calls stay on the relay
  assert.ok(
    conns.every((c) => !isDirect(c)),
    'the calls ran over the relayed (limited) connection'
  )
  assert.equal(router.client.hasDirect(node.peerId.toString()), false)
})

test("past the relay's data limit the relayed connection is closed and the call fails with a reason; a new circuit serves again", async () => {
  // 64 KiB per direction: a 2-row call is ~100 bytes, a 2048-row one (64 KiB of fp32) is over it
  const relay = await startRelay({ dataLimitBytes: 64 * 1024 })
  const node = await startNatedNode(relay)
  const router = await Router.init({
    opts: {
      peers: [reachability(node).relayed[0]],
      modelId: MODEL_ID,
      hidden: HIDDEN,
      calls: { maxAttempts: 1 }
    }
  })
  routers.push(router)
  const small = rowsOf(2)
  assert.deepEqual(
    await router.executor.runExpert(1, 1, small, 2),
    small.map((v) => v * 12)
  )
  await assert.rejects(router.executor.runExpert(1, 1, rowsOf(2048), 2048), (err: Error) => {
    // the relay ended the circuit: the call fails (and would be retried on another replica)
    assert.match(err.message, /stream closed|reset|closed/)
    return true
  })
  // the next call dials through the relay again: a fresh circuit with a fresh limit
  const t0 = Date.now()
  for (;;) {
    try {
      assert.deepEqual(
        await router.executor.runExpert(1, 1, small, 2),
        small.map((v) => v * 12)
      )
      break
    } catch (err) {
      // the node was benched after the failure; the route manager retries it with backoff
      if (Date.now() - t0 > 15_000) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
})
