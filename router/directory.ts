// The registry as a peer directory that scales: a full scan reads `activeNodesPage` page by page
// (`activeNodes` costs ~45k gas per node and stops answering at a few hundred nodes per shard
// under a 16.78M eth_call gas cap), then the registry's events since the last block say which
// operators changed, and only those are read again (`nodeOf` + `isActive`). A refresh is one
// `eth_blockNumber` when nothing happened. Joins and leaves reach the router without a restart.
import { getAddress, hexlify, MaxUint256, type Provider } from 'ethers'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { ExpertRegistryContract } from '../chain/contracts.js'
import { publicKeyFromPeerIdBytes, verifyPeerBinding } from '../chain/peer-binding.js'
import { expertKey, type PeerRoute } from './routes.js'

export interface DirectoryNode {
  operator: string
  /** libp2p PeerId (base58), from the registered PeerId bytes. */
  peerId: string
  price: bigint
  stake: bigint
  shards: number[]
  /** Registered multiaddrs, each with /p2p/<peerId>. */
  addrs: string[]
  /** The registered PeerId bytes and binding signature, hex (evidence for fault reports). */
  peerIdBytes: string
  peerSignature: string
}

export interface DirectoryOptions {
  registry: ExpertRegistryContract
  provider: Provider
  chainId: number | bigint
  registryAddress: string
  modelId: string
  shardCount: number
  /** Nodes priced above this are left out (as `selectNodes` does). @default no cap */
  maxPrice?: bigint
  /** Nodes per `activeNodesPage` call: ~45k gas each, so 100 stays near 4.5M gas. @default 100 */
  pageSize?: number
  /** Blocks per `eth_getLogs` call (public RPCs cap the range). @default 5000 */
  logRange?: number
  /** Background refresh period. @default 2000 */
  refreshMs?: number
  /** A full rescan this often even without events (model approvals live in another contract). @default 300000 */
  fullScanMs?: number
  onWarn?: (msg: string, fields: Record<string, unknown>) => void
  now?: () => number
}

type NodeViewLike = Awaited<ReturnType<ExpertRegistryContract['nodeOf']>>

export interface DirectoryChange {
  joined: DirectoryNode[]
  left: DirectoryNode[]
  changed: DirectoryNode[]
}

export class ChainDirectory {
  /** operator -> node, active and within the price cap. */
  readonly nodes = new Map<string, DirectoryNode>()
  private readonly verified = new Map<string, boolean>()
  private readonly listeners: Array<(c: DirectoryChange) => void> = []
  private lastBlock = -1
  private lastFullScan = 0
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly pageSize: number
  private readonly maxPrice: bigint
  private readonly now: () => number
  /** Calls made to the chain by kind, for tests and the bench; `requests` counts every JSON-RPC
   *  request (the paid router leaves them out of its count of the payment path's chain calls). */
  readonly stats = { pages: 0, logQueries: 0, nodeReads: 0, fullScans: 0, requests: 0 }

  constructor(private readonly o: DirectoryOptions) {
    this.pageSize = o.pageSize ?? 100
    this.maxPrice = o.maxPrice ?? MaxUint256
    this.now = o.now ?? Date.now
  }

  /** Nodes by PeerId. */
  byPeer(): Map<string, DirectoryNode> {
    return new Map([...this.nodes.values()].map((n) => [n.peerId, n]))
  }

  onChange(cb: (c: DirectoryChange) => void): void {
    this.listeners.push(cb)
  }

  /** Reads every page of every shard, then remembers the block to follow events from. */
  async fullScan(): Promise<DirectoryChange> {
    this.stats.requests++ // counted when sent, so a refresh in flight is never the payment path's
    const head = await this.o.provider.getBlockNumber()
    const seen = new Map<string, NodeViewLike>()
    for (let shard = 0; shard < this.o.shardCount; shard++) {
      for (let offset = 0; ; offset += this.pageSize) {
        this.stats.requests++
        const [page, total] = await this.o.registry.activeNodesPage(
          this.o.modelId,
          shard,
          offset,
          this.pageSize,
          { blockTag: head }
        )
        this.stats.pages++
        for (const n of page) seen.set(getAddress(n.operator), n)
        if (BigInt(offset + this.pageSize) >= total) break
      }
    }
    this.stats.fullScans++
    this.lastFullScan = this.now()
    const next = new Map<string, DirectoryNode>()
    for (const [op, v] of seen) {
      const n = await this.accept(op, v)
      if (n != null) next.set(op, n)
    }
    this.lastBlock = head
    return this.replace(next, null)
  }

  /**
   * Follows the registry's events since the last block: operators named in them are read again.
   * A MinStakeSet event (or fullScanMs elapsed) means a full rescan.
   */
  async refresh(): Promise<DirectoryChange> {
    if (this.lastBlock < 0 || this.now() - this.lastFullScan >= (this.o.fullScanMs ?? 300_000))
      return await this.fullScan()
    this.stats.requests++
    const head = await this.o.provider.getBlockNumber()
    if (head <= this.lastBlock) return { joined: [], left: [], changed: [] }
    const touched = new Set<string>()
    const range = this.o.logRange ?? 5000
    for (let from = this.lastBlock + 1; from <= head; from += range) {
      this.stats.requests++
      const logs = await this.o.provider.getLogs({
        address: this.o.registryAddress,
        fromBlock: from,
        toBlock: Math.min(head, from + range - 1)
      })
      this.stats.logQueries++
      for (const log of logs) {
        const ev = this.o.registry.interface.parseLog(log)
        if (ev == null) continue
        if (ev.name === 'MinStakeSet') return await this.fullScan()
        const op = ev.args.getValue('operator') as string | undefined
        if (
          op != null &&
          (ev.name !== 'NodeRegistered' ||
            ev.args.getValue('modelId') === this.o.modelId ||
            this.nodes.has(getAddress(op)))
        )
          touched.add(getAddress(op))
      }
    }
    const next = new Map(this.nodes)
    for (const op of touched) {
      this.stats.requests += 2
      const [v, active] = await Promise.all([
        this.o.registry.nodeOf(op, { blockTag: head }),
        this.o.registry.isActive(op, { blockTag: head })
      ])
      this.stats.nodeReads++
      const n = active && v.modelId === this.o.modelId ? await this.accept(op, v) : null
      if (n == null) next.delete(op)
      else next.set(op, n)
    }
    this.lastBlock = head
    return this.replace(next, touched)
  }

  /** Refreshes every `refreshMs` in the background until stop(); errors are reported, not thrown. */
  start(): void {
    if (this.timer != null) return
    const tick = (): void => {
      this.running = this.refresh()
        .then(() => {})
        .catch((err: Error) => {
          this.o.onWarn?.('registry refresh failed; keeping the last table', { err: err.message })
        })
        .finally(() => {
          this.running = null
          if (this.timer != null) this.timer = setTimeout(tick, this.o.refreshMs ?? 2000)
        })
    }
    this.timer = setTimeout(tick, this.o.refreshMs ?? 2000)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = null
    await this.running
  }

  /** A node view as a directory entry: same model, within the price cap, binding verified. */
  private async accept(operator: string, v: NodeViewLike): Promise<DirectoryNode | null> {
    if (v.modelId !== this.o.modelId || BigInt(v.price) > this.maxPrice) return null
    const key = `${operator}|${v.peerId}|${v.peerSignature}`
    let ok = this.verified.get(key)
    if (ok == null) {
      ok = await verifyPeerBinding(
        { chainId: this.o.chainId, registry: this.o.registryAddress, operator },
        v.peerId,
        v.peerSignature
      ).catch(() => false)
      this.verified.set(key, ok)
      if (!ok)
        this.o.onWarn?.('registered PeerId binding does not verify; node skipped', { operator })
    }
    if (!ok) return null
    const peerId = peerIdFromPublicKey(publicKeyFromPeerIdBytes(v.peerId)).toString()
    return {
      operator,
      peerId,
      price: BigInt(v.price),
      stake: BigInt(v.stake),
      shards: v.shards.map(Number),
      addrs: v.multiaddrs.map((a) => `${a}/p2p/${peerId}`),
      peerIdBytes: hexlify(v.peerId),
      peerSignature: hexlify(v.peerSignature)
    }
  }

  private replace(next: Map<string, DirectoryNode>, touched: Set<string> | null): DirectoryChange {
    const c: DirectoryChange = { joined: [], left: [], changed: [] }
    for (const [op, n] of next) {
      const old = this.nodes.get(op)
      if (old == null) c.joined.push(n)
      else if ((touched == null || touched.has(op)) && !sameNode(old, n)) c.changed.push(n)
    }
    for (const [op, n] of this.nodes) if (!next.has(op)) c.left.push(n)
    this.nodes.clear()
    for (const [op, n] of next) this.nodes.set(op, n)
    if (c.joined.length + c.left.length + c.changed.length > 0) for (const l of this.listeners) l(c)
    return c
  }
}

function sameNode(a: DirectoryNode, b: DirectoryNode): boolean {
  return (
    a.peerId === b.peerId &&
    a.price === b.price &&
    a.stake === b.stake &&
    a.shards.join() === b.shards.join() &&
    a.addrs.join() === b.addrs.join()
  )
}

/** A directory node as a route: the (layer, expert) pairs of its shards, from the bundle's shard map. */
export function routeOf(
  n: DirectoryNode,
  shardExperts: ReadonlyArray<Array<[number, number]>>
): PeerRoute {
  const experts = new Set<number>()
  for (const s of n.shards) for (const [l, e] of shardExperts[s] ?? []) experts.add(expertKey(l, e))
  return { peerId: n.peerId, addrs: n.addrs, shards: n.shards, experts }
}
