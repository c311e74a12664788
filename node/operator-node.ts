// The operator daemon's composition root: bundle -> expert runtime -> identity -> libp2p (the
// only createLibp2p call of the node) with the expert service. close() tears down in reverse.
import { createLibp2p } from 'libp2p'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { loadBundle } from '../model/bundle/index.js'
import {
  loadExpertRuntime,
  loadThreadedExpertRuntime,
  type ExpertRuntime
} from '../model/runtime/index.js'
import type { ExpertRequest } from '../protocol/expert.js'
import { relayedTransportOptions } from '../protocol/transport.js'
import { expertService, type ExpertService } from './expert-service.js'
import { loadOrCreateKey } from './identity.js'
import type { NodeMetrics } from './metrics.js'
import { ConnectionLimits, type ConnectionLimitsInit } from './limits.js'
import { RefusalLog } from './refusals.js'
import type { HostedModel } from './runtime.js'
import type { Device, Int4KernelChoice } from '../model/experts.js'
import {
  holdsReservation,
  keepReservations,
  reachability,
  reachabilityServices,
  type Reachability,
  type ReachabilityOptions
} from './nat.js'
import { SelectionWatch, type SelectionOptions } from './selection.js'

export interface OperatorNodeOptions {
  /** Model bundle directory. */
  model: string
  shards: number[]
  /** @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Public addresses to announce (behind NAT). @default the listen addresses */
  announce?: string[]
  /** @default 'cpu' */
  device?: Device
  /** Identity key file; created when missing. @default an ephemeral key */
  keyFile?: string
  /** Identity key already loaded (an operator keystore); wins over keyFile. */
  privateKey?: PrivateKey
  /** ORT intra-op threads per expert session, or the int4 kernel's pool. @default physical cores */
  threads?: number
  /** int4 bundles on CPU: pov's own kernel or ORT's MatMulNBits. @default 'pov' */
  int4Kernel?: Int4KernelChoice
  /**
   * Let ORT's idle worker threads spin. @default ORT's (true): lowest latency on a machine the
   * node owns; turn off when the node shares cores (it then stops burning CPU between calls).
   */
  spin?: boolean
  /**
   * Worker threads that run the experts (model/runtime/threaded.ts). 0: ORT runs in the network
   * thread, which then stalls for the length of each run; n: the experts of one layer are spread
   * over n threads, run in parallel, and the network thread stays free, for one message hop per
   * call (~0.35 ms on a 2-vCPU AMD EPYC VM, 2026-12; docs/toolchain.md). @default 0
   */
  workers?: number
  /**
   * Busy-poll the network loop for this many µs after each request and response
   * (protocol/busy-poll.ts): the next call is read without a wake-up, for a core kept busy
   * during that window. 0 turns it off. @default 1000, or 0 when `spin` is false
   */
  busyPollUs?: number
  /** @default 0 (see MicroBatcher) */
  batchWindowMs?: number
  /** Connection caps, timeouts and the allow-list (node/limits.ts). @default defaultLimits */
  limits?: ConnectionLimitsInit
  verifyPayment?: (request: ExpertRequest, peer: PeerId) => Promise<void>
  /**
   * NAT traversal (node/nat.ts): relays to reserve a slot on, UPnP/NAT-PMP port mapping, and
   * whether this node relays for others. @default UPnP on, no relays, not a relay
   */
  reachability?: ReachabilityOptions
  /** Whether routers choose this node over other replicas (node/selection.ts). @default its defaults */
  selection?: Omit<SelectionOptions, 'hostedFraction' | 'logger' | 'metrics'>
}

export const defaultOptions = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  device: 'cpu' as const,
  batchWindowMs: 0,
  workers: 0,
  busyPollUs: 1000
}

/** The network loop's busy-poll window: a node told not to spin (it shares its cores) does not poll either, unless told to. */
export function busyPollUs(opts: Pick<OperatorNodeOptions, 'busyPollUs' | 'spin'>): number {
  return opts.busyPollUs ?? (opts.spin === false ? 0 : defaultOptions.busyPollUs)
}

type Host = Libp2p<{ expert: ExpertService }>

export class OperatorNode {
  private constructor(
    readonly libp2p: Host,
    readonly runtime: ExpertRuntime,
    readonly hosted: HostedModel,
    private readonly logger: Logger,
    readonly limits: ConnectionLimits,
    /** Whether routers choose this node over the other replicas of its experts. */
    readonly selection: SelectionWatch,
    private readonly stopKeeper: () => void = () => {}
  ) {}

  static async init({
    opts,
    logger,
    metrics = null
  }: {
    opts: OperatorNodeOptions
    logger: Logger
    metrics?: NodeMetrics | null
  }): Promise<OperatorNode> {
    const log = logger.child({ module: 'node' })
    const bundle = await loadBundle(opts.model, { verify: 'lazy' })
    // loading a real Mixtral shard takes minutes: a line at the start, then at most one every 2 s
    let lastReport = 0
    const t0 = performance.now()
    const onProgress = (loaded: number, total: number): void => {
      const now = performance.now()
      if (loaded !== total && loaded !== 1 && now - lastReport < 2000) return
      lastReport = now
      log.info(
        { loaded, total, seconds: Math.round((now - t0) / 100) / 10 },
        `loading experts ${loaded}/${total}`
      )
    }
    const ort = {
      device: opts.device ?? defaultOptions.device,
      logger: log,
      intraOpNumThreads: opts.threads,
      allowSpinning: opts.spin,
      int4Kernel: opts.int4Kernel,
      onProgress
    }
    const workers = opts.workers ?? defaultOptions.workers
    const runtime =
      workers > 0
        ? await loadThreadedExpertRuntime(opts.model, opts.shards, { ...ort, workers })
        : await loadExpertRuntime(bundle, opts.shards, ort)
    try {
      const c = bundle.config
      const hosted: HostedModel = {
        modelId: bundle.modelId,
        manifestHash: bundle.modelId,
        hidden: c.hiddenSize,
        numLayers: c.numLayers,
        numExperts: c.numExperts,
        shards: opts.shards,
        experts: runtime.experts(),
        runtime
      }
      for (const s of opts.shards) metrics?.expertLoaded.set({ shard: String(s) }, 1)
      let privateKey: PrivateKey
      if (opts.privateKey != null) {
        privateKey = opts.privateKey
      } else if (opts.keyFile != null) {
        const { key, created } = await loadOrCreateKey(opts.keyFile)
        if (created) log.info({ file: opts.keyFile }, 'created a new node key')
        privateKey = key
      } else {
        privateKey = await generateKeyPair('Ed25519')
      }
      const refusals = new RefusalLog({ logger: log, metrics })
      const selection = new SelectionWatch({
        ...opts.selection,
        hostedFraction: hosted.experts.length / (c.numLayers * c.numExperts),
        logger: log.child({ module: 'selection' }),
        metrics
      })
      const limits = new ConnectionLimits(opts.limits, refusals)
      const transport = relayedTransportOptions()
      const nat = reachabilityServices(opts.reachability ?? {})
      const ref: { host?: Host } = {} // the gater asks the host, which does not exist yet
      const libp2p: Host = (await createLibp2p({
        privateKey,
        addresses: {
          // the relays' /p2p-circuit addresses are not listened on here: libp2p fails its whole
          // start when one transport binds nothing, so a relay that did not answer in time
          // stopped the node (reported as a taken port); keepReservations reserves right after
          // the start and again every few seconds until it holds
          listen: [...(opts.listen ?? defaultOptions.listen)],
          announce: opts.announce ?? []
        },
        ...transport,
        connectionManager: { ...transport.connectionManager, ...limits.connectionManager() },
        connectionGater: limits.gater((peer) => ref.host?.getConnections(peer) ?? []),
        services: {
          ...nat.services,
          identify: identify(),
          ping: ping(),
          expert: expertService({
            models: [hosted],
            batchWindowMs: opts.batchWindowMs ?? defaultOptions.batchWindowMs,
            busyPollUs: busyPollUs(opts),
            verifyPayment: opts.verifyPayment,
            metrics,
            refusals,
            onRequest: (peer, id) => {
              selection.observe(peer, id)
            },
            logger: log.child({ module: 'expert-service' })
          })
        }
      })) as unknown as Host
      ref.host = libp2p
      limits.start(libp2p, holdsReservation(libp2p, nat.relayPeers))
      if (metrics != null) {
        const update = (): void => {
          metrics.peersConnected.set(libp2p.getConnections().length)
        }
        libp2p.addEventListener('connection:open', update)
        libp2p.addEventListener('connection:close', update)
      }
      const relays = (opts.reachability?.relays ?? []).map((r) => r.replace(/\/p2p-circuit$/, ''))
      const stopKeeper = keepReservations(libp2p, relays, log.child({ module: 'nat' }))
      selection.start()
      return new OperatorNode(libp2p, runtime, hosted, log, limits, selection, stopKeeper)
    } catch (err) {
      await runtime.close()
      throw err
    }
  }

  /** What runs the experts: "onnxruntime" or pov's int4 kernel with its code path. */
  get engine(): string {
    return this.runtime.engine
  }

  /** The execution provider the experts run on (after any fallback to CPU). */
  get device(): string {
    return this.runtime.device
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }
  get addrs(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString())
  }

  /** How the node can be reached now (AutoNAT, port mapping, relay reservations). */
  reachability(): Reachability {
    return reachability(this.libp2p)
  }

  /** Calls `listener` with the new reachability whenever the node's addresses change. */
  onReachability(listener: (r: Reachability) => void): () => void {
    let last = ''
    const update = (): void => {
      const r = this.reachability()
      const key = JSON.stringify(r)
      if (key === last) return
      last = key
      listener(r)
    }
    this.libp2p.addEventListener('self:peer:update', update)
    update()
    return () => {
      this.libp2p.removeEventListener('self:peer:update', update)
    }
  }

  async close(): Promise<void> {
    this.logger.info('shutting down')
    this.limits.stop()
    this.selection.stop()
    this.stopKeeper()
    await this.libp2p.stop() // unregisters the handlers, closes connections
    await this.runtime.close()
  }
}
