// The router's wire client: one libp2p host, long-lived connections, one reusable pipelined
// expert stream per peer (reopened when it closes), and the one-shot info protocol.
import type { Libp2p, PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { EXPERT_PROTOCOL, INFO_PROTOCOL, MAX_INFO_FRAME_BYTES } from '../protocol/constants.js'
import { InfoRequest, type InfoResponse } from '../protocol/expert.js'
import { decodeInfo } from '../protocol/codec.js'
import { encodeFrame } from '../protocol/framing.js'
import { readOneFrame } from '../protocol/stream.js'
import { ExpertChannel } from './channel.js'
import { NO_BUSY_POLL, type BusyPoll } from '../protocol/busy-poll.js'
import { isDirect } from '../protocol/transport.js'

export interface WireClientOptions {
  /** Dial + protocol negotiation budget. @default 5000 */
  dialTimeoutMs?: number
  /** Shared by every expert channel: polls while any call is in flight. @default none */
  poll?: BusyPoll
}

export class WireClient {
  private readonly channels = new Map<string, Promise<ExpertChannel>>()
  /** Channels opened over a relay: moved to the direct connection once DCUtR made one. */
  private readonly relayed = new WeakSet<ExpertChannel>()
  private readonly paths = new Map<string, 'direct' | 'relayed'>()
  private readonly addrs = new Map<string, Multiaddr[]>()
  private readonly dialTimeoutMs: number
  private readonly poll: BusyPoll

  constructor(
    readonly libp2p: Libp2p,
    opts: WireClientOptions = {}
  ) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 5000
    this.poll = opts.poll ?? NO_BUSY_POLL
  }

  /** Remembers where a peer listens (addresses with /p2p/<id>). */
  addPeer(peerId: string, addrs: string[]): void {
    this.addrs.set(
      peerId,
      addrs.map((a) => multiaddr(a))
    )
  }

  /** Asks a peer what it serves. `target`: a multiaddr with /p2p/<id>. */
  async info(
    target: string,
    opts: { signal?: AbortSignal } = {}
  ): Promise<{ peerId: string; info: InfoResponse }> {
    const ma = multiaddr(target)
    // the last /p2p/ part: a relayed address names the relay first (…/p2p/<relay>/p2p-circuit/p2p/<node>)
    const id = ma
      .getComponents()
      .filter((c) => c.name === 'p2p')
      .pop()?.value
    if (id == null) throw new Error(`peer address ${target} has no /p2p/<PeerId> part`)
    const signal = opts.signal ?? AbortSignal.timeout(this.dialTimeoutMs * 2)
    const stream = await this.libp2p.dialProtocol(ma, INFO_PROTOCOL, {
      signal,
      runOnLimitedConnection: true // a node only reachable through a relay (docs/network.md)
    })
    stream.send(encodeFrame(InfoRequest.encode({})))
    const frame = await readOneFrame(stream, MAX_INFO_FRAME_BYTES, { signal })
    await stream.close().catch(() => {})
    // noise authenticated the remote as `id` (a dial to the wrong key fails)
    this.addPeer(id, [target])
    return { peerId: id, info: decodeInfo(frame) }
  }

  /** The open expert channel to `peer`, opening a stream (and a connection) when needed. */
  async channel(peer: string): Promise<ExpertChannel> {
    const existing = this.channels.get(peer)
    if (existing != null) {
      const ch = await existing.catch(() => null)
      if (ch?.isOpen === true && !(this.relayed.has(ch) && this.hasDirect(peer))) return ch
      if (this.channels.get(peer) === existing) this.channels.delete(peer)
      if (ch?.isOpen === true) this.retire(ch)
    }
    const opening = this.open(peer)
    this.channels.set(peer, opening)
    opening.catch(() => {
      if (this.channels.get(peer) === opening) this.channels.delete(peer)
    })
    return await opening
  }

  private async open(peer: string): Promise<ExpertChannel> {
    const target: PeerId | Multiaddr[] = this.addrs.get(peer) ?? peerIdFromString(peer)
    const stream = await this.libp2p.dialProtocol(target, EXPERT_PROTOCOL, {
      signal: AbortSignal.timeout(this.dialTimeoutMs),
      // the protocol id travels with the first request (saves a round trip; docs/toolchain.md)
      negotiateFully: false,
      // a relayed connection is limited (docs/network.md#relays): calls may run on it until
      // DCUtR has upgraded it, then channel() moves them to the direct connection
      runOnLimitedConnection: true
    })
    const ch = new ExpertChannel(stream, { poll: this.poll })
    const relayed = !this.hasDirect(peer)
    if (relayed) this.relayed.add(ch)
    this.paths.set(peer, relayed ? 'relayed' : 'direct')
    return ch
  }

  /** Whether the latest expert channel to `peer` runs through a relay or directly. */
  pathOf(peer: string): 'direct' | 'relayed' | undefined {
    return this.paths.get(peer)
  }

  /** Whether a direct (not relayed) connection to `peer` is open. */
  hasDirect(peer: string): boolean {
    return this.libp2p
      .getConnections(peerIdFromString(peer))
      .some((c) => c.status === 'open' && isDirect(c))
  }

  /** Closes a replaced relayed channel once its calls have been answered (at most 30 s later). */
  private retire(ch: ExpertChannel): void {
    const t0 = Date.now()
    const check = (): void => {
      if (ch.inFlight === 0 || Date.now() - t0 > 30_000) void ch.close().catch(() => {})
      else setTimeout(check, 50).unref()
    }
    check()
  }

  /** Drops a peer's channel (after a failure) so the next call opens a fresh one. */
  drop(peer: string): void {
    const ch = this.channels.get(peer)
    this.channels.delete(peer)
    void ch?.then(
      (c) => {
        c.abort(new Error('dropped after failure'))
      },
      () => {}
    )
  }

  async close(): Promise<void> {
    const all = [...this.channels.values()]
    this.channels.clear()
    await Promise.all(
      all.map(async (p) => {
        await (await p.catch(() => null))?.close().catch(() => {})
      })
    )
  }
}
