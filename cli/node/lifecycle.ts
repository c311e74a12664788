// The operator's registration lifecycle after `pov node register`: change price, shards or
// announced addresses, add stake, start unbonding, and take the stake back once the unbonding
// period is over. Thin handlers over ExpertRegistry; reverts come back decoded (sendTx).
import type { Command } from 'commander'
import { ZeroAddress as ZERO_ADDRESS } from 'ethers'
import { addCommonOptions, type CommonCliOptions } from '../options.js'
import {
  formatChainTime as when,
  formatPov,
  loadSigner,
  parsePov,
  sendTx,
  withSigner,
  withChain,
  type ChainContext
} from '../chain.js'
import { parseAnnounce, parseShards } from './options.js'
import { print } from '../output.js'
import { parsePrice } from './paid.js'
import { UserError } from '../errors.js'

type Opts = CommonCliOptions

/** The operator's registration, or a clear error when there is none. */
async function registration(
  ctx: ChainContext,
  address: string
): Promise<{ stake: bigint; unbondingEnds: bigint }> {
  const n = await ctx.contracts.registry.nodeOf(address) // all zero when not registered
  if (n.operator === ZERO_ADDRESS) {
    throw new UserError(`${address} is not registered — run \`pov node register\` first`)
  }
  return { stake: n.stake, unbondingEnds: BigInt(n.unbondingEnds) }
}

export function registerLifecycleCommands(node: Command): void {
  addCommonOptions(
    node.command('update').description('change the registered price, shards or announced addresses')
  )
    .option('--price <pov>', 'new POV price per unit of work')
    .option('--allow-free', 'accept --price 0')
    .option('--shards <list>', 'new shard ids served, e.g. 0,1')
    .option('--announce <multiaddr...>', 'new public addresses routers dial')
    .action(
      async (
        opts: Opts & { price?: string; shards?: string; announce?: string[]; allowFree?: boolean }
      ) => {
        if (opts.price == null && opts.shards == null && opts.announce == null)
          throw new UserError('nothing to update: give --price, --shards and/or --announce')
        const price = opts.price != null ? parsePrice(opts.price, opts.allowFree) : null
        const shards = opts.shards != null ? parseShards(opts.shards) : null
        const announce = opts.announce != null ? parseAnnounce(opts.announce) : null
        await withChain(opts, async (ctx) => {
          const wallet = await loadSigner(opts, ctx)
          const reg = await registration(ctx, wallet.address)
          if (reg.unbondingEnds !== 0n)
            throw new UserError(
              `${wallet.address} is unbonding (ends ${when(reg.unbondingEnds)}): its registration can no longer change`
            )
          const registry = withSigner(ctx.contracts.registry, wallet)
          const txs: Record<string, string> = {}
          if (price != null)
            txs.price = (await sendTx('updatePrice', () => registry.updatePrice(price))).hash
          if (shards != null)
            txs.shards = (await sendTx('updateShards', () => registry.updateShards(shards))).hash
          if (announce != null)
            txs.multiaddrs = (
              await sendTx('updateMultiaddrs', () => registry.updateMultiaddrs(announce))
            ).hash
          const n = await ctx.contracts.registry.nodeOf(wallet.address)
          print(
            opts,
            {
              operator: wallet.address,
              price: n.price,
              shards: n.shards.map(Number),
              multiaddrs: n.multiaddrs,
              txs
            },
            `updated ${Object.keys(txs).join(', ')}: price ${formatPov(n.price)}, shards ${n.shards.join(',')}, addresses ${n.multiaddrs.join(' ')}\n` +
              'a running node serves what it read at start: restart `pov node start` to serve new shards'
          )
        })
      }
    )

  addCommonOptions(node.command('add-stake').description('add POV to the stake'))
    .argument('<pov>', 'POV to add')
    .action(async (amount: string, opts: Opts) => {
      const value = parsePov(amount, 'amount')
      if (value === 0n) throw new UserError('amount must be above 0')
      await withChain(opts, async (ctx) => {
        const wallet = await loadSigner(opts, ctx)
        const reg = await registration(ctx, wallet.address)
        if (reg.unbondingEnds !== 0n)
          throw new UserError(
            `${wallet.address} is unbonding (ends ${when(reg.unbondingEnds)}): stake can no longer be added`
          )
        const have = await ctx.contracts.token.balanceOf(wallet.address)
        if (have < value)
          throw new UserError(
            `cannot add ${formatPov(value)}: ${wallet.address} holds only ${formatPov(have)}`
          )
        await sendTx('approve', () =>
          withSigner(ctx.contracts.token, wallet).approve(ctx.deployment.contracts.registry, value)
        )
        const r = await sendTx('addStake', () =>
          withSigner(ctx.contracts.registry, wallet).addStake(value)
        )
        const stake = (await ctx.contracts.registry.nodeOf(wallet.address)).stake
        print(
          opts,
          { operator: wallet.address, added: value, stake, tx: r.hash },
          `added ${formatPov(value)}: stake is now ${formatPov(stake)} (tx ${r.hash})`
        )
      })
    })

  addCommonOptions(
    node
      .command('unbond')
      .description(
        'stop serving and start the unbonding period (the stake stays slashable until it ends)'
      )
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const reg = await registration(ctx, wallet.address)
      if (reg.unbondingEnds !== 0n)
        throw new UserError(
          `${wallet.address} is already unbonding (ends ${when(reg.unbondingEnds)})`
        )
      const r = await sendTx('unbond', () => withSigner(ctx.contracts.registry, wallet).unbond())
      const ends = BigInt((await ctx.contracts.registry.nodeOf(wallet.address)).unbondingEnds)
      print(
        opts,
        { operator: wallet.address, stake: reg.stake, unbondingEnds: ends, tx: r.hash },
        `unbonding ${formatPov(reg.stake)}: routers no longer select this node; \`pov node withdraw-stake\` after ${when(ends)}. ` +
          'Claim outstanding vouchers with `pov node claim` (the escrow does not depend on the registration).'
      )
    })
  })

  addCommonOptions(
    node
      .command('withdraw-stake')
      .description('take the stake back after the unbonding period (ends the registration)')
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const reg = await registration(ctx, wallet.address)
      if (reg.unbondingEnds === 0n)
        throw new UserError(`${wallet.address} is not unbonding — run \`pov node unbond\` first`)
      const now = BigInt((await ctx.provider.getBlock('latest'))?.timestamp ?? 0)
      if (now < reg.unbondingEnds)
        throw new UserError(
          `the unbonding period ends ${when(reg.unbondingEnds)} (in ${reg.unbondingEnds - now} s): the stake cannot be withdrawn before`
        )
      const before = await ctx.contracts.token.balanceOf(wallet.address)
      const r = await sendTx('withdraw', () =>
        withSigner(ctx.contracts.registry, wallet).withdraw()
      )
      const received = (await ctx.contracts.token.balanceOf(wallet.address)) - before
      print(
        opts,
        { operator: wallet.address, received, tx: r.hash },
        `withdrew ${formatPov(received)} of stake (tx ${r.hash}); the registration is gone`
      )
    })
  })
}
