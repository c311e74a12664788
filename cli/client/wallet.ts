// `pov transfer` (send POV) and `pov cancel-unlock` (keep a deposit that was being unlocked).
import type { Command } from 'commander'
import { addCommonOptions, type CommonCliOptions } from '../options.js'
import {
  formatPov,
  loadSigner,
  parseAddress,
  parsePov,
  sendTx,
  withChain,
  withSigner
} from '../chain.js'
import { UserError } from '../errors.js'
import { print } from '../output.js'

type Opts = CommonCliOptions

export function registerWalletCommands(program: Command): void {
  addCommonOptions(
    program
      .command('transfer')
      .argument('<to>', 'recipient address')
      .argument('<amount>', 'POV to send')
      .description('send POV to an address')
  ).action(async (toIn: string, amount: string, opts: Opts) => {
    const to = parseAddress(toIn, 'recipient')
    const value = parsePov(amount, 'amount')
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const have = await ctx.contracts.token.balanceOf(wallet.address)
      if (have < value)
        throw new UserError(
          `cannot send ${formatPov(value)}: ${wallet.address} holds only ${formatPov(have)}`
        )
      const r = await sendTx('transfer', () =>
        withSigner(ctx.contracts.token, wallet).transfer(to, value)
      )
      const left = await ctx.contracts.token.balanceOf(wallet.address)
      print(
        opts,
        { from: wallet.address, to, amount: value, balance: left, tx: r.hash },
        `sent ${formatPov(value)} to ${to} — ${formatPov(left)} left (tx ${r.hash})`
      )
    })
  })

  addCommonOptions(
    program
      .command('cancel-unlock')
      .description(
        'stop an unlock in progress: the deposit stays in escrow and can pay nodes again'
      )
  ).action(async (opts: Opts) => {
    await withChain(opts, async (ctx) => {
      const wallet = await loadSigner(opts, ctx)
      const [balance, unlockAt] = await ctx.contracts.escrow.depositOf(wallet.address)
      if (unlockAt === 0n)
        throw new UserError(
          `${wallet.address} has no unlock in progress (escrow ${formatPov(balance)}) — nothing to cancel`
        )
      const r = await sendTx('cancel-unlock', () =>
        withSigner(ctx.contracts.escrow, wallet).cancelUnlock()
      )
      print(
        opts,
        { balance, tx: r.hash },
        `unlock cancelled: ${formatPov(balance)} stays in escrow and pays nodes again (tx ${r.hash})`
      )
    })
  })
}
