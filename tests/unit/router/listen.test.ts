// A client that listens (`pov infer --listen`, `pov serve --listen`): the flag is checked before
// any network call, and the router built with it accepts connections (a node behind NAT dials it
// back through DCUtR that way; docs/network.md#hole-punching).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Connection, Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import { Router } from '../../../router/router.js'
import { parseListen } from '../../../cli/options.js'
import { REPO_ROOT } from '../../../chain/artifacts.js'
import { fakeModel, MODEL_ID, HIDDEN, rowsOf } from '../node/fixtures.js'

type Host = Libp2p<{ expert: ExpertService }>

test('--listen: TCP multiaddrs of an IP pass; anything else is refused with the flag named', () => {
  assert.equal(parseListen(undefined), undefined)
  assert.deepEqual(parseListen(['/ip4/0.0.0.0/tcp/4102', '/ip6/::/tcp/0']), [
    '/ip4/0.0.0.0/tcp/4102',
    '/ip6/::/tcp/0'
  ])
  assert.throws(
    () => parseListen(['0.0.0.0:4102']),
    /invalid --listen "0\.0\.0\.0:4102": .*\(e\.g\. \/ip4\/0\.0\.0\.0\/tcp\/4102\)/
  )
  assert.throws(
    () => parseListen(['/ip4/0.0.0.0/udp/4102/quic-v1']),
    /invalid --listen ".*udp.*": expected an IP address and a TCP port, nothing more/
  )
  assert.throws(
    () =>
      parseListen([
        '/ip4/0.0.0.0/tcp/4102/p2p/12D3KooWCRscMgHgEo3ojm8ovzheydpvTEqsDtq7Vby38cMHrYjt'
      ]),
    /expected an IP address and a TCP port, nothing more/
  )
  assert.throws(() => parseListen(['/dns4/example.org/tcp/4102']), /expected an IP address/)
})

/** A loopback port nothing listens on: a command that reached the chain would say so. */
const deadPort = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port
    s.close(() => {
      resolve(p)
    })
  })
})

test('pov infer and pov serve refuse a bad --listen before any chain call', () => {
  for (const args of [
    ['infer', 'hi', '--model', '0x' + '11'.repeat(32), '--listen', '/ip4/1.2.3.4/udp/9'],
    ['serve', '--listen', 'tcp://0.0.0.0:4102']
  ]) {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'cli', 'pov.mjs'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, POV_RPC: `http://127.0.0.1:${deadPort}` }
    })
    assert.notEqual(r.status, 0, args[0])
    assert.match(r.stderr, /invalid --listen "/, `${args[0]}: ${r.stderr}`)
    assert.doesNotMatch(r.stderr, /cannot reach the chain|ECONNREFUSED/, args[0])
  }
})

test('a router given listen addresses accepts connections: a node can dial it back', async () => {
  const node = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: { expert: expertService({ models: [fakeModel()] }) }
  })) as unknown as Host
  // stopped in `finally`: a root after() hook would wait for an event loop the hosts keep busy
  const stops: Array<() => Promise<void>> = [async () => await node.stop()]
  try {
    const router = await Router.init({
      opts: {
        peers: [node.getMultiaddrs()[0].toString()],
        modelId: MODEL_ID,
        hidden: HIDDEN,
        listen: parseListen(['/ip4/127.0.0.1/tcp/0'])
      }
    })
    stops.unshift(async () => await router.close())
    const addrs = router.libp2p.getMultiaddrs()
    assert.ok(addrs.length > 0, 'the router listens')
    const port = Number(addrs[0].getComponents().find((c) => c.name === 'tcp')?.value)
    assert.ok(port > 0, addrs[0].toString())
    // the node opens a connection to the router's address (as DCUtR's dial-back does) …
    await router.libp2p.hangUp(node.peerId)
    await node.hangUp(router.libp2p.peerId)
    const accepted = new Promise<Connection>((resolve) => {
      router.libp2p.addEventListener('connection:open', (e) => {
        if (e.detail.remotePeer.equals(node.peerId)) resolve(e.detail)
      })
    })
    const conn = await node.dial(
      multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${router.libp2p.peerId}`)
    )
    assert.equal(conn.direction, 'outbound')
    assert.equal(conn.remotePeer.toString(), router.libp2p.peerId.toString())
    assert.equal((await accepted).direction, 'inbound', 'the router accepted the node’s connection')
    // … and expert calls run on it
    const x = rowsOf(1)
    assert.deepEqual(
      await router.executor.runExpert(0, 1, x, 1),
      x.map((v) => v * 2)
    )

    // a dial-only router (the default) has no address to dial back
    const dialOnly = await Router.init({
      opts: { peers: [node.getMultiaddrs()[0].toString()], modelId: MODEL_ID, hidden: HIDDEN }
    })
    stops.unshift(async () => await dialOnly.close())
    assert.deepEqual(dialOnly.libp2p.getMultiaddrs(), [])
  } finally {
    for (const stop of stops) await stop()
  }
})
