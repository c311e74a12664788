// `pov dev`: conveniences for a local development chain (Hardhat node, anvil) — fund an address
// with ETH and POV, fast-forward blocks and time. Refused on any other chain.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseEther } from 'ethers'
import { Option, type Command } from 'commander'
import {
  addChainOptions,
  addDataDirOption,
  addJsonOption,
  keystoreDir,
  type CommonCliOptions
} from '../options.js'
import { formatChainTime, formatPov, parseAddress, parsePov, withChain } from '../chain.js'
import { print } from '../output.js'
import { UserError } from '../errors.js'
import { ETH_KEY_FILE } from '../keystore.js'
import {
  devAddEth,
  devClock,
  devSendPov,
  NotDevChainError,
  requireDevChain
} from '../../chain/devchain.js'
import { parseDuration, GovInputError } from '../../chain/gov-actions.js'
import { formatUnits } from 'ethers'

type Opts = Omit<CommonCliOptions, 'passwordFile'>

export function register(program: Command): void {
  const dev = program
    .command('dev')
    .description('local development chain only: fund addresses, fast-forward blocks and time')

  addJsonOption(
    addDataDirOption(
      addChainOptions(
        dev
          .command('fund')
          .argument('[address]', "who gets the funds (default: the keystore's address)")
          .description(
            'give an address ETH for gas and POV from the treasury (Hardhat node or anvil only)'
          )
      )
    )
  )
    .addOption(
      new Option('--keystore <dir>', 'keystore whose address to fund (no passphrase needed)').env(
        'POV_KEYSTORE'
      )
    )
    .option('--eth <amount>', 'ETH to add', '10')
    .option('--pov <amount>', 'POV to send from the treasury', '2000')
    .action(async (addressIn: string | undefined, o: Opts & { eth: string; pov: string }) => {
      const address = addressIn != null ? parseAddress(addressIn) : await keystoreAddress(o)
      let eth: bigint
      try {
        eth = parseEther(o.eth)
      } catch {
        throw new UserError(`invalid --eth "${o.eth}": expected an amount of ETH such as 10`)
      }
      const pov = parsePov(o.pov, '--pov')
      await withChain(o, async (ctx) => {
        try {
          const kind = await requireDevChain(ctx.provider, '`pov dev fund`')
          const ethBalance = eth > 0n ? await devAddEth(ctx.provider, kind, address, eth) : 0n
          const tx =
            pov > 0n
              ? await devSendPov(
                  ctx.provider,
                  kind,
                  ctx.contracts,
                  ctx.deployment.params.treasury,
                  address,
                  pov
                )
              : null
          const povBalance = await ctx.contracts.token.balanceOf(address)
          print(
            o,
            { address, eth: ethBalance, pov: povBalance, tx },
            `funded ${address}: now ${formatUnits(await ctx.provider.getBalance(address), 18)} ETH, ${formatPov(povBalance)}`
          )
        } catch (err) {
          if (err instanceof NotDevChainError) throw new UserError(err.message)
          throw err
        }
      })
    })

  addJsonOption(
    addChainOptions(
      dev
        .command('advance')
        .description('mine blocks and/or move the chain clock forward (Hardhat node or anvil only)')
    )
  )
    .option('--blocks <n>', 'blocks to mine', '0')
    .option('--time <duration>', 'seconds (or with s/m/h/d/w) to move the clock forward', '0')
    .action(async (o: Opts & { blocks: string; time: string }) => {
      const blocks = Number(o.blocks)
      if (!Number.isInteger(blocks) || blocks < 0)
        throw new UserError(`invalid --blocks "${o.blocks}": expected a whole number`)
      let seconds: bigint
      try {
        seconds = parseDuration(o.time, '--time')
      } catch (err) {
        if (err instanceof GovInputError) throw new UserError(err.message)
        throw err
      }
      if (blocks === 0 && seconds === 0n)
        throw new UserError('nothing to do: give --blocks N and/or --time DURATION')
      await withChain(o, async (ctx) => {
        try {
          const clock = devClock(
            ctx.provider,
            await requireDevChain(ctx.provider, '`pov dev advance`')
          )
          if (seconds > 0n) await clock.increaseTime(Number(seconds))
          await clock.mineBlocks(blocks)
        } catch (err) {
          if (err instanceof NotDevChainError) throw new UserError(err.message)
          throw err
        }
        const b = (await ctx.provider.getBlock('latest'))!
        print(
          o,
          { block: b.number, timestamp: b.timestamp },
          `chain now at block ${b.number}, time ${formatChainTime(b.timestamp)}`
        )
      })
    })
}

/** The keystore's address, read from the keystore file's public `address` field. */
async function keystoreAddress(o: { keystore?: string; dataDir?: string }): Promise<string> {
  const path = join(keystoreDir(o), ETH_KEY_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    throw new UserError(
      `no keystore at ${keystoreDir(o)} — give an address, or create a key with \`pov node init\` / \`pov key new\``
    )
  }
  const a = (JSON.parse(text) as { address?: string }).address
  if (a == null) throw new UserError(`${path} has no address field`)
  return parseAddress(a.startsWith('0x') ? a : `0x${a}`)
}
