// Reachability of a node behind a home router, composed from libp2p's own services (issue #23,
// docs/network.md#home-routers-nat): AutoNAT asks peers to dial us back (am I reachable?),
// UPnP IGD / NAT-PMP asks the router for a port mapping, a Circuit Relay v2 reservation makes
// the node reachable through a public relay when neither works, and DCUtR upgrades a relayed
// connection to a direct one. A public node may also relay for others (`--relay`).
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { uPnPNAT } from '@libp2p/upnp-nat'
import type { Libp2p } from '@libp2p/interface'
import type { AddressManager, TransportManager } from '@libp2p/interface-internal'
import type { Logger } from 'pino'
import { isPrivate } from '@libp2p/utils'
import { Circuit } from '@multiformats/multiaddr-matcher'
import { multiaddr } from '@multiformats/multiaddr'

/** What a relay offers the nodes that reserve a slot on it. */
export interface RelayLimits {
  /** Nodes that may hold a reservation at once. @default 64 */
  maxReservations?: number
  /** A reservation lasts this long; the node renews it before it runs out. @default 1 h */
  reservationTtlMs?: number
  /**
   * Each relayed connection (one client ↔ one node) is closed after this long; the client then
   * dials again through the relay, or directly once DCUtR found a way. @default 10 min
   */
  durationLimitMs?: number
  /**
   * Bytes each relayed connection may carry in each direction before the relay closes it.
   * libp2p's default (128 KiB) would end a relayed Mixtral generation after a few tokens (about
   * 1 MiB per token per node); 64 MiB carries about 60 of them. @default 64 MiB
   */
  dataLimitBytes?: number
}

export const defaultRelayLimits: Required<RelayLimits> = {
  maxReservations: 64,
  reservationTtlMs: 60 * 60_000,
  durationLimitMs: 10 * 60_000,
  dataLimitBytes: 64 * 1024 * 1024
}

export interface ReachabilityOptions {
  /**
   * Public relays to reserve a slot on (multiaddrs ending in /p2p/<relay PeerId>); the node then
   * also listens at `<relay>/p2p-circuit` and can be announced there. @default none
   */
  relays?: string[]
  /** Ask the home router for a port mapping (UPnP IGD, NAT-PMP). @default true */
  upnp?: boolean
  /** Offer relaying to NATed nodes with these limits; false: no relay. @default false */
  relay?: RelayLimits | false
}

/** The listen addresses, transports and services a node adds for reachability. */
export function reachabilityServices(opts: ReachabilityOptions): {
  listen: string[]
  /** PeerIds of the relays in `relays` (their connections carry the reservations). */
  relayPeers: Set<string>
  services: Record<string, (components: any) => unknown>
} {
  const services: Record<string, (components: any) => unknown> = {
    autoNAT: autoNAT(),
    dcutr: dcutr()
  }
  if (opts.upnp !== false)
    services.upnpNAT = uPnPNAT({
      portMappingDescription: 'pov node',
      // the router created the forwarding itself (and a gateway with a private external address,
      // a double NAT, is refused): AutoNAT would only confirm it on the next new connection to
      // an AutoNAT server, and a node keeps few connections
      autoConfirmAddress: true
    })
  if (opts.relay !== false && opts.relay != null) {
    const l = { ...defaultRelayLimits, ...opts.relay }
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: l.maxReservations,
        reservationTtl: l.reservationTtlMs,
        defaultDurationLimit: l.durationLimitMs,
        defaultDataLimit: BigInt(l.dataLimitBytes),
        applyDefaultLimit: true
      }
    })
  }
  const relayPeers = new Set<string>()
  const listen = (opts.relays ?? []).map((r) => {
    const id = multiaddr(r)
      .getComponents()
      .filter((c) => c.name === 'p2p')
      .pop()?.value
    if (id == null) throw new Error(`relay address ${r} has no /p2p/<PeerId> part`)
    relayPeers.add(id)
    return `${r}/p2p-circuit`
  })
  return { listen, relayPeers, services }
}

/**
 * Connections that carry a relay reservation, ours on a relay or a node's on us: idle by nature
 * (no stream between relayed calls), and closing one drops the reservation.
 */
export function holdsReservation(
  libp2p: Libp2p,
  relayPeers: Set<string>
): (c: { remotePeer: { toString: () => string } }) => boolean {
  const relay = (libp2p.services as { relay?: CircuitRelayService }).relay
  return (c) =>
    relayPeers.has(c.remotePeer.toString()) ||
    (relay?.reservations.has(c.remotePeer as never) ?? false)
}

/**
 * Reserves a slot on each configured relay right after the node starts, without holding the start
 * up, and again wherever the reservation is lost (the relay restarted, the connection to it broke)
 * or the last attempt failed. Checked every `intervalMs`; returns the function that stops it.
 */
export function keepReservations(
  libp2p: Libp2p,
  relays: string[],
  log: Pick<Logger, 'warn' | 'info'>,
  intervalMs = 5000
): () => void {
  if (relays.length === 0) return () => {}
  const tm = (libp2p as unknown as { components: { transportManager: TransportManager } })
    .components.transportManager
  let busy = false
  let first = true
  const tick = (): void => {
    if (busy) return
    const held = reachability(libp2p).relayed
    const lost = relays.filter((r) => !held.some((a) => a.startsWith(r + '/p2p-circuit')))
    if (lost.length === 0) return
    busy = true
    if (first) log.info({ relays: lost }, 'reserving a slot on the relays')
    else log.warn({ relays: lost }, 'no reservation on this relay (any more): reserving again')
    first = false
    void Promise.allSettled(lost.map(async (r) => await tm.listen([multiaddr(`${r}/p2p-circuit`)])))
      .then((rs) => {
        rs.forEach((x, i) => {
          if (x.status === 'rejected')
            log.warn(
              { relay: lost[i], err: (x.reason as Error).message },
              'relay reservation failed; retrying in a moment'
            )
          else log.info({ relay: lost[i] }, 'relay reservation held again')
        })
      })
      .finally(() => {
        busy = false
      })
  }
  tick() // the first reservation, right after the start (the node does not wait for it)
  const timer = setInterval(tick, intervalMs)
  timer.unref()
  return () => {
    clearInterval(timer)
  }
}

/** How the node can be reached right now, from libp2p's address manager. */
export interface Reachability {
  /**
   * public: a public listen address confirmed by AutoNAT; mapped: a router port mapping
   * confirmed by AutoNAT; relayed: only through a relay reservation; unreachable: none yet.
   */
  state: 'public' | 'mapped' | 'relayed' | 'unreachable'
  /** Addresses confirmed dialable from outside (public or mapped). */
  direct: string[]
  /** Relayed addresses (a reservation is held on each relay). */
  relayed: string[]
  /** Candidate addresses not (yet) confirmed by AutoNAT. */
  unconfirmed: string[]
}

export function reachability(libp2p: Libp2p): Reachability {
  // the address manager is libp2p's, not on its public interface; the fields read are stable
  const am = (libp2p as unknown as { components: { addressManager: AddressManager } }).components
    .addressManager
  const r: Reachability = { state: 'unreachable', direct: [], relayed: [], unconfirmed: [] }
  let mapped = false
  const self = `/p2p/${libp2p.peerId.toString()}`
  for (const a of am.getAddressesWithMetadata()) {
    // dialable as given: with our /p2p/<PeerId> (a relayed address needs it after /p2p-circuit)
    const s = a.multiaddr.toString().endsWith(self)
      ? a.multiaddr.toString()
      : a.multiaddr.toString() + self
    if (Circuit.matches(a.multiaddr)) r.relayed.push(s)
    else if (isPrivate(a.multiaddr)) continue
    else if (a.verified) {
      r.direct.push(s)
      if (a.type === 'ip-mapping' || a.type === 'observed') mapped = true
    } else r.unconfirmed.push(s)
  }
  r.state =
    r.direct.length > 0
      ? mapped
        ? 'mapped'
        : 'public'
      : r.relayed.length > 0
        ? 'relayed'
        : 'unreachable'
  return r
}
