// Connection limits of a node open to the internet (docs/protocol.md#connection-limits): no
// host can lock others out by holding connections. libp2p's own caps are global (a total of
// connections, of handshakes in progress), so one host could fill them; these add caps per IP
// address and per peer, a handshake timeout, an idle timeout, and an allow-list of trusted
// routers that the caps never apply to. Every refusal is counted and logged (RefusalLog).
import type { Connection, ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { Circuit } from '@multiformats/multiaddr-matcher'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { BlockList, isIP } from 'node:net'
import type { RefusalLog } from './refusals.js'

export interface ConnectionLimitsInit {
  /** Inbound connections (handshaking or open) from one IP address. @default 16 */
  maxConnectionsPerIp?: number
  /** Open connections with one peer id. @default 4 */
  maxConnectionsPerPeer?: number
  /** Connections in all. @default 512 */
  maxConnections?: number
  /** Inbound connections still in their handshake, from all addresses. @default 128 */
  maxPendingConnections?: number
  /** An inbound connection must finish noise + yamux within this. @default 5000 */
  handshakeTimeoutMs?: number
  /** A connection with no stream open for this long is closed. 0: never. @default 120000 */
  idleTimeoutMs?: number
  /**
   * Trusted routers: peer ids, IP addresses or CIDR ranges (`10.0.0.0/8`). None of the caps
   * above applies to them (libp2p's total cap neither). @default none
   */
  allow?: string[]
  /** Refuse every peer not on the allow-list (a private node). @default false */
  allowOnly?: boolean
}

export const defaultLimits = {
  maxConnectionsPerIp: 16,
  maxConnectionsPerPeer: 4,
  maxConnections: 512,
  maxPendingConnections: 128,
  handshakeTimeoutMs: 5000,
  idleTimeoutMs: 120_000
} as const

/** An allow-list entry: a peer id, an IP address or a CIDR range. */
export function parseAllowEntry(entry: string): { peer?: string; ip?: string; prefix?: number } {
  const [addr, bits] = entry.split('/')
  if (isIP(addr) !== 0) {
    const max = isIP(addr) === 4 ? 32 : 128
    const prefix = bits == null ? max : Number(bits)
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits != null && bits === ''))
      throw new Error(`invalid allow-list range "${entry}": expected ${addr}/0..${max}`)
    return { ip: addr, prefix }
  }
  if (/^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]+$/.test(entry)) return { peer: entry }
  throw new Error(
    `invalid allow-list entry "${entry}": expected a peer id, an IP address or a CIDR`
  )
}

export class ConnectionLimits {
  readonly settings: Required<Omit<ConnectionLimitsInit, 'allow'>>
  private readonly allowPeers = new Set<string>()
  private readonly allowIps = new BlockList()
  private readonly allowCidrs: string[] = []
  /** Inbound raw connections per IP, from the gater's first look until they close. */
  private readonly byIp = new Map<string, number>()
  private readonly handshaking = new WeakSet<object>()
  private readonly idleSince = new Map<string, number>()
  private sweep: NodeJS.Timeout | undefined

  constructor(
    init: ConnectionLimitsInit = {},
    private readonly refusals?: RefusalLog
  ) {
    this.settings = {
      maxConnectionsPerIp: init.maxConnectionsPerIp ?? defaultLimits.maxConnectionsPerIp,
      maxConnectionsPerPeer: init.maxConnectionsPerPeer ?? defaultLimits.maxConnectionsPerPeer,
      maxConnections: init.maxConnections ?? defaultLimits.maxConnections,
      maxPendingConnections: init.maxPendingConnections ?? defaultLimits.maxPendingConnections,
      handshakeTimeoutMs: init.handshakeTimeoutMs ?? defaultLimits.handshakeTimeoutMs,
      idleTimeoutMs: init.idleTimeoutMs ?? defaultLimits.idleTimeoutMs,
      allowOnly: init.allowOnly ?? false
    }
    for (const e of init.allow ?? []) {
      const a = parseAllowEntry(e)
      if (a.peer != null) this.allowPeers.add(a.peer)
      else if (a.ip != null) {
        const family = isIP(a.ip) === 4 ? 'ipv4' : 'ipv6'
        this.allowIps.addSubnet(a.ip, a.prefix as number, family)
        this.allowCidrs.push(`/${family === 'ipv4' ? 'ip4' : 'ip6'}/${a.ip}/ipcidr/${a.prefix}`)
      }
    }
  }

  /** libp2p connection manager settings (merged over the transport's). */
  connectionManager(): {
    maxConnections: number
    maxIncomingPendingConnections: number
    inboundUpgradeTimeout: number
    allow: string[]
  } {
    return {
      maxConnections: this.settings.maxConnections,
      maxIncomingPendingConnections: this.settings.maxPendingConnections,
      inboundUpgradeTimeout: this.settings.handshakeTimeoutMs,
      // allowed addresses skip libp2p's total and pending caps
      allow: this.allowCidrs
    }
  }

  /** The gater that applies the per-IP, per-peer and allow-only rules. */
  gater(getConnections: (peer: PeerId) => Connection[]): ConnectionGater {
    return {
      denyInboundConnection: (maConn) => this.onRawConnection(maConn),
      denyInboundEncryptedConnection: (peer, maConn) =>
        this.onHandshake(peer, maConn, getConnections)
    }
  }

  isAllowedIp(ip: string | undefined): boolean {
    if (ip == null || isIP(ip) === 0) return false
    return this.allowIps.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6')
  }

  isAllowedPeer(peer: PeerId | string): boolean {
    return this.allowPeers.has(peer.toString())
  }

  private onRawConnection(maConn: MultiaddrConnection): boolean {
    const ip = hostOf(maConn.remoteAddr)
    // a relayed connection's address is the relay's: every client behind one relay would share
    // one IP's cap; the per-peer cap still applies after the handshake (the relay limits the rest)
    if (ip == null || this.isAllowedIp(ip) || Circuit.matches(maConn.remoteAddr)) return false
    const n = this.byIp.get(ip) ?? 0
    if (n >= this.settings.maxConnectionsPerIp) {
      this.refusals?.note(
        'ip-connections',
        { ip, open: n },
        `connection refused: ${n} connections from this address already (--max-conns-per-ip)`
      )
      return true
    }
    this.byIp.set(ip, n + 1)
    this.handshaking.add(maConn)
    maConn.addEventListener(
      'close',
      () => {
        const left = (this.byIp.get(ip) ?? 1) - 1
        if (left <= 0) this.byIp.delete(ip)
        else this.byIp.set(ip, left)
        if (this.handshaking.has(maConn)) {
          this.handshaking.delete(maConn)
          this.refusals?.note(
            'handshake',
            { ip },
            'connection closed before its handshake completed (silent, slow or failed)'
          )
        }
      },
      { once: true }
    )
    return false
  }

  private onHandshake(
    peer: PeerId,
    maConn: MultiaddrConnection,
    getConnections: (peer: PeerId) => Connection[]
  ): boolean {
    this.handshaking.delete(maConn)
    const ip = hostOf(maConn.remoteAddr)
    if (this.isAllowedPeer(peer) || this.isAllowedIp(ip)) return false
    if (this.settings.allowOnly) {
      this.refusals?.note(
        'denied',
        { peer: peer.toString(), ip },
        'connection refused: peer not on the allow-list (--allow-only)'
      )
      return true
    }
    const n = getConnections(peer).length
    if (n >= this.settings.maxConnectionsPerPeer) {
      this.refusals?.note(
        'peer-connections',
        { peer: peer.toString(), ip, open: n },
        `connection refused: ${n} connections with this peer already (--max-conns-per-peer)`
      )
      return true
    }
    return false
  }

  /**
   * Closes connections that have had no stream open for `idleTimeoutMs` (checked every quarter
   * of it). Allowed peers and addresses are left alone, and so are connections `keep` names (a
   * relay reservation lives on an idle connection: closing it makes the node unreachable).
   */
  start(
    host: { getConnections: () => Connection[] },
    keep: (c: Connection) => boolean = () => false
  ): void {
    const idle = this.settings.idleTimeoutMs
    if (idle <= 0 || this.sweep != null) return
    this.sweep = setInterval(
      () => {
        const now = Date.now()
        const live = new Set<string>()
        for (const c of host.getConnections()) {
          live.add(c.id)
          if (
            c.streams.length > 0 ||
            keep(c) ||
            this.isAllowedPeer(c.remotePeer) ||
            this.isAllowedIp(hostOf(c.remoteAddr))
          ) {
            this.idleSince.delete(c.id)
            continue
          }
          const since = this.idleSince.get(c.id)
          if (since == null) this.idleSince.set(c.id, now)
          else if (now - since >= idle) {
            this.idleSince.delete(c.id)
            this.refusals?.note(
              'idle',
              { peer: c.remotePeer.toString(), ip: hostOf(c.remoteAddr) },
              `connection closed: no stream for ${idle} ms (--idle-timeout-ms)`
            )
            c.abort(new Error('idle connection closed'))
          }
        }
        for (const id of this.idleSince.keys()) if (!live.has(id)) this.idleSince.delete(id)
      },
      Math.max(50, Math.floor(idle / 4))
    )
    this.sweep.unref()
  }

  stop(): void {
    if (this.sweep != null) clearInterval(this.sweep)
    this.sweep = undefined
    this.idleSince.clear()
  }
}

function hostOf(addr: Multiaddr | undefined): string | undefined {
  if (addr == null) return undefined
  try {
    const c = multiaddr(addr.toString()).getComponents()[0]
    return c.code === 4 || c.code === 41 ? c.value : undefined
  } catch {
    return undefined
  }
}
