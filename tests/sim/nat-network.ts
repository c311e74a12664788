// A paid pov network across real NATs (tests/sim/nat-lab.ts), driven through the real `pov` CLI:
// the chain and the clients on the public segment (the root namespace), a public operator node
// that relays (`pov node start --relay`) in its own namespace, and one operator node per home,
// each behind its own router, started with `--relay-via <relay>`. A home node is registered at
// its relayed address; when the node reports a direct address (a UPnP mapping confirmed), it is
// announced too (`pov node update --announce`), as docs/network.md tells operators to do.
// Used by tests/e2e/nat.test.ts and tests/bench/nat.ts.
import { createServer } from 'node:net'
import { parseEther } from 'ethers'
import { NatLab, type Home, type HomeSpec } from './nat-lab.js'
import { SimNetwork } from './network.js'
import type { OperatorHandle } from '../../deploy/localnet.js'
import type { Reachability } from '../../node/nat.js'
import type { PaidRouter } from '../../router/paid.js'
import type { RouterOptions } from '../../router/router.js'
import { RELAY_RESERVATION_TIMEOUT_MS } from '../../protocol/transport.js'

export type Path = 'direct' | 'hole-punched' | 'relayed'

export interface NatNode {
  name: string
  home?: Home
  op: OperatorHandle
  shards: number[]
  /** The node's latest reachability event. */
  reach?: Reachability
  /** What the registry announces for it. */
  announced: string[]
}

export class NatNetwork {
  readonly nodes: NatNode[] = []
  relayAddr = ''

  private constructor(
    readonly lab: NatLab,
    readonly sim: SimNetwork
  ) {}

  /**
   * Builds the lab and the network: one shard per node, shard 0 on the relay, shard i + 1 on
   * home i (so every node is called in every generation that routes to its expert).
   */
  static async start(o: {
    dir: string
    homes: HomeSpec[]
    /** How long a home node may take to report a direct address. @default 20 s */
    mappingWaitMs?: number
    log?: (line: string) => void
  }): Promise<NatNetwork> {
    const lab = await NatLab.create(o.homes)
    let sim: SimNetwork | undefined
    try {
      sim = await SimNetwork.start({
        dir: o.dir,
        nodes: 0,
        shardsPerNode: 1,
        model: { seed: 7, layers: 2, experts: o.homes.length + 1 },
        seed: 1,
        chainHost: lab.clientIp,
        log: o.log
      })
      const net = new NatNetwork(lab, sim)
      await net.startRelay()
      for (const home of lab.homes) await net.startHome(home, o.mappingWaitMs ?? 20_000)
      return net
    } catch (err) {
      await sim?.close()
      await lab.close()
      throw err
    }
  }

  private get nodeArgs(): string[] {
    return ['--threads', '1', '--no-spin']
  }

  private async register(
    name: string,
    shards: number[],
    announce: string[]
  ): Promise<OperatorHandle> {
    return await this.sim.net.addOperator(name, {
      modelId: this.sim.bundle.modelId,
      shards,
      stake: '1000',
      price: '0.0001',
      fundPov: parseEther('1500'),
      announce
    })
  }

  private async startRelay(): Promise<void> {
    const listen = `/ip4/${this.lab.relayIp}/tcp/4101`
    const op = await this.register('relay', [0], [listen])
    await this.sim.net.startNode(op, this.sim.bundle.dir, {
      wrap: this.lab.exec(this.lab.relayNs, []),
      listen: [listen],
      args: [...this.nodeArgs, '--relay', '--no-upnp']
    })
    this.relayAddr = `${listen}/p2p/${op.peerId}`
    this.nodes.push({ name: 'relay', op, shards: [0], announced: [listen] })
  }

  private async startHome(home: Home, mappingWaitMs: number): Promise<void> {
    const relayed = `${this.relayAddr}/p2p-circuit`
    const shards = [home.index + 1]
    const op = await this.register(`home${home.index}`, shards, [relayed])
    const node: NatNode = { name: `home${home.index}`, home, op, shards, announced: [relayed] }
    this.nodes.push(node)
    let direct: (() => void) | undefined
    const gotDirect = new Promise<void>((resolve) => {
      direct = resolve
    })
    await this.sim.net.startNode(op, this.sim.bundle.dir, {
      wrap: this.lab.exec(home.ns, []),
      listen: ['/ip4/0.0.0.0/tcp/4101'],
      args: [...this.nodeArgs, '--relay-via', this.relayAddr],
      onEvent: (e) => {
        if (e.event !== 'reachability') return
        node.reach = e as unknown as Reachability
        if (node.reach.direct.length > 0) direct?.()
      }
    })
    // the node is up once it holds its relay reservation (or a mapping): as soon as it says so,
    // within one reservation attempt and a retry (node/nat.ts keepReservations) at most
    const deadlineMs = 2 * RELAY_RESERVATION_TIMEOUT_MS + 5000
    for (const t0 = Date.now(); node.reach == null || node.reach.state === 'unreachable';) {
      if (Date.now() - t0 > deadlineMs)
        throw new Error(
          `${node.name} not reachable after ${deadlineMs / 1000} s: ${JSON.stringify(node.reach)}\n${op.log ?? ''}`
        )
      await new Promise((r) => setTimeout(r, 100))
    }
    // a router that maps ports does it within seconds of the node's start
    const mapped = await Promise.race([
      gotDirect.then(() => true),
      new Promise<boolean>((resolve) =>
        setTimeout(() => resolve(false), home.upnp ? mappingWaitMs : 3000)
      )
    ])
    if (mapped && node.reach != null) {
      const announce = [...node.reach.direct.map(stripPeer), relayed]
      await this.sim.net.povJson([
        'node',
        'update',
        ...this.sim.net.chainFlags(op.keystore, op.dir),
        '--announce',
        ...announce
      ])
      node.announced = announce
    }
  }

  /** A paying client on the public segment; `dialable`: it listens, so DCUtR can connect back. */
  async client(dialable: boolean, calls?: RouterOptions['calls']): Promise<PaidRouter> {
    const listen = dialable
      ? [`/ip4/${this.lab.clientIp}/tcp/${await freePortOn(this.lab.clientIp)}`]
      : undefined
    return await this.sim.router(await this.sim.client(), calls, 500, listen)
  }

  /** The path an answered call to `peer` took, as the client sees its connections now. */
  static pathOf(paid: PaidRouter, peer: string): Path {
    const client = paid.router.client
    if (client.pathOf(peer) !== 'direct') return 'relayed'
    const conns = paid.router.libp2p
      .getConnections()
      .filter((c) => c.remotePeer.toString() === peer && c.status === 'open')
    // a direct connection the node opened to us: DCUtR upgraded the relayed one
    return conns.some(
      (c) => !c.remoteAddr.toString().includes('/p2p-circuit') && c.direction === 'inbound'
    )
      ? 'hole-punched'
      : 'direct'
  }

  /** The tail of every node's log (warnings: lost reservations, refused calls). */
  logs(): string {
    return this.nodes.map((n) => `--- ${n.name}\n${(n.op.log ?? '').slice(-3000)}`).join('\n')
  }

  async close(): Promise<void> {
    await this.sim.close()
    await this.lab.close()
  }

  closeSync(): void {
    this.sim.net.killAll()
    this.lab.closeSync()
  }
}

async function freePortOn(host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => {
      const p = (s.address() as { port: number }).port
      s.close(() => {
        resolve(p)
      })
    })
  })
}

function stripPeer(a: string): string {
  return a.replace(/\/p2p\/[^/]+$/, '')
}
