// The router's composition root for remote experts: one client-only libp2p host (no listen
// addresses), static peers asked over /pov/info/1.0.0 what they serve, a route manager and
// the RemoteExpertExecutor the generation loop uses.
import { createLibp2p } from 'libp2p'
import { identify } from '@libp2p/identify'
import { dcutr } from '@libp2p/dcutr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { relayedTransportOptions } from '../protocol/transport.js'
import { bytesToHex, type WireDType } from '../protocol/codec.js'
import { WireClient } from './client.js'
import { BusyPoll } from '../protocol/busy-poll.js'
import { RouteManager, expertKey, type PeerRoute, type RouteManagerOptions } from './routes.js'
import { RemoteExpertExecutor, type RemoteExecutorOptions } from './remote-executor.js'
import { routeOf, type ChainDirectory, type DirectoryNode } from './directory.js'
import { DEFAULT_ROUTER_BUSY_POLL_US } from './defaults.js'

export interface RouterOptions {
  /** Node addresses, each with /p2p/<PeerId>. */
  peers: string[]
  modelId: string
  hidden: number
  /** @default 'fp32' */
  wireDType?: WireDType
  callTimeoutMs?: number
  verifySignatures?: RemoteExecutorOptions['verifySignatures']
  attachPayment?: RemoteExecutorOptions['attachPayment']
  settlePayment?: RemoteExecutorOptions['settlePayment']
  onBadSignature?: RemoteExecutorOptions['onBadSignature']
  /** Spot re-execution of a sampled fraction of calls (router/spot-check.ts). @default none */
  spotCheck?: RemoteExecutorOptions['spotCheck']
  /** Who runs a peer (operator address on a paid network). @default the peer id */
  operatorOf?: RemoteExecutorOptions['operatorOf']
  /** Observes every attempt (metrics, tests). */
  onAttempt?: RemoteExecutorOptions['onAttempt']
  routes?: RouteManagerOptions
  /**
   * A host to run on instead of one of its own (createRouterHost): a gateway lends one host to
   * the routers of all its models and to its network view, so a node sees one connection from it.
   * The router neither starts nor stops it. @default a host of its own, stopped by close()
   */
  libp2p?: Libp2p
  privateKey?: PrivateKey
  /**
   * Listen addresses. A router that can be dialed (a public address, or a port forwarded to it)
   * lets a node behind NAT that it reached through a relay dial it back directly (DCUtR), so
   * calls leave the relay (docs/network.md#hole-punching). They are announced as given, so give
   * the public address and a fixed port. @default none (dial only)
   */
  listen?: string[]
  /**
   * Busy-poll the event loop while expert calls are in flight, for at most this many µs after
   * each request (protocol/busy-poll.ts): saves the wake-up on every response, for a core kept
   * busy during short waits. 0 turns it off. @default DEFAULT_ROUTER_BUSY_POLL_US
   */
  busyPollUs?: number
  /**
   * Follow a registry directory instead of asking `peers`: the table is built from its nodes
   * (their shards mapped to (layer, expert) pairs by `shardExperts`, the bundle's shard map) and
   * rebuilt in the background on every join, leave or change, without a restart.
   */
  directory?: {
    source: ChainDirectory
    shardExperts: ReadonlyArray<Array<[number, number]>>
    /** Which directory nodes may be called (e.g. only those the payer can pay). @default all */
    admit?: (n: DirectoryNode) => boolean
  }
  /** Retries, hedging and observers of the executor (router/remote-executor.ts). */
  calls?: Pick<
    RemoteExecutorOptions,
    'maxAttempts' | 'hedge' | 'unavailableWaitMs' | 'latency' | 'onCall' | 'onAttempt'
  >
}

export { DEFAULT_ROUTER_BUSY_POLL_US }

/** The libp2p host a router runs on: client only unless given listen addresses. */
export async function createRouterHost(
  opts: Pick<RouterOptions, 'privateKey' | 'listen'> = {}
): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: opts.privateKey ?? (await generateKeyPair('Ed25519')),
    // a router has no AutoNAT: the addresses it was told to listen on are taken as reachable
    // (identify then tells nodes where DCUtR can dial back); a port 0 is not announceable
    addresses: {
      listen: opts.listen ?? [],
      announce: (opts.listen ?? []).filter((a) => !/\/tcp\/0$/.test(a))
    },
    ...relayedTransportOptions(),
    // identify tells a node our addresses; dcutr upgrades a relayed connection to a direct one
    services: { identify: identify(), dcutr: dcutr() }
  })
}

export class Router {
  private constructor(
    readonly libp2p: Libp2p,
    readonly client: WireClient,
    readonly routes: RouteManager,
    readonly executor: RemoteExpertExecutor,
    private readonly ownsHost: boolean,
    private readonly directory?: ChainDirectory,
    /** Rebuilds the table from the directory (after `admit` changed its mind). */
    readonly refreshRoutes: () => void = () => {}
  ) {}

  static async init({ opts, logger }: { opts: RouterOptions; logger?: Logger }): Promise<Router> {
    const log = logger?.child({ module: 'router' })
    const ownsHost = opts.libp2p == null
    const libp2p = opts.libp2p ?? (await createRouterHost(opts))
    try {
      const client = new WireClient(libp2p, {
        poll: new BusyPoll({
          windowUs: opts.busyPollUs ?? DEFAULT_ROUTER_BUSY_POLL_US,
          onlyWhileWaiting: true
        })
      })
      const dir = opts.directory
      const fromDirectory = (): PeerRoute[] =>
        [...(dir?.source.nodes.values() ?? [])]
          .filter((n) => dir?.admit?.(n) ?? true)
          .map((n) => {
            client.addPeer(n.peerId, n.addrs)
            return routeOf(n, dir?.shardExperts ?? [])
          })
      const peers =
        dir != null ? fromDirectory() : await discoverStatic(client, opts.peers, opts.modelId, log)
      const routes = new RouteManager(peers, opts.routes)
      dir?.source.onChange((c) => {
        routes.setPeers(fromDirectory())
        for (const n of c.left) client.drop(n.peerId)
        for (const n of c.changed) client.drop(n.peerId) // maybe a new address
        log?.info(
          { joined: c.joined.length, left: c.left.length, changed: c.changed.length },
          'peer table refreshed from the registry'
        )
      })
      const executor = new RemoteExpertExecutor(client, routes, {
        modelId: opts.modelId,
        hidden: opts.hidden,
        wireDType: opts.wireDType,
        callTimeoutMs: opts.callTimeoutMs,
        verifySignatures: opts.verifySignatures,
        attachPayment: opts.attachPayment,
        spotCheck: opts.spotCheck,
        operatorOf: opts.operatorOf,
        settlePayment: opts.settlePayment,
        onBadSignature: (e) => {
          log?.warn(
            { peer: e.peer, layer: e.layer, expert: e.expert },
            'response signature did not verify; peer benched'
          )
          opts.onBadSignature?.(e)
        },
        ...opts.calls,
        onAttempt: (a) => {
          opts.onAttempt?.(a)
          if (!a.ok) log?.warn(a, 'expert call failed; retrying on another replica')
          opts.calls?.onAttempt?.(a)
        }
      })
      dir?.source.start()
      return new Router(libp2p, client, routes, executor, ownsHost, dir?.source, () => {
        routes.setPeers(fromDirectory())
      })
    } catch (err) {
      if (ownsHost) await libp2p.stop()
      throw err
    }
  }

  /** Experts of a model with no replica at all (the generation loop would degrade on them). */
  missing(numLayers: number, numExperts: number): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let l = 0; l < numLayers; l++)
      for (let e = 0; e < numExperts; e++)
        if (this.routes.table.byExpert.get(expertKey(l, e)) == null) out.push([l, e])
    return out
  }

  async close(): Promise<void> {
    await this.directory?.stop()
    await this.client.close()
    if (this.ownsHost) await this.libp2p.stop()
  }
}

/** Asks every static peer what it serves (in parallel); unreachable ones are skipped with a warning. */
/** No address given to the router answered for the model; the caller says what to do. */
export class NoPeerAnsweredError extends Error {
  override name = 'NoPeerAnsweredError'
  constructor(
    readonly modelId: string,
    readonly problems: string[]
  ) {
    super(`no node answered for model ${modelId} (${problems.join('; ')})`)
  }
}

export async function discoverStatic(
  client: WireClient,
  addrs: string[],
  modelId: string,
  log?: Logger
): Promise<PeerRoute[]> {
  const want = modelId.toLowerCase()
  const results = await Promise.allSettled(addrs.map(async (a) => await client.info(a)))
  const peers: PeerRoute[] = []
  const problems: string[] = []
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      problems.push(`${addrs[i]}: ${(r.reason as Error).message.split('\n')[0]}`)
      return
    }
    const m = r.value.info.models.find((m) => bytesToHex(m.modelId).toLowerCase() === want)
    if (m == null) {
      problems.push(`${addrs[i]}: serves another model`)
      return
    }
    const experts = new Set<number>()
    for (let j = 0; j + 1 < m.experts.length; j += 2)
      experts.add(expertKey(m.experts[j], m.experts[j + 1]))
    peers.push({
      peerId: r.value.peerId,
      addrs: [addrs[i]],
      shards: m.shards,
      experts,
      ...(r.value.info.maxRows > 0 ? { maxRows: r.value.info.maxRows } : {})
    })
  })
  // when nobody answered, the error says it all; otherwise the skipped ones are worth a warning
  if (peers.length === 0) throw new NoPeerAnsweredError(modelId, problems)
  if (problems.length > 0) log?.warn({ skipped: problems }, 'some peers were skipped')
  return peers
}
