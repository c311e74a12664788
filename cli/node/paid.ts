// The operator's chain-facing commands: `pov node init|register|status|claim`.
// (`pov node start` lives in index.ts; with a keystore, paid-start.ts prepares it to serve paid
// calls only.)
import { join } from 'node:path'
import { hexlify, getAddress, type TransactionReceipt } from 'ethers'
import { Option, type Command } from 'commander'
import {
  addCommonOptions,
  addDataDirOption,
  addJsonOption,
  addKeyOptions,
  DEFAULT_DATA_DIR,
  type CommonCliOptions
} from '../options.js'
import {
  formatChainTime,
  formatPov,
  loadSigner,
  keystoreNewAction,
  openKeystore,
  parsePov,
  sendTx,
  signPermit,
  withSigner,
  withChain,
  type ChainContext
} from '../chain.js'
import { parseAnnounce, parseShards } from './options.js'
import { print } from '../output.js'
import { UserError } from '../errors.js'
import { resolveModelId } from '../model-ref.js'
import { signPeerBinding } from '../../chain/peer-binding.js'
import { combinedInterface } from '../../chain/contracts.js'
import { describeChainError } from '../error-format.js'
import { readStanding } from '../../chain/standing.js'
import { VoucherStore } from '../../node/payments/voucher-store.js'
import { claimAll, outstanding } from '../../node/payments/claim.js'

type Opts = CommonCliOptions

/** Where a node keeps its voucher journal. */
/**
 * `--price`: a price of 0 is refused without `--allow-free` (a node registered at 0 serves every
 * client for nothing, and nothing it serves can be reclaimed), before any chain call.
 */
export function parsePrice(value: string, allowFree = false): bigint {
  const price = parsePov(value, '--price')
  if (price === 0n && !allowFree)
    throw new UserError(
      '--price 0 would serve every client for nothing — give a price such as 0.0001, or add --allow-free if that is what you want'
    )
  return price
}

export function voucherDir(dataDir: string = DEFAULT_DATA_DIR): string {
  return join(dataDir, 'vouchers')
}

export function registerPaidNodeCommands(node: Command): void {
  keystoreNewAction(
    addJsonOption(
      addDataDirOption(
        addKeyOptions(
          node
            .command('init')
            .description('create the operator keystore: an Ethereum key and a libp2p identity')
        )
      )
    ),
    (k) =>
      `created operator keystore ${k.dir}\n  operator address ${k.address}\n  libp2p peer id   ${k.peerId}\nnext: fund the address with POV, then \`pov node register\``
  )

  addCommonOptions(
    node.command('register').description('stake POV and register the shards this node serves')
  )
    .requiredOption(
      '--model <id|bundle>',
      'approved model id (0x… 32 bytes), or its bundle directory'
    )
    .requiredOption('--shards <list>', 'shard ids served, e.g. 0,1')
    .requiredOption('--stake <pov>', 'POV to stake (≥ the registry minimum)')
    .requiredOption(
      '--price <pov>',
      'POV per unit of work (one token row through one expert of one layer)'
    )
    .option('--allow-free', 'accept --price 0 (serving every paid-network client for nothing)')
    .addOption(
      new Option(
        '--announce <multiaddr...>',
        'public addresses routers dial, e.g. /dns4/node.example/tcp/4101'
      ).makeOptionMandatory()
    )
    .action(
      async (
        opts: Opts & {
          model: string
          shards: string
          stake: string
          price: string
          announce: string[]
          allowFree?: boolean
        }
      ) => {
        // every input is checked before connecting: a typo is answered without a chain round trip
        const shards = parseShards(opts.shards)
        const stake = parsePov(opts.stake, '--stake')
        const price = parsePrice(opts.price, opts.allowFree)
        const announce = parseAnnounce(opts.announce)
        opts.model = resolveModelId(opts.model)
        await withChain(opts, async (ctx) => {
          const ks = await openKeystore(opts)
          const wallet = ks.wallet.connect(ctx.provider)
          if (!(await ctx.contracts.models.isApproved(opts.model)))
            throw new UserError(
              `model ${opts.model} is not approved by governance — \`pov gov list\` and \`pov audit\` show the approved models`
            )
          const [min, have] = await Promise.all([
            ctx.contracts.registry.minStake(),
            ctx.contracts.token.balanceOf(wallet.address)
          ])
          if (stake < min)
            throw new UserError(
              `--stake ${formatPov(stake)} is below the registry minimum of ${formatPov(min)}`
            )
          if (have < stake)
            throw new UserError(
              `cannot stake ${formatPov(stake)}: ${wallet.address} holds only ${formatPov(have)}`
            )
          const binding = await signPeerBinding(ks.p2pKey, {
            chainId: ctx.chainId,
            registry: ctx.deployment.contracts.registry,
            operator: wallet.address
          })
          const p = await signPermit(ctx, wallet, ctx.deployment.contracts.registry, stake)
          const reg = {
            modelId: opts.model,
            shards,
            price,
            peerId: hexlify(binding.peerId),
            multiaddrs: announce,
            peerSignature: hexlify(binding.signature)
          }
          const r = await sendTx('register', () =>
            withSigner(ctx.contracts.registry, wallet).registerWithPermit(
              reg,
              stake,
              p.deadline,
              p.v,
              p.r,
              p.s
            )
          )
          // One-time: create the escrow earnings record now, so the node's first redemption does
          // not pay the 20k gas of writing it (idempotent; skipped when it already exists).
          const [, , open] = await ctx.contracts.escrow.earningsOf(wallet.address)
          const o = open
            ? null
            : await sendTx('openEarningsAccount', () =>
                withSigner(ctx.contracts.escrow, wallet).openEarningsAccount()
              )
          print(
            opts,
            {
              operator: wallet.address,
              peerId: ks.peerId,
              modelId: opts.model,
              shards,
              stake,
              price,
              multiaddrs: announce,
              tx: r.hash,
              gasUsed: r.gasUsed,
              earningsAccountTx: o?.hash ?? null,
              earningsAccountGasUsed: o?.gasUsed ?? 0n
            },
            `registered ${wallet.address} (peer ${ks.peerId}) for shards ${shards.join(',')} of ${opts.model}\n  stake ${formatPov(stake)}, price ${formatPov(price)} per unit, tx ${r.hash} (${r.gasUsed} gas)` +
              (o != null
                ? `\n  escrow earnings account opened, tx ${o.hash} (${o.gasUsed} gas, once)`
                : '')
          )
        })
      }
    )

  addCommonOptions(
    node
      .command('status')
      .description('stake, registration, unredeemed vouchers, earnings pending in escrow')
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const ks = await openKeystore(opts)
      const operator = ks.wallet.address
      const standing = await readStanding(
        ctx.contracts,
        operator,
        formatPov,
        BigInt((await ctx.provider.getBlock('latest'))?.timestamp ?? 0)
      )
      const { node: n, registered, active } = standing
      const lines = await outstanding(
        ctx.contracts.escrow,
        operator,
        await VoucherStore.readOnly(voucherDir(opts.dataDir))
      )
      const unredeemed = lines.reduce((a, l) => a + l.owed, 0n)
      const risk = atRiskOf(lines)
      const earned = await earnings(ctx, operator)
      const [credited, withdrawn] = await ctx.contracts.escrow.earningsOf(operator)
      const pending = credited - withdrawn
      const balance = await ctx.contracts.token.balanceOf(operator)
      const out = {
        operator,
        peerId: ks.peerId,
        registered,
        active,
        modelId: n.modelId,
        shards: n.shards.map(Number),
        price: n.price,
        stake: n.stake,
        multiaddrs: n.multiaddrs,
        unbondingEnds: n.unbondingEnds,
        minStake: standing.minStake,
        frozenUntil: standing.frozenUntil,
        issues: standing.issues,
        unredeemed,
        unredeemedVouchers: lines.filter((l) => l.owed > 0n).length,
        unredeemedAtRisk: risk.amount,
        atRiskUnlockEnds: risk.firstUnlock,
        earned: earned.net,
        fees: earned.fee,
        redemptions: earned.count,
        pending,
        withdrawn,
        balance
      }
      print(
        opts,
        out,
        [
          `operator     ${operator} (peer ${ks.peerId})`,
          `registered   ${registered ? `yes — ${active ? 'active' : 'inactive'}${n.unbondingEnds > 0n ? `, unbonding until ${formatChainTime(n.unbondingEnds)}` : ''}` : 'no'}`,
          `model        ${n.modelId}  shards ${n.shards.join(',')}  price ${formatPov(n.price)}/unit`,
          `stake        ${formatPov(n.stake)}`,
          `unredeemed   ${formatPov(unredeemed)} in ${out.unredeemedVouchers} voucher(s) — \`pov node claim\` redeems them`,
          atRiskLine(risk),
          `earned       ${formatPov(earned.net)} net of ${formatPov(earned.fee)} protocol fee, over ${earned.count} redemption(s)`,
          `pending      ${formatPov(pending)} redeemed, not yet withdrawn from escrow${pending > 0n ? ' — `pov node claim` withdraws it' : ''} (withdrawn so far ${formatPov(withdrawn)})`,
          `balance      ${formatPov(balance)}`,
          ...(standing.issues.length === 0
            ? [`standing     ok — routers pick this node`]
            : standing.issues.map(
                (i, k) =>
                  `${k === 0 ? 'standing     ' : '             '}${i.blocking ? 'NOT SERVING' : 'note'}: ${i.reason} — ${i.remedy}`
              ))
        ].join('\n')
      )
    })
  })

  addCommonOptions(
    node
      .command('claim')
      .description(
        'redeem every outstanding voucher in one transaction, then withdraw the earnings'
      )
  )
    .option(
      '--no-withdraw',
      'only redeem: the earnings stay in the escrow until a later claim (saves one token transfer per claim)'
    )
    .action(async (opts: Opts & { withdraw: boolean }) => {
      await withChain(opts, async (ctx) => {
        const wallet = await loadSigner(opts, ctx)
        const before = await ctx.contracts.token.balanceOf(wallet.address)
        const vouchers = await VoucherStore.readOnly(voucherDir(opts.dataDir))
        let res
        try {
          res = await claimAll(
            withSigner(ctx.contracts.escrow, wallet),
            wallet.address,
            vouchers,
            redeemedEvents,
            { withdraw: opts.withdraw }
          )
        } catch (err) {
          throw new UserError(`claim failed: ${describeChainError(err, wallet.address)}`)
        }
        const after = await ctx.contracts.token.balanceOf(wallet.address)
        const redeemGasUsed = res.receipt?.gasUsed ?? 0n
        const withdrawGasUsed = res.withdrawReceipt?.gasUsed ?? 0n
        const gasUsed = redeemGasUsed + withdrawGasUsed
        const withdrawText =
          res.withdrawReceipt != null
            ? `withdrew ${formatPov(res.withdrawn)} (tx ${res.withdrawReceipt.hash}, ${withdrawGasUsed} gas)`
            : opts.withdraw
              ? 'nothing to withdraw'
              : 'earnings left in the escrow (--no-withdraw)'
        print(
          opts,
          {
            operator: wallet.address,
            redeemed: res.redeemed,
            skipped: res.skipped,
            amount: res.amount,
            fee: res.fee,
            withdrawn: res.withdrawn,
            received: after - before,
            tx: res.receipt?.hash ?? null,
            withdrawTx: res.withdrawReceipt?.hash ?? null,
            gasUsed,
            redeemGasUsed,
            withdrawGasUsed
          },
          res.redeemed.length === 0
            ? `nothing to redeem (${res.skipped.length} voucher(s) already redeemed or unfunded); ${withdrawText}`
            : `redeemed ${res.redeemed.length} voucher(s) in one transaction: ${formatPov(res.amount)} from escrow, ${formatPov(res.fee)} protocol fee (tx ${res.receipt?.hash}, ${redeemGasUsed} gas); ${withdrawText}; received ${formatPov(after - before)}`
        )
      })
    })
}

export function redeemedEvents(r: TransactionReceipt): Array<{ amount: bigint; fee: bigint }> {
  const iface = combinedInterface()
  const out = []
  for (const log of r.logs) {
    try {
      const d = iface.parseLog(log)
      if (d?.name === 'VoucherRedeemed')
        out.push({ amount: d.args.amount as bigint, fee: d.args.fee as bigint })
    } catch {}
  }
  return out
}

async function earnings(
  ctx: ChainContext,
  operator: string
): Promise<{ net: bigint; fee: bigint; count: number }> {
  const escrow = ctx.contracts.escrow
  const logs = await escrow.queryFilter(
    escrow.filters.VoucherRedeemed(null, getAddress(operator)),
    ctx.deployment.startBlock ?? 0
  )
  let net = 0n
  let fee = 0n
  for (const l of logs) {
    if (!('args' in l)) continue // a log this ABI cannot decode (none expected from this filter)
    const a = l.args.toObject() as { amount: bigint; fee: bigint }
    net += a.amount - a.fee
    fee += a.fee
  }
  return { net, fee, count: logs.length }
}

/** What held vouchers payers who started unlocking take back when their unlock ends, unless redeemed first. */
export function atRiskOf(lines: ReadonlyArray<{ owed: bigint; unlockAt: bigint }>): {
  amount: bigint
  payers: number
  /** When the first of those unlocks ends (chain time, s); null: nobody is unlocking. */
  firstUnlock: bigint | null
} {
  const risky = lines.filter((l) => l.owed > 0n && l.unlockAt !== 0n)
  return {
    amount: risky.reduce((a, l) => a + l.owed, 0n),
    payers: risky.length,
    firstUnlock: risky.reduce<bigint | null>(
      (m, l) => (m == null || l.unlockAt < m ? l.unlockAt : m),
      null
    )
  }
}

/** `pov node status`'s "at risk" line. */
export function atRiskLine(r: ReturnType<typeof atRiskOf>): string {
  return `at risk      ${formatPov(r.amount)}${r.firstUnlock != null ? ` from ${r.payers} payer(s) unlocking (the first unlock ends ${formatChainTime(r.firstUnlock)}) — a running node redeems them by itself; \`pov node claim\` does it now` : ' (no payer of a held voucher is unlocking)'}`
}
