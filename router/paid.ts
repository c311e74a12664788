// The paying router: nodes come from the on-chain registry (stake- and price-aware selection per
// shard), each node's PeerId binding is verified before it is dialled, the client's deposit is
// allocated to a lane per selected node (PovEscrow.allocate, one transaction at setup), and every
// expert call carries a cumulative voucher priced at that node's on-chain price × rows — signed
// ahead by `prepayUnits` of work, so steady decoding makes no chain call and about one signature
// per node per generated token.
import { MaxUint256, formatUnits, getAddress, hexlify, randomBytes, type Signer } from 'ethers'
import type { Logger } from 'pino'
import type { PovContracts } from '../chain/contracts.js'
import { verifyPeerBinding, publicKeyFromPeerIdBytes } from '../chain/peer-binding.js'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { readVoucherDomain } from '../protocol/voucher.js'
import { voucherToWire } from '../protocol/payment.js'
import { Status, UNDERPAID } from '../protocol/errors.js'
import type { WireDType } from '../protocol/codec.js'
import { NoPeerAnsweredError, Router, type RouterOptions } from './router.js'
import type { RemoteExecutorOptions } from './remote-executor.js'
import { ChainDirectory, type DirectoryChange, type DirectoryNode } from './directory.js'
import { activeNodesPaged, stakeWeightedOrder } from '../chain/registry-pages.js'
import { Payer, type Payment } from './payer.js'
import { SpotChecker, type SpotCheckOptions } from './spot-check.js'

/** A registered node as the paid router uses it: the directory's view of it. */
export type PaidNode = DirectoryNode

export interface PaidRouterOptions {
  contracts: PovContracts
  chainId: number
  registryAddress: string
  signer: Signer
  modelId: string
  hidden: number
  shardCount: number
  /** Nodes per shard (replicas for failover); following the registry, the fewest expected before a warning. @default 2 — a retry needs a second replica */
  replicas?: number
  /** Highest price per unit accepted. @default no cap */
  maxPrice?: bigint
  /**
   * Only nodes of these operators are selected, paid and sent hidden states (a swarm of trusted
   * operators: docs/client.md, what a node learns of a prompt). @default every registered one
   */
  operators?: string[]
  /** Seed of the on-chain weighted selection. @default random per run, so load spreads */
  seed?: string
  wireDType?: WireDType
  callTimeoutMs?: number
  /** @default DEFAULT_ROUTER_BUSY_POLL_US (RouterOptions.busyPollUs) */
  busyPollUs?: number
  /** Listen addresses, so nodes behind NAT can upgrade relayed connections (RouterOptions.listen). @default none */
  listen?: string[]
  /** A host to run on, lent by its owner (RouterOptions.libp2p; `listen` is then the host's). @default one of its own */
  libp2p?: RouterOptions['libp2p']
  /**
   * The bundle's shard map (`manifest.shards[i].experts`). Given, the router follows the
   * registry (router/directory.ts): every active node under `maxPrice` is a candidate, chosen per
   * call by measured latency, and joins and leaves reach it while it runs. Without it,
   * `replicas` nodes per shard are sampled once at start (stake-weighted `selectNodes`).
   */
  shardExperts?: ReadonlyArray<Array<[number, number]>>
  /** How often the registry is asked for changes when following it. @default 2000 */
  refreshMs?: number
  /** Retries, hedging and observers of expert calls. */
  calls?: RouterOptions['calls']
  /** Where the payer's cumulative amounts persist across runs. */
  ledgerPath?: string
  /**
   * Sees every expert call's charge before its payment is made, in the async context of the
   * generation that makes the call (so a gateway can attribute and cap cost per request).
   * Throwing refuses the payment, and the call fails with that error; a returned promise is
   * awaited first (a lane being topped up), and its rejection refuses the payment too.
   */
  onCharge?: (c: CallCharge) => void | Promise<void>
  /**
   * Sees a charge taken back: the node refused or failed the call, so it is not owed (the
   * payer's cumulative amount is rolled back too). Called at most once per charge.
   */
  onRefund?: (c: CallCharge) => void
  /**
   * Spot re-execution (router/spot-check.ts); replicas are told apart by operator address and
   * evidence carries each node's registry binding. @default none
   */
  verify?: Omit<SpotCheckOptions, 'modelId' | 'operatorOf' | 'bindingOf'>
  /**
   * Units of work a new voucher prepays beyond what is owed (the client's risk per node: this
   * × the node's price). One decode token of one sequence costs a node at most layers × top-k
   * units. @default 64 (Mixtral 8x7B: 32 layers × top-2)
   */
  prepayUnits?: number
  /**
   * What each selected node's lane should hold before the run (POV wei); lanes below it are
   * topped up from the unallocated deposit. @default the unallocated deposit split evenly over
   * the selected nodes
   */
  laneAmount?: bigint
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
  /**
   * Chain JSON-RPC requests since setup ended on the payment path (`rpcCalls`: steady generation
   * makes none) and by the registry directory's background refresh (`directoryRpcCalls`: one
   * block-number read every refresh interval, plus the events and nodes it follows), voucher
   * signatures, payments refunded.
   */
  stats(): { rpcCalls: number; directoryRpcCalls: number; signatures: number; refunds: number }
  /** Per node: what this run paid it for served calls, and the margin its last voucher prepays. */
  costs(): Array<PaidNode & { amount: bigint; calls: number; units: number; prepaid: bigint }>
  close(): Promise<void>
}

/**
 * Finds, verifies and selects nodes for every shard; throws PaymentSetupError saying what to do.
 *
 * Per shard the registry's stake-weighted draw is asked for every eligible node: its order is the
 * draw sequence of `seed` (draw j is the same whatever k is asked), so taking the first `replicas`
 * nodes whose PeerId binding verifies is the same as drawing again, deterministically, each time
 * a drawn node is unusable. Nodes with junk bindings therefore cost an attacker its stake and take
 * no slot from a serving node.
 */
export async function selectPaidNodes(o: PaidRouterOptions): Promise<Map<string, PaidNode>> {
  const { registry, models } = o.contracts
  if (!(await models.isApproved(o.modelId)))
    throw new PaymentSetupError(
      `model ${o.modelId} is not approved on-chain — see \`pov audit\` for approved models`
    )
  const seed = o.seed ?? hexlify(randomBytes(32))
  const maxPrice = o.maxPrice ?? MaxUint256
  const k = o.replicas ?? 2
  const trusted = o.operators == null ? null : new Set(o.operators.map((a) => getAddress(a)))
  const nodes = new Map<string, PaidNode>()
  const byOperator = new Map<string, PaidNode>()
  const rejected = new Set<string>()
  const short: Array<{ shard: number; replicas: number }> = []
  // every shard read at one block, so that the pages agree
  const head = await o.signer.provider?.getBlockNumber()
  for (let shard = 0; shard < o.shardCount; shard++) {
    // paged, and the draw redone here: activeNodes / selectNodes(k = all) grow with the shard
    const active = await activeNodesPaged(registry, o.modelId, shard, { blockTag: head })
    const drawn = stakeWeightedOrder(active, seed, maxPrice)
    let usable = 0
    let unverified = 0
    let outside = 0
    for (const n of drawn) {
      if (usable === k) break
      const operator = getAddress(n.operator)
      if (trusted != null && !trusted.has(operator)) {
        outside++
        continue
      }
      if (rejected.has(operator)) {
        unverified++
        continue
      }
      let node = byOperator.get(operator)
      if (node == null) {
        const ok = await verifyPeerBinding(
          { chainId: o.chainId, registry: o.registryAddress, operator },
          n.peerId,
          n.peerSignature
        ).catch(() => false)
        if (!ok) {
          o.logger?.warn(
            { operator, shard },
            'registered PeerId binding does not verify; node skipped, drawing again'
          )
          rejected.add(operator)
          unverified++
          continue
        }
        const peerId = peerIdFromPublicKey(publicKeyFromPeerIdBytes(n.peerId)).toString()
        if (nodes.has(peerId)) {
          // two operators cannot both hold a valid binding of one key: keep the first
          rejected.add(operator)
          unverified++
          continue
        }
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
      const priced = drawn.length
      throw new PaymentSetupError(
        outside > 0 && outside === priced
          ? `no node of the allowed operators (--operators) serves shard ${shard} of model ${o.modelId}: ${outside} of other operators do`
          : active.length === 0
            ? `no active node serves shard ${shard} of model ${o.modelId} — wait for operators to register it`
            : priced === 0
              ? `no node serves shard ${shard} of model ${o.modelId} under the max price of ${formatUnits(maxPrice, 18)} POV per unit (${active.length} active above it) — raise --max-price or wait`
              : `no node with a valid PeerId binding serves shard ${shard} of model ${o.modelId}: ${priced} active, all with bindings that do not verify (${unverified} skipped) — wait for honest operators to register it`
      )
    }
    if (usable < k) short.push({ shard, replicas: usable })
  }
  // one line for all of them (one per shard was a screenful on every run)
  if (short.length > 0)
    o.logger?.warn(
      { asked: k, short: short.length },
      `${short.length} of ${o.shardCount} shards have fewer than ${k} replicas (${short.map((s) => `shard ${s.shard}: ${s.replicas}`).join(', ')}); a failure of their node cannot be retried`
    )
  return nodes
}

/** Nodes asked at start whether the network answers at all (the first answer is enough). */
const PROBE_NODES = 16

/** The registry followed as a directory: approval checked, first full scan done, every shard served. */
async function openDirectory(o: PaidRouterOptions): Promise<ChainDirectory> {
  const { registry, models } = o.contracts
  if (!(await models.isApproved(o.modelId)))
    throw new PaymentSetupError(
      `model ${o.modelId} is not approved on-chain — see \`pov audit\` for approved models`
    )
  const provider = o.signer.provider
  if (provider == null)
    throw new PaymentSetupError('the signer has no provider to read the registry')
  const dir = new ChainDirectory({
    registry,
    provider,
    chainId: o.chainId,
    registryAddress: o.registryAddress,
    modelId: o.modelId,
    shardCount: o.shardCount,
    maxPrice: o.maxPrice,
    refreshMs: o.refreshMs,
    onWarn: (msg, fields) => o.logger?.warn(fields, msg)
  })
  await dir.fullScan()
  const served = new Map<number, number>()
  for (const n of dir.nodes.values())
    for (const s of n.shards) served.set(s, (served.get(s) ?? 0) + 1)
  const short: Array<[shard: number, replicas: number]> = []
  for (let shard = 0; shard < o.shardCount; shard++) {
    const n = served.get(shard) ?? 0
    if (n > 0 && n < (o.replicas ?? 2)) short.push([shard, n])
    if (n === 0)
      throw new PaymentSetupError(
        o.maxPrice == null
          ? `no active node serves shard ${shard} of model ${o.modelId} — wait for operators to register it`
          : `no node serves shard ${shard} of model ${o.modelId} under max price ${formatUnits(o.maxPrice, 18)} POV/unit — raise --max-price or wait`
      )
  }
  // one line for all shards (one per shard was a screenful on every run)
  if (short.length > 0)
    o.logger?.warn(
      { asked: o.replicas ?? 2, short: short.length },
      `${short.length} of ${o.shardCount} shards have fewer replicas than asked for (${short.map(([s, n]) => `shard ${s}: ${n}`).join(', ')}); a failure of their node cannot be retried`
    )
  return dir
}

export async function openPaidRouter(o: PaidRouterOptions): Promise<PaidRouter> {
  const payerAddress = getAddress(await o.signer.getAddress())
  const escrow = o.contracts.escrow
  const [free, unlockAt] = await escrow.depositOf(payerAddress)
  if (unlockAt !== 0n)
    throw new PaymentSetupError(
      `the escrow deposit of ${payerAddress} is unlocking, and nodes refuse new work from it — run \`pov cancel-unlock\` to keep using it`
    )
  if (o.operators != null && o.shardExperts != null)
    throw new PaymentSetupError(
      'an operator allow-list is not supported while following the registry'
    )
  const directory = o.shardExperts != null ? await openDirectory(o) : undefined
  const nodes = directory != null ? directory.byPeer() : await selectPaidNodes(o)
  const domain = await readVoucherDomain(escrow)
  const prepayUnits = BigInt(o.prepayUnits ?? 64)
  const priceOf = new Map([...nodes.values()].map((n) => [n.operator, n.price]))
  const payer = await Payer.create({
    signer: o.signer,
    domain,
    paidOnChain: async (p, payee) => BigInt(await escrow.paid(p, payee)),
    ledgerPath: o.ledgerPath,
    prepay: (payee) => (priceOf.get(payee) ?? 0n) * prepayUnits
  })
  // following the registry, half the free deposit stays unallocated for nodes that join later
  await fundLanes(
    directory != null ? { ...o, laneAmount: o.laneAmount ?? free / BigInt(2 * nodes.size) } : o,
    payer,
    [...nodes.values()],
    free
  )
  await payer.prepare([...nodes.values()].map((n) => n.operator))
  // every JSON-RPC request from here on is counted: steady generation should make none
  const provider = o.contracts.escrow.runner?.provider as
    | {
        on?: (e: string, f: (x: unknown) => void) => unknown
        off?: (e: string, f: (x: unknown) => void) => unknown
      }
    | undefined
  let rpcCalls = 0
  const directoryAtStart = directory?.stats.requests ?? 0
  const onDebug = (e: unknown): void => {
    const d = e as { action?: string; payload?: unknown }
    if (d.action === 'sendRpcPayload') rpcCalls += Array.isArray(d.payload) ? d.payload.length : 1
  }
  void provider?.on?.('debug', onDebug)
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
          chargeOf: (peer, rows) => {
            const n = nodes.get(peer)
            return n == null ? undefined : n.price * BigInt(rows)
          },
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
        listen: o.listen,
        libp2p: o.libp2p,
        directory:
          directory != null && o.shardExperts != null
            ? {
                source: directory,
                shardExperts: o.shardExperts,
                // a node that joined is used once its lane is funded
                admit: (n) => nodes.has(n.peerId)
              }
            : undefined,
        // a restarting node's replicas may all be benched for a moment: wait rather than degrade
        calls: { unavailableWaitMs: 10_000, ...o.calls },
        ...paymentHooks(payer, nodes, o.logger, o.onCharge, o.onRefund)
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
  if (directory != null) {
    // nothing was dialled yet: one node answering (of a few, asked at once) says the network is there
    const sample = [...nodes.values()].sort(() => Math.random() - 0.5).slice(0, PROBE_NODES)
    try {
      await Promise.any(
        sample.map(
          async (n) => await router.client.info(n.addrs[0], { signal: AbortSignal.timeout(10_000) })
        )
      )
    } catch (err) {
      await router.close()
      const errs = (err as AggregateError).errors as Error[]
      throw unreachable(
        sample
          .map((n, i) => `operator ${n.operator} at ${n.addrs[0]}: ${errs[i]?.message}`)
          .join('; ')
      )
    }
    const r = router
    let following = Promise.resolve()
    directory.onChange((c) => {
      following = following.then(async () => {
        await followDirectory(o, payer, nodes, priceOf, c)
        r.refreshRoutes()
      })
    })
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
        ...(spent.get(n.operator) ?? { amount: 0n, calls: 0, units: 0 }),
        prepaid: payer.prepaid(n.operator)
      }))
    },
    stats: () => {
      const st = payer.stats()
      const directoryRpcCalls = (directory?.stats.requests ?? 0) - directoryAtStart
      return {
        rpcCalls: rpcCalls - directoryRpcCalls,
        directoryRpcCalls,
        signatures: st.signatures,
        refunds: st.refunds
      }
    },
    close: async () => {
      void provider?.off?.('debug', onDebug)
      await router.close()
      await payer.flush()
    }
  }
}

/**
 * Keeps `nodes` (what the router may call and pay) in step with the registry: leavers go at once;
 * a node that joined is added once its lane is funded (half of what is still unallocated, split
 * over the newcomers) and its voucher stream prepared. A failure leaves the newcomer unused.
 */
async function followDirectory(
  o: PaidRouterOptions,
  payer: Payer,
  nodes: Map<string, PaidNode>,
  priceOf: Map<string, bigint>,
  c: DirectoryChange
): Promise<void> {
  for (const n of c.left) nodes.delete(n.peerId)
  for (const n of c.changed)
    if (nodes.has(n.peerId)) {
      nodes.set(n.peerId, n)
      priceOf.set(n.operator, n.price)
    }
  const joined = c.joined.filter((n) => !nodes.has(n.peerId))
  if (joined.length === 0) return
  try {
    const [free] = await o.contracts.escrow.depositOf(payer.address)
    for (const n of joined) priceOf.set(n.operator, n.price)
    await fundLanes({ ...o, laneAmount: free / BigInt(2 * joined.length) }, payer, joined, free)
    await payer.prepare(joined.map((n) => n.operator))
    for (const n of joined) nodes.set(n.peerId, n)
    o.logger?.info({ joined: joined.length }, 'nodes that joined the registry are in use')
  } catch (err) {
    o.logger?.warn(
      { err: (err as Error).message, joined: joined.map((n) => n.operator) },
      'could not fund lanes for nodes that joined; they stay unused'
    )
  }
}

/**
 * Tops up the lane of every selected node to `laneAmount` (default: the unallocated deposit split
 * evenly) in one `allocate` transaction; a lane's room is what it holds beyond the vouchers this
 * client already signed to that node and that were not redeemed yet.
 */
async function fundLanes(
  o: PaidRouterOptions,
  payer: Payer,
  nodes: PaidNode[],
  free: bigint
): Promise<void> {
  const escrow = o.contracts.escrow
  const me = payer.address
  const rooms = await Promise.all(
    nodes.map(async (n) => {
      const [balance, paid] = await escrow.laneOf(me, n.operator)
      const owed = payer.signedFor(n.operator) - BigInt(paid)
      return BigInt(balance) - (owed > 0n ? owed : 0n)
    })
  )
  const target = o.laneAmount ?? free / BigInt(nodes.length)
  const payees: string[] = []
  const amounts: bigint[] = []
  let left = free
  nodes.forEach((n, i) => {
    const want = target - rooms[i]
    const give = want < left ? want : left
    if (give > 0n) {
      payees.push(n.operator)
      amounts.push(give)
      left -= give
    }
  })
  if (payees.length === 0) {
    if (rooms.every((r) => r <= 0n))
      throw new PaymentSetupError(
        `no deposit in escrow for ${me} — run \`pov deposit AMOUNT\` first`
      )
    return
  }
  const tx = await (escrow.connect(o.signer) as typeof escrow).allocate(payees, amounts)
  await tx.wait()
  o.logger?.info(
    {
      lanes: payees.length,
      amount: `${formatUnits(
        amounts.reduce((a, b) => a + b, 0n),
        18
      )} POV`
    },
    'allocated the deposit to the selected nodes'
  )
}

/** One expert call's charge; `requestId` (the call's) matches a refund with its charge. */
export interface CallCharge {
  operator: string
  peerId: string
  amount: bigint
  units: number
  requestId: bigint
}

/**
 * The router's payment step for `nodes` (keyed by PeerId): each call is paid through `payer`, and
 * a call the node refused or failed is refunded (not owed) and logged with the node's reason.
 */
export function paymentHooks(
  payer: Payer,
  nodes: Map<string, Pick<PaidNode, 'operator' | 'price'>>,
  logger?: Logger,
  onCharge?: PaidRouterOptions['onCharge'],
  onRefund?: PaidRouterOptions['onRefund']
): Required<Pick<RemoteExecutorOptions, 'attachPayment' | 'settlePayment'>> {
  const payments = new Map<bigint, { payment: Payment; charge: CallCharge }>()
  return {
    attachPayment: async ({ peer, rows, requestId }) => {
      const n = nodes.get(peer)
      if (n == null) throw new Error(`peer ${peer} is not a selected registered node`)
      const charge: CallCharge = {
        operator: n.operator,
        peerId: peer,
        amount: n.price * BigInt(rows),
        units: rows,
        requestId
      }
      // awaited only when it asks to wait: a synchronous check keeps calls in order
      const waiting = onCharge?.(charge)
      if (waiting != null) await waiting
      let p: Payment
      try {
        p = await payer.pay(n.operator, charge.amount, rows)
      } catch (err) {
        onRefund?.(charge) // no voucher went out: nothing is owed
        throw err
      }
      payments.set(requestId, { payment: p, charge })
      return voucherToWire(p.voucher)
    },
    settlePayment: ({ peer, requestId, ok, status, message, layer, expert }) => {
      const r = payments.get(requestId)
      payments.delete(requestId)
      if (ok) {
        r?.payment.delivered()
        return
      }
      // the node did not do the work: it is not paid for, and the user sees why
      if (r != null) {
        r.payment.refund()
        onRefund?.(r.charge)
      }
      // a restarted node counts our last voucher as spent whole: concede it once, sign above it
      if (
        r != null &&
        status === Status.PAYMENT_INVALID &&
        message.startsWith(UNDERPAID) &&
        payer.resync(r.charge.operator)
      )
        logger?.info(
          { operator: r.charge.operator, peer },
          'node counts the last voucher as spent (restarted?): the next voucher is signed above it'
        )
      logger?.warn(
        { operator: nodes.get(peer)?.operator, peer, layer, expert, status, reason: message },
        'node refused or failed a paid call (not charged)'
      )
    }
  }
}
