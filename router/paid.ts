// The paying router: nodes come from the on-chain registry (stake- and price-aware selection per
// shard), each node's PeerId binding is verified before it is dialled, and every expert call
// carries a cumulative voucher priced at that node's on-chain price × rows.
import { MaxUint256, formatUnits, getAddress, hexlify, randomBytes, type Signer } from 'ethers'
import type { Logger } from 'pino'
import type { PovContracts } from '../chain/contracts.js'
import { verifyPeerBinding, publicKeyFromPeerIdBytes } from '../chain/peer-binding.js'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { readVoucherDomain } from '../protocol/voucher.js'
import { voucherToWire } from '../protocol/payment.js'
import type { WireDType } from '../protocol/codec.js'
import { NoPeerAnsweredError, Router } from './router.js'
import { Payer } from './payer.js'
import { SpotChecker, type SpotCheckOptions } from './spot-check.js'

export interface PaidNode {
  operator: string
  peerId: string
  price: bigint
  stake: bigint
  shards: number[]
  addrs: string[]
  /** 0x PeerId bytes and binding signature as registered (fault evidence carries them). */
  peerIdBytes: string
  peerSignature: string
}

export interface PaidRouterOptions {
  contracts: PovContracts
  chainId: number
  registryAddress: string
  signer: Signer
  modelId: string
  hidden: number
  shardCount: number
  /** Nodes per shard (replicas for failover). @default 2 — a retry needs a second replica */
  replicas?: number
  /** Highest price per unit accepted. @default no cap */
  maxPrice?: bigint
  /** Seed of the on-chain weighted selection. @default random per run, so load spreads */
  seed?: string
  wireDType?: WireDType
  callTimeoutMs?: number
  /** @default DEFAULT_ROUTER_BUSY_POLL_US (RouterOptions.busyPollUs) */
  busyPollUs?: number
  /** Where the payer's cumulative amounts persist across runs. */
  ledgerPath?: string
  /**
   * Sees every expert call's charge before its payment is made, in the async context of the
   * generation that makes the call (so a gateway can attribute and cap cost per request).
   * Throwing refuses the payment, and the call fails with that error.
   */
  onCharge?: (c: { operator: string; peerId: string; amount: bigint; units: number }) => void
  /**
   * Spot re-execution (router/spot-check.ts); replicas are told apart by operator address and
   * evidence carries each node's registry binding. @default none
   */
  verify?: Omit<SpotCheckOptions, 'modelId' | 'operatorOf' | 'bindingOf'>
  logger?: Logger
}

export class PaymentSetupError extends Error {
  override name = 'PaymentSetupError'
}

export interface PaidRouter {
  router: Router
  spotCheck?: SpotChecker
  payer: Payer
  nodes: Map<string, PaidNode>
  /** Per node: what this run paid it. */
  costs(): Array<PaidNode & { amount: bigint; calls: number; units: number }>
  close(): Promise<void>
}

/** Finds, verifies and selects nodes for every shard; throws PaymentSetupError saying what to do. */
export async function selectPaidNodes(o: PaidRouterOptions): Promise<Map<string, PaidNode>> {
  const { registry, models } = o.contracts
  if (!(await models.isApproved(o.modelId)))
    throw new PaymentSetupError(
      `model ${o.modelId} is not approved on-chain — see \`pov audit\` for approved models`
    )
  const seed = o.seed ?? hexlify(randomBytes(32))
  const maxPrice = o.maxPrice ?? MaxUint256
  const k = o.replicas ?? 2
  const nodes = new Map<string, PaidNode>()
  const byOperator = new Map<string, PaidNode>()
  const rejected = new Set<string>()
  for (let shard = 0; shard < o.shardCount; shard++) {
    const picked = await registry.selectNodes(o.modelId, shard, seed, maxPrice, k)
    let usable = 0
    for (const n of picked) {
      const operator = getAddress(n.operator)
      if (rejected.has(operator)) continue
      let node = byOperator.get(operator)
      if (node == null) {
        const ok = await verifyPeerBinding(
          { chainId: o.chainId, registry: o.registryAddress, operator },
          n.peerId,
          n.peerSignature
        )
        if (!ok) {
          o.logger?.warn({ operator }, 'registered PeerId binding does not verify; node skipped')
          rejected.add(operator)
          continue
        }
        const peerId = peerIdFromPublicKey(publicKeyFromPeerIdBytes(n.peerId)).toString()
        node = {
          operator,
          peerId,
          price: BigInt(n.price),
          stake: BigInt(n.stake),
          shards: [],
          addrs: n.multiaddrs.map((a) => `${a}/p2p/${peerId}`),
          peerIdBytes: hexlify(n.peerId),
          peerSignature: hexlify(n.peerSignature)
        }
        nodes.set(peerId, node)
        byOperator.set(operator, node)
      }
      node.shards.push(shard)
      usable++
    }
    if (usable === 0) {
      const active = ((await registry.activeNodes(o.modelId, shard)) as unknown[]).length
      throw new PaymentSetupError(
        active === 0
          ? `no active node serves shard ${shard} of model ${o.modelId} — wait for operators to register it`
          : `no node serves shard ${shard} of model ${o.modelId} under the max price of ${formatUnits(maxPrice, 18)} POV per unit (${active} active above it) — raise --max-price or wait`
      )
    }
    if (usable < k)
      o.logger?.warn(
        { shard, replicas: usable },
        'fewer replicas than asked for; a failure of that node cannot be retried'
      )
  }
  return nodes
}

export async function openPaidRouter(o: PaidRouterOptions): Promise<PaidRouter> {
  const payerAddress = getAddress(await o.signer.getAddress())
  const [balance, unlockAt] = await o.contracts.escrow.depositOf(payerAddress)
  if (balance === 0n)
    throw new PaymentSetupError(
      `no deposit in escrow for ${payerAddress} — run \`pov deposit AMOUNT\` first`
    )
  if (unlockAt !== 0n)
    throw new PaymentSetupError(
      `the escrow deposit of ${payerAddress} is unlocking, and nodes refuse new work from it — run \`pov cancel-unlock\` to keep using it`
    )
  const nodes = await selectPaidNodes(o)
  const domain = await readVoucherDomain(o.contracts.escrow)
  const payer = await Payer.create({
    signer: o.signer,
    domain,
    paidOnChain: async (p, payee) => BigInt(await o.contracts.escrow.paid(p, payee)),
    ledgerPath: o.ledgerPath
  })
  const unreachable = (why: string): PaymentSetupError =>
    new PaymentSetupError(
      `none of the ${nodes.size} selected nodes answered (${why}) — they may be down or unreachable; retry later or raise --replicas`
    )
  const operatorOf = (peer: string): string => nodes.get(peer)?.operator ?? peer
  const spotCheck =
    o.verify != null
      ? new SpotChecker({
          ...o.verify,
          modelId: o.modelId,
          operatorOf,
          bindingOf: (peer) => {
            const n = nodes.get(peer)
            return n == null
              ? undefined
              : {
                  chainId: String(o.chainId),
                  registry: getAddress(o.registryAddress),
                  operator: n.operator,
                  peerIdBytes: n.peerIdBytes,
                  peerSignature: n.peerSignature
                }
          }
        })
      : undefined
  let router: Router
  try {
    router = await Router.init({
      opts: {
        spotCheck,
        operatorOf,
        peers: [...nodes.values()].map((n) => n.addrs[0]),
        modelId: o.modelId,
        hidden: o.hidden,
        wireDType: o.wireDType,
        callTimeoutMs: o.callTimeoutMs,
        busyPollUs: o.busyPollUs,
        attachPayment: async ({ peer, rows }) => {
          const n = nodes.get(peer)
          if (n == null) throw new Error(`peer ${peer} is not a selected registered node`)
          const amount = n.price * BigInt(rows)
          o.onCharge?.({ operator: n.operator, peerId: peer, amount, units: rows })
          return voucherToWire(await payer.voucherFor(n.operator, amount, rows))
        }
      },
      logger: o.logger
    })
  } catch (err) {
    if (err instanceof NoPeerAnsweredError) {
      const who = new Map([...nodes.values()].map((n) => [n.addrs[0], n.operator]))
      throw unreachable(
        err.problems.map((p) => `operator ${who.get(p.split(': ')[0]) ?? '?'} at ${p}`).join('; ')
      )
    }
    throw unreachable((err as Error).message)
  }
  if (router.routes.table.peers.size === 0) {
    await router.close()
    throw unreachable('no node reachable')
  }
  return {
    router,
    spotCheck,
    payer,
    nodes,
    costs: () => {
      const spent = payer.spent()
      return [...nodes.values()].map((n) => ({
        ...n,
        ...(spent.get(n.operator) ?? { amount: 0n, calls: 0, units: 0 })
      }))
    },
    close: async () => {
      await router.close()
      await payer.flush()
    }
  }
}
