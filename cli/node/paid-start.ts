// `pov node start --keystore DIR`: the node finds its own registration on-chain, checks that the
// bundle, PeerId and shards match it, and serves paid calls only (every request's voucher is
// verified and journaled before the expert runs).
import { formatUnits, getAddress, hexlify } from 'ethers'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { connectChain, formatPov, openKeystore, withSigner } from '../chain.js'
import { UserError } from '../errors.js'
import type { CommonCliOptions } from '../options.js'
import { redeemedEvents, voucherDir } from './paid.js'
import { AutoClaimer } from '../../node/payments/auto-claim.js'
import { loadBundle } from '../../model/bundle/load.js'
import { publicKeyFromPeerIdBytes } from '../../chain/peer-binding.js'
import { readVoucherDomain } from '../../protocol/voucher.js'
import { voucherFromWire } from '../../protocol/payment.js'
import type { ExpertRequest } from '../../protocol/expert.js'
import { VoucherStore } from '../../node/payments/voucher-store.js'
import { DirLockedError, lockDir, type DirLock } from '../../node/payments/dir-lock.js'
import { keystoreDir } from '../options.js'
import { PaymentVerifier, escrowView } from '../../node/payments/verifier.js'
import type { NodeMetrics } from '../../node/metrics.js'
import { StandingWatch, type Readiness } from './standing-watch.js'

/** How often a running node re-reads its standing (chain/standing.ts). */
const STANDING_POLL_MS = 10_000

export interface PaidStartArgs extends Omit<CommonCliOptions, 'json'> {
  model: string
  shards?: number[]
  /** How long the old price is honoured after `updatePrice` (ms). @default 600000 */
  priceGraceMs?: number
  /** How often the node re-reads its registry price (ms). @default 5000 */
  pricePollMs?: number
  /** How often the node checks whether a payer it holds vouchers of started unlocking (ms). @default 30000 */
  autoClaimPollMs?: number
}

export interface PaidSetup {
  privateKey: PrivateKey
  shards: number[]
  verifyPayment: (req: ExpertRequest) => Promise<() => void>
  summary: Record<string, unknown>
  /** Whether routers pick this node and the chain is reachable (for /ready). */
  readiness: () => Readiness
  close: () => Promise<void>
}

/** The voucher journal, refused with one clear line when another node holds it. */
async function openJournal(dir: string): Promise<VoucherStore> {
  try {
    return await VoucherStore.open(dir)
  } catch (err) {
    if (err instanceof DirLockedError) throw new UserError(err.message)
    throw err
  }
}

export async function preparePaidNode(
  a: PaidStartArgs,
  logger: Logger,
  metrics: NodeMetrics | null = null
): Promise<PaidSetup> {
  const ks = await openKeystore(a)
  // one node per identity: refused here, before any chain call (the journal is locked below)
  let keyLock: DirLock
  try {
    keyLock = lockDir(keystoreDir(a), 'the keystore')
  } catch (err) {
    if (err instanceof DirLockedError) throw new UserError(err.message)
    throw err
  }
  const ctx = await connectChain(a).catch((err: unknown) => {
    keyLock.release()
    throw err
  })
  try {
    const operator = ks.wallet.address
    const reg = await ctx.contracts.registry.nodeOf(operator)
    if (reg.stake === 0n)
      throw new UserError(
        `operator ${operator} is not registered — run \`pov node register\` first`
      )
    if (!(await ctx.contracts.registry.isActive(operator)))
      throw new UserError(
        `the registration of ${operator} is not active (unbonding, or stake below the minimum) — see \`pov node status\``
      )
    const bundle = await loadBundle(a.model, { verify: 'lazy' })
    if (bundle.modelId.toLowerCase() !== reg.modelId.toLowerCase())
      throw new UserError(
        `bundle ${a.model} is model ${bundle.modelId} but ${operator} is registered for ${reg.modelId}`
      )
    const registeredPeer = peerIdFromPublicKey(publicKeyFromPeerIdBytes(reg.peerId)).toString()
    if (registeredPeer !== ks.peerId)
      throw new UserError(
        `the keystore's libp2p identity ${ks.peerId} is not the registered one (${registeredPeer}) — register again with this keystore`
      )
    const registered = reg.shards.map(Number)
    const shards = a.shards ?? registered
    const extra = shards.filter((s) => !registered.includes(s))
    if (extra.length > 0)
      throw new UserError(
        `shards ${extra.join(',')} are not in the registration (${registered.join(',')}) — update it with the registry first`
      )
    const domain = await readVoucherDomain(ctx.contracts.escrow)
    const store = await openJournal(voucherDir(a.dataDir))
    const verifier = new PaymentVerifier(
      { payee: operator, pricePerUnit: reg.price, domain },
      store,
      escrowView(ctx.contracts.escrow),
      {
        priceGraceMs: a.priceGraceMs,
        readPrice: async () => BigInt((await ctx.contracts.registry.nodeOf(operator)).price)
      }
    )
    const standing = new StandingWatch(ctx.contracts, operator, logger, metrics, async () =>
      BigInt((await ctx.provider.getBlock('latest'))?.timestamp ?? Math.floor(Date.now() / 1000))
    )
    await standing.poll() // so /ready is right from the start
    // `pov node update --price` on a running node: it charges the new price (and honours the
    // old one for the grace period) without a restart; one registry read every few seconds. The
    // same read feeds the standing check (every STANDING_POLL_MS), which reads the rest itself.
    const pricePollMs = a.pricePollMs ?? 5000
    const standingEvery = Math.max(1, Math.round(STANDING_POLL_MS / pricePollMs))
    let tick = 0
    const pricePoll = setInterval(() => {
      const standingDue = ++tick % standingEvery === 0
      ctx.contracts.registry.nodeOf(operator).then(
        (n) => {
          const price = BigInt(n.price)
          if (price !== verifier.currentPrice)
            logger.info(
              { old: formatPov(verifier.currentPrice), new: formatPov(price) },
              price > verifier.currentPrice
                ? 'registry price raised; the old one is honoured for the grace period'
                : 'registry price lowered; applied from the previous price read'
            )
          verifier.setPrice(price) // every read: a lowered price applies from the previous one
          if (standingDue) void standing.poll(n)
        },
        (err: unknown) => {
          logger.debug({ err: (err as Error).message }, 'price poll failed')
          if (standingDue) void standing.poll() // reads again, and reports the chain unreachable
        }
      )
    }, pricePollMs)
    pricePoll.unref()
    // a payer that starts unlocking could take back what its vouchers owe: redeem them at once
    const autoClaim = new AutoClaimer({
      escrow: withSigner(ctx.contracts.escrow, ks.wallet.connect(ctx.provider)),
      operator,
      vouchers: () => store.all(),
      parseRedeemed: redeemedEvents,
      log: logger,
      onClaim: () => metrics?.autoClaims.inc(),
      onAtRisk: (wei) => metrics?.unredeemedAtRisk.set(Number(formatUnits(wei, 18))),
      pollMs: a.autoClaimPollMs
    })
    autoClaim.start()
    logger.info(
      { operator: getAddress(operator), price: formatPov(reg.price), shards, vouchers: store.path },
      'serving paid calls only'
    )
    return {
      privateKey: ks.p2pKey,
      shards,
      verifyPayment: async (req) => {
        const voucher = voucherFromWire(req.payment)
        let receipt: Awaited<ReturnType<PaymentVerifier['verify']>>
        try {
          receipt = await verifier.verify(voucher, req.rows)
        } catch (err) {
          // every refusal is logged: the client sees the same reason in its error
          logger.warn(
            {
              payer: voucher?.payer,
              layer: req.layer,
              expert: req.expert,
              rows: req.rows,
              reason: (err as Error).message
            },
            'paid call refused'
          )
          throw err
        }
        metrics?.earned.inc(Number(formatUnits(receipt.charged, 18)))
        metrics?.vouchersUnredeemed.set(store.all().length)
        return receipt.refund
      },
      summary: {
        operator,
        peerId: ks.peerId,
        price: reg.price.toString(),
        registeredPeerId: hexlify(reg.peerId)
      },
      readiness: () => standing.readiness(),
      close: async () => {
        clearInterval(pricePoll)
        await autoClaim.stop()
        await verifier.drain() // vouchers being journaled beside their calls
        await store.close()
        ctx.provider.destroy()
        keyLock.release()
      }
    }
  } catch (err) {
    ctx.provider.destroy()
    keyLock.release()
    throw err
  }
}
