import type { Command } from 'commander'
import { formatUnits } from 'ethers'
import {
  addCommonOptions,
  addDataDirOption,
  addJsonOption,
  addKeyOptions,
  type CommonCliOptions
} from '../options.js'
import {
  formatChainTime,
  formatPov,
  loadSigner,
  keystoreNewAction,
  parseAddress,
  parsePov,
  sendTx,
  signPermit,
  withChain,
  withSigner
} from '../chain.js'
import { print } from '../output.js'
import { UserError } from '../errors.js'
import { lanesOf } from '../../chain/lanes.js'
import { registerInfer } from './infer.js'
import { registerWalletCommands } from './wallet.js'

type Opts = CommonCliOptions

/** Registers the client's commands: `pov key new`, `pov deposit|unlock|withdraw|balance`, `pov infer`. */
export function register(program: Command): void {
  keystoreNewAction(
    addJsonOption(
      addDataDirOption(
        addKeyOptions(
          program
            .command('key')
            .description('encrypted keystores')
            .command('new')
            .description('create an encrypted keystore (Ethereum + libp2p keys)')
        )
      )
    ),
    (k) => `created keystore ${k.dir}\n  address ${k.address}\n  peer id ${k.peerId}`
  )

  addCommonOptions(
    program
      .command('deposit')
      .argument('<amount>', 'POV to deposit into escrow')
      .description('deposit POV into the escrow that pays nodes (permit: one transaction)')
  ).action(async (amount: string, opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const value = parsePov(amount, 'amount')
      const have = await ctx.contracts.token.balanceOf(wallet.address)
      if (have < value)
        throw new UserError(
          `cannot deposit ${formatPov(value)}: ${wallet.address} holds only ${formatPov(have)}`
        )
      const p = await signPermit(ctx, wallet, ctx.deployment.contracts.escrow, value)
      const r = await sendTx('deposit', () =>
        withSigner(ctx.contracts.escrow, wallet).depositWithPermit(value, p.deadline, p.v, p.r, p.s)
      )
      const [balance] = await ctx.contracts.escrow.depositOf(wallet.address)
      print(
        opts,
        { deposited: value, balance, tx: r.hash, gasUsed: r.gasUsed },
        `deposited ${formatPov(value)} — escrow balance ${formatPov(balance)} (tx ${r.hash}, ${r.gasUsed} gas)`
      )
    })
  })

  addCommonOptions(
    program
      .command('unlock')
      .description('start the unlock period before a withdrawal (nodes can still redeem meanwhile)')
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const r = await sendTx('unlock', () => withSigner(ctx.contracts.escrow, wallet).unlock())
      const [, unlockAt] = await ctx.contracts.escrow.depositOf(wallet.address)
      print(
        opts,
        { unlockAt, tx: r.hash },
        `unlock started: withdraw after ${formatChainTime(unlockAt)} (tx ${r.hash})`
      )
    })
  })

  addCommonOptions(
    program
      .command('withdraw')
      .description(
        'withdraw the escrow balance and what is left in its lanes to nodes once the unlock period is over'
      )
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const [free] = await ctx.contracts.escrow.depositOf(wallet.address)
      const lanes = (
        await lanesOf(ctx.contracts.escrow, wallet.address, ctx.deployment.startBlock ?? 0)
      ).filter((l) => l.balance > 0n)
      const balance = lanes.reduce((a, l) => a + l.balance, free)
      const r = await sendTx('withdraw', () =>
        withSigner(ctx.contracts.escrow, wallet).withdraw(lanes.map((l) => l.payee))
      )
      print(
        opts,
        { withdrawn: balance, lanes: lanes.length, tx: r.hash },
        `withdrew ${formatPov(balance)} (tx ${r.hash})`
      )
    })
  })

  addCommonOptions(
    program.command('balance').description('ETH and POV balances, escrow deposit and unlock state')
  )
    .option('--address <addr>', "any address (default: the keystore's)")
    .action(async (opts: Opts & { address?: string }) => {
      // checked before connecting: a typo is answered without a chain round trip
      const given = opts.address != null ? parseAddress(opts.address, '--address') : undefined
      await withChain(opts, async (ctx) => {
        const address = given ?? (await loadSigner(opts, ctx)).address
        const [eth, pov, [escrow, unlockAt], votes, lanes] = await Promise.all([
          ctx.provider.getBalance(address),
          ctx.contracts.token.balanceOf(address),
          ctx.contracts.escrow.depositOf(address),
          ctx.contracts.token.getVotes(address),
          lanesOf(ctx.contracts.escrow, address, ctx.deployment.startBlock ?? 0)
        ])
        const inLanes = lanes.reduce((a, l) => a + l.balance, 0n)
        const unlocking =
          unlockAt === 0n ? 'no' : `yes, withdrawable at ${formatChainTime(unlockAt)}`
        print(
          opts,
          { address, eth, balance: pov, escrow, lanes: inLanes, unlockAt, votes },
          `address   ${address}\neth       ${formatUnits(eth, 18)} ETH${eth === 0n ? ' (none for gas: transactions from this address will fail)' : ''}\nbalance   ${formatPov(pov)}\nescrow    ${formatPov(escrow)} unallocated, ${formatPov(inLanes)} in ${lanes.length} lanes to nodes\nunlocking ${unlocking}\nvotes     ${formatPov(votes)}`
        )
      })
    })

  registerWalletCommands(program)
  registerInfer(program)
}
