// `pov node start` options -> OperatorNodeOptions. Defaults live in node/ (defaultOptions).
import { Option, type Command } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import {
  defaultLimits,
  defaultOptions,
  defaultRelayLimits,
  parseAllowEntry,
  type ConnectionLimitsInit,
  type OperatorNodeOptions
} from '../../node/index.js'
import { collectList, parseBusyPollUs, parseIntList } from '../options.js'
import { UserError } from '../errors.js'
import { DEVICES, INT4_KERNELS } from '../../model/experts.js'

export interface NodeStartArgs {
  model: string
  shards?: string
  listen?: string[]
  announce?: string[]
  device?: string
  key?: string
  batchWindowMs?: string
  threads?: string
  int4Kernel?: string
  workers?: string
  spin?: boolean
  busyPollUs?: string
  maxConnsPerIp?: string
  maxConnsPerPeer?: string
  maxConns?: string
  handshakeTimeoutMs?: string
  idleTimeoutMs?: string
  allow?: string[]
  allowOnly?: boolean
  relay?: boolean
  relayVia?: string[]
  upnp?: boolean
  json?: boolean
  metrics?: boolean
  metricsPort: string
  metricsAddress: string
}

export function addNodeStartOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--model <dir>', 'model bundle directory (from `pov model convert`)')
        .env('POV_MODEL')
        .makeOptionMandatory()
    )
    .addOption(
      new Option(
        '--shards <ids>',
        'expert shards to serve, e.g. 0,1 (shard j = expert j of every layer); with --keystore: default the registered ones'
      ).env('POV_SHARDS')
    )
    .addOption(
      new Option(
        '--listen <multiaddr...>',
        'listen addresses (repeat or comma-separate)'
      ).argParser(collectList)
    )
    .addOption(
      new Option(
        '--announce <multiaddr...>',
        'public addresses to announce (behind NAT)'
      ).argParser(collectList)
    )
    .addOption(
      new Option(
        '--device <device>',
        'where the experts run (a GPU falls back to cpu with a warning)'
      )
        .choices([...DEVICES])
        .env('POV_DEVICE')
    )
    .addOption(
      new Option(
        '--key <file>',
        'libp2p identity key file (created when missing; ephemeral without)'
      ).env('POV_NODE_KEY')
    )
    .addOption(
      new Option(
        '--batch-window-ms <ms>',
        'micro-batching window for concurrent calls to one expert'
      )
    )
    .addOption(
      new Option(
        '--threads <n>',
        'threads per expert run: ORT sessions, or the int4 kernel (default: physical cores)'
      ).env('POV_THREADS')
    )
    .addOption(
      new Option(
        '--int4-kernel <kernel>',
        "int4 bundles on CPU: pov's own kernel (default; weights resident once, read at memory speed) or onnxruntime's MatMulNBits"
      )
        .choices([...INT4_KERNELS])
        .env('POV_INT4_KERNEL')
    )
    .addOption(
      new Option(
        '--workers <n>',
        'run the experts in n worker threads (0: in the network thread, blocking it during each run)'
      ).env('POV_WORKERS')
    )
    .addOption(
      new Option(
        '--no-spin',
        'no idle spinning (for nodes that share cores): ORT worker threads sleep between calls, and the network loop does not busy-poll unless --busy-poll-us says so'
      )
    )
    .addOption(
      new Option(
        '--busy-poll-us <us>',
        `keep the network loop polling this many µs after each expert call, so the next is read without a wake-up (0: off; default ${defaultOptions.busyPollUs})`
      ).env('POV_BUSY_POLL_US')
    )
    .addOption(
      new Option(
        '--max-conns-per-ip <n>',
        `inbound connections (handshaking or open) from one IP address (default ${defaultLimits.maxConnectionsPerIp})`
      ).env('POV_MAX_CONNS_PER_IP')
    )
    .addOption(
      new Option(
        '--max-conns-per-peer <n>',
        `open connections with one peer id (default ${defaultLimits.maxConnectionsPerPeer})`
      ).env('POV_MAX_CONNS_PER_PEER')
    )
    .addOption(
      new Option(
        '--max-conns <n>',
        `connections in all (default ${defaultLimits.maxConnections})`
      ).env('POV_MAX_CONNS')
    )
    .addOption(
      new Option(
        '--handshake-timeout-ms <ms>',
        `an inbound connection must finish noise + yamux within this (default ${defaultLimits.handshakeTimeoutMs})`
      ).env('POV_HANDSHAKE_TIMEOUT_MS')
    )
    .addOption(
      new Option(
        '--idle-timeout-ms <ms>',
        `close a connection with no stream open for this long; 0: never (default ${defaultLimits.idleTimeoutMs})`
      ).env('POV_IDLE_TIMEOUT_MS')
    )
    .addOption(
      new Option(
        '--allow <peer|ip|cidr...>',
        'trusted routers (peer ids, IP addresses, CIDR ranges): no connection cap or idle timeout applies to them (repeat or comma-separate)'
      ).argParser(collectList)
    )
    .addOption(new Option('--allow-only', 'refuse every peer not on --allow (a private node)'))
    .addOption(
      new Option(
        '--relay',
        `relay for nodes behind NAT (a public node; at most ${defaultRelayLimits.maxReservations} reservations, each relayed connection ${defaultRelayLimits.dataLimitBytes / 2 ** 20} MiB per direction and ${defaultRelayLimits.durationLimitMs / 60_000} min)`
      )
    )
    .addOption(
      new Option(
        '--relay-via <multiaddr...>',
        'behind NAT: reserve a slot on these relays (addresses ending in /p2p/<relay PeerId>) and be reachable at <relay>/p2p-circuit (repeat or comma-separate)'
      ).argParser(collectList)
    )
    .addOption(
      new Option('--no-upnp', 'do not ask the home router for a port mapping (UPnP, NAT-PMP)')
    )
    .addOption(new Option('--metrics', 'serve Prometheus /metrics, /health and /ready'))
    .addOption(new Option('--metrics-port <port>', 'metrics port').default('9464'))
    .addOption(new Option('--metrics-address <addr>', 'metrics bind address').default('127.0.0.1'))
    .option('--json', 'machine-readable output (one JSON event per line on stdout)')
}

export function parseArgs(a: NodeStartArgs): OperatorNodeOptions {
  if (a.shards == null || a.shards === '')
    throw new UserError(
      'say which shards to serve: --shards 0,1 (or --keystore DIR to serve the registered ones)'
    )
  const opts: OperatorNodeOptions = { model: a.model, shards: parseIntList(a.shards, '--shards') }
  if (a.listen != null) opts.listen = a.listen
  if (a.announce != null) opts.announce = a.announce
  if (a.device != null) opts.device = a.device as OperatorNodeOptions['device']
  if (a.int4Kernel != null) opts.int4Kernel = a.int4Kernel as OperatorNodeOptions['int4Kernel']
  if (a.key != null) opts.keyFile = a.key
  if (a.threads != null) {
    const n = Number(a.threads)
    if (!Number.isSafeInteger(n) || n < 1)
      throw new UserError(`invalid --threads "${a.threads}": expected a positive integer`)
    opts.threads = n
  }
  if (a.workers != null) {
    const n = Number(a.workers)
    if (!Number.isSafeInteger(n) || n < 0 || n > 64)
      throw new UserError(`invalid --workers "${a.workers}": expected an integer from 0 to 64`)
    opts.workers = n
  }
  if (a.spin === false) opts.spin = false
  if (a.relay === true || a.relayVia != null || a.upnp === false) {
    for (const r of a.relayVia ?? []) {
      let ok = false
      try {
        ok = multiaddr(r)
          .getComponents()
          .some((c) => c.name === 'p2p')
      } catch {}
      if (!ok)
        throw new UserError(
          `invalid --relay-via "${r}": expected a relay's multiaddr ending in /p2p/<PeerId>, e.g. /ip4/203.0.113.7/tcp/4101/p2p/12D3KooW…`
        )
    }
    opts.reachability = {
      relay: a.relay === true ? {} : false,
      relays: a.relayVia,
      upnp: a.upnp !== false
    }
  }
  if (a.busyPollUs != null) opts.busyPollUs = parseBusyPollUs(a.busyPollUs)
  const limits = parseLimits(a)
  if (limits != null) opts.limits = limits
  if (a.batchWindowMs != null) {
    const ms = Number(a.batchWindowMs)
    if (!Number.isFinite(ms) || ms < 0)
      throw new UserError(
        `invalid --batch-window-ms "${a.batchWindowMs}": expected a non-negative number`
      )
    opts.batchWindowMs = ms
  }
  return opts
}

function parseLimits(a: NodeStartArgs): ConnectionLimitsInit | undefined {
  const int = (v: string | undefined, flag: string, min: number): number | undefined => {
    if (v == null) return undefined
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min)
      throw new UserError(`invalid ${flag} "${v}": expected an integer ≥ ${min}`)
    return n
  }
  const l: ConnectionLimitsInit = {
    maxConnectionsPerIp: int(a.maxConnsPerIp, '--max-conns-per-ip', 1),
    maxConnectionsPerPeer: int(a.maxConnsPerPeer, '--max-conns-per-peer', 1),
    maxConnections: int(a.maxConns, '--max-conns', 1),
    handshakeTimeoutMs: int(a.handshakeTimeoutMs, '--handshake-timeout-ms', 100),
    idleTimeoutMs: int(a.idleTimeoutMs, '--idle-timeout-ms', 0)
  }
  if (a.allow != null) {
    for (const e of a.allow) {
      try {
        parseAllowEntry(e)
      } catch (err) {
        throw new UserError(`--allow: ${(err as Error).message}`)
      }
    }
    l.allow = a.allow
  }
  if (a.allowOnly === true) {
    if (a.allow == null || a.allow.length === 0)
      throw new UserError('--allow-only needs at least one --allow entry (else nobody can connect)')
    l.allowOnly = true
  }
  const set = Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined))
  return Object.keys(set).length === 0 ? undefined : (set as ConnectionLimitsInit)
}

/** --shards for the registry: distinct ids, ascending. */
export function parseShards(value: string): number[] {
  return [...new Set(parseIntList(value, '--shards'))].sort((a, b) => a - b)
}

/** --announce addresses as registered: without the /p2p/<PeerId> part (the registry binds the PeerId). */
export function parseAnnounce(addrs: string[]): string[] {
  return addrs.map((a) => {
    try {
      // only a trailing /p2p/<PeerId>: a relayed address keeps its relay's (…/p2p/<relay>/p2p-circuit)
      const ma = multiaddr(a)
      return ma.getComponents().at(-1)?.name === 'p2p'
        ? ma.decapsulateCode(421).toString()
        : ma.toString()
    } catch {
      throw new UserError(`invalid --announce address "${a}"`)
    }
  })
}
