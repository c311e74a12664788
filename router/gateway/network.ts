// The network view behind the web page's "Network" tab and GET /v1/pov/network: for each served
// model the active nodes per shard (stake, price, announce addresses) from the registry, a
// round trip measured to each (a /pov/info request over the gateway's libp2p host, the one its
// routers call experts on: the connection measured is the one calls use), each operator's
// earnings from the escrow, what this gateway paid it, and the recent governance events.
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { formatUnits, getAddress, type LogDescription } from 'ethers'
import { combinedInterface } from '../../chain/contracts.js'
import { publicKeyFromPeerIdBytes } from '../../chain/peer-binding.js'
import { WireClient } from '../client.js'
import type { GatewayService } from './service.js'
import { activeNodesPaged } from '../../chain/registry-pages.js'

export interface NetworkNode {
  operator: string
  peerId: string
  shards: number[]
  stake: string
  price: string
  addrs: string[]
  /** Milliseconds for one /pov/info round trip on an open connection; null when it did not answer. */
  rttMs: number | null
  /** Credited by redeemed vouchers (net of fee), and withdrawn, from the escrow. */
  earned: string
  withdrawn: string
  /** What this gateway's vouchers promised it since the gateway started. */
  paidByGateway: string
  /** What is left in the gateway payer's escrow lane to this operator. */
  lane: string
}

export interface NetworkView {
  chainId: number
  payer: { address: string; escrow: string; unlocking: boolean; spent: string }
  models: Array<{
    id: string
    modelId: string
    name: string
    shards: Array<{ shard: number; nodes: string[] }>
    nodes: NetworkNode[]
  }>
  governance: Array<{ block: number; tx: string; contract: string; event: string; summary: string }>
  /** Amounts are POV decimal strings. */
  unit: 'POV'
}

const pov = (wei: bigint): string => formatUnits(wei, 18)

export class NetworkProbe {
  private client: WireClient | null = null
  private cached: { at: number; view: Promise<NetworkView> } | null = null

  constructor(
    private readonly service: GatewayService,
    private readonly opts: { ttlMs?: number; probeTimeoutMs?: number } = {}
  ) {}

  /** The view, rebuilt at most every ttlMs (default 5 s) however many pages poll it. */
  async view(): Promise<NetworkView> {
    const now = Date.now()
    if (this.cached == null || now - this.cached.at > (this.opts.ttlMs ?? 5000)) {
      const v = this.build()
      this.cached = { at: now, view: v }
      v.catch(() => {
        this.cached = null
      })
    }
    return await this.cached.view
  }

  /** Info requests over the gateway's host (no expert streams: those are the routers'). */
  private probeClient(): WireClient {
    this.client ??= new WireClient(this.service.host)
    return this.client
  }

  private async rtt(addr: string): Promise<number | null> {
    const client = this.probeClient()
    const timeout = this.opts.probeTimeoutMs ?? 3000
    try {
      // the first request pays for the dial and handshake; the second is the round trip
      await client.info(addr, { signal: AbortSignal.timeout(timeout) })
      const t0 = performance.now()
      await client.info(addr, { signal: AbortSignal.timeout(timeout) })
      return Math.round((performance.now() - t0) * 100) / 100
    } catch {
      return null
    }
  }

  private async build(): Promise<NetworkView> {
    const s = this.service
    const { contracts, chainId, provider, deployment } = s.chain
    const [balance, unlockAt] = await contracts.escrow.depositOf(s.payer)
    const models: NetworkView['models'] = []
    for (const m of s.models.values()) {
      const byOperator = new Map<string, NetworkNode>()
      const shards: NetworkView['models'][number]['shards'] = []
      const shardCount = m.bundle.manifest.shards.length
      const lists = await Promise.all(
        Array.from(
          { length: shardCount },
          async (_, shard) => await activeNodesPaged(contracts.registry, m.modelId, shard)
        )
      )
      lists.forEach((list, shard) => {
        const ops: string[] = []
        for (const n of list) {
          const operator = getAddress(n.operator)
          ops.push(operator)
          if (byOperator.has(operator)) continue
          let peerId = ''
          try {
            peerId = peerIdFromPublicKey(publicKeyFromPeerIdBytes(n.peerId)).toString()
          } catch {}
          byOperator.set(operator, {
            operator,
            peerId,
            shards: n.shards.map(Number),
            stake: pov(BigInt(n.stake)),
            price: pov(BigInt(n.price)),
            addrs: [...n.multiaddrs],
            rttMs: null,
            earned: '0',
            withdrawn: '0',
            paidByGateway: pov(s.paidTo.get(operator) ?? 0n),
            lane: '0'
          })
        }
        shards.push({ shard, nodes: ops })
      })
      const nodes = [...byOperator.values()]
      await Promise.all(
        nodes.map(async (n) => {
          const [[earned, withdrawn], [lane]] = await Promise.all([
            contracts.escrow.earningsOf(n.operator),
            contracts.escrow.laneOf(s.payer, n.operator)
          ])
          n.lane = pov(BigInt(lane))
          n.earned = pov(BigInt(earned))
          n.withdrawn = pov(BigInt(withdrawn))
          if (n.peerId !== '' && n.addrs.length > 0)
            n.rttMs = await this.rtt(`${n.addrs[0]}/p2p/${n.peerId}`)
        })
      )
      models.push({ id: m.id, modelId: m.modelId, name: m.name, shards, nodes })
    }
    return {
      chainId,
      payer: {
        address: s.payer,
        escrow: pov(BigInt(balance)),
        unlocking: BigInt(unlockAt) !== 0n,
        spent: pov(s.spent)
      },
      models,
      governance: await governanceEvents(
        provider,
        { ...deployment.contracts },
        deployment.startBlock
      ),
      unit: 'POV'
    }
  }

  async close(): Promise<void> {
    const c = this.client
    this.client = null
    await c?.close() // the host is the gateway's: it stops it
  }
}

const GOVERNANCE_EVENTS = new Set([
  'ProposalCreated',
  'VoteCast',
  'ProposalQueued',
  'ProposalExecuted',
  'ProposalCanceled',
  'ModelApproved',
  'ModelRevoked',
  'Slashed',
  'MinStakeSet',
  'UnbondingPeriodSet',
  'FeeBpsSet',
  'UnlockPeriodSet'
])

/** The last `limit` governance-related events (newest first) with a one-line summary each. */
async function governanceEvents(
  provider: GatewayService['chain']['provider'],
  addresses: Record<string, string>,
  fromBlock: number,
  limit = 20
): Promise<NetworkView['governance']> {
  const names = new Map(Object.entries(addresses).map(([k, a]) => [getAddress(a), k]))
  const logs = await provider.getLogs({
    address: Object.values(addresses),
    fromBlock,
    toBlock: 'latest'
  })
  const iface = combinedInterface()
  const out: NetworkView['governance'] = []
  for (const log of logs) {
    let d: LogDescription | null = null
    try {
      d = iface.parseLog(log)
    } catch {}
    if (d == null || !GOVERNANCE_EVENTS.has(d.name)) continue
    out.push({
      block: log.blockNumber,
      tx: log.transactionHash,
      contract: names.get(getAddress(log.address)) ?? log.address,
      event: d.name,
      summary: summarize(d)
    })
  }
  return out.reverse().slice(0, limit)
}

function summarize(d: LogDescription): string {
  const a = d.args
  const id = (x: unknown): string => `${String(x).slice(0, 10)}…`
  switch (d.name) {
    case 'ProposalCreated':
      return `proposal ${id(a.proposalId)} by ${String(a.proposer)}: ${String(a.description).split('\n')[0]}`
    case 'VoteCast':
      return `${String(a.voter)} voted ${['against', 'for', 'abstain'][Number(a.support)] ?? a.support} on ${id(a.proposalId)} with ${pov(BigInt(a.weight))} POV`
    case 'ProposalQueued':
    case 'ProposalExecuted':
    case 'ProposalCanceled':
      return `proposal ${id(a.proposalId)} ${d.name.slice(8).toLowerCase()}`
    case 'ModelApproved':
      return `model ${String(a.name)} (${id(a.modelId)}) approved`
    case 'ModelRevoked':
      return `model ${id(a.modelId)} revoked`
    case 'Slashed':
      return `${String(a.operator)} slashed ${pov(BigInt(a.amount))} POV: ${String(a.reason)}`
    default:
      // the parameter setters: (old value, new value)
      return a.length === 2
        ? `${String(a[0])} → ${String(a[1])}`
        : a.map((x) => String(x)).join(', ')
  }
}
