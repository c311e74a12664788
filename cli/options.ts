// Option groups shared by the commands. Precedence: flags > POV_* environment > --config FILE >
// defaults; commander resolves the first two, `applyConfigFile` fills in the third.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import { UserError } from './errors.js'
import { defaultLocalRpc } from '../chain/local-chain.js'
import { DEFAULT_ROUTER_BUSY_POLL_US } from '../router/defaults.js'

/** Where the local chain listens: the one `npm run chain` recorded, else 8545 (the usual port of a
 *  local Ethereum node). */
export const DEFAULT_RPC = defaultLocalRpc()
export const DEFAULT_DATA_DIR = join(homedir(), '.pov')

export interface ChainCliOptions {
  rpc: string
  deployment?: string
}
export interface KeyCliOptions {
  keystore?: string
  passwordFile?: string
}
export interface CommonCliOptions extends ChainCliOptions, KeyCliOptions {
  dataDir: string
  json?: boolean
}

export function addChainOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--rpc <url>', 'JSON-RPC URL of the chain').env('POV_RPC').default(DEFAULT_RPC)
    )
    .addOption(
      new Option(
        '--deployment <file>',
        'contract address file (default: deployments/<chainId>.json)'
      ).env('POV_DEPLOYMENT')
    )
}

export function addKeyOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--keystore <dir>',
        'keystore directory (made by `pov node init` or `pov key new`)'
      ).env('POV_KEYSTORE')
    )
    .addOption(
      new Option(
        '--password-file <file>',
        'file holding the keystore passphrase (or POV_PASSWORD)'
      ).env('POV_PASSWORD_FILE')
    )
}

export function addDataDirOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '--data-dir <dir>',
      'state directory (vouchers, payer ledger, adaptive speculation length)'
    )
      .env('POV_DATA_DIR')
      .default(DEFAULT_DATA_DIR)
  )
}

export function addJsonOption(cmd: Command): Command {
  return cmd.option('--json', 'machine-readable output')
}

/** All common groups, in one call. */
export function addCommonOptions(cmd: Command): Command {
  return addJsonOption(addDataDirOption(addKeyOptions(addChainOptions(cmd))))
}

/** Resolves the keystore: --keystore, else `<data-dir>/keystore`. */
export function keystoreDir(opts: { keystore?: string; dataDir?: string }): string {
  return opts.keystore ?? join(opts.dataDir ?? DEFAULT_DATA_DIR, 'keystore')
}

/** Commander collector for a repeatable option whose values may also be comma-separated. */
export function collectList(v: string, prev: string[] = []): string[] {
  return [
    ...prev,
    ...v
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
  ]
}

/** A numbered on-chain record named on the command line (a request, a fault report). */
export function parseRecordNumber(value: string, what: string): number {
  if (!/^\d+$/.test(value.trim()))
    throw new UserError(`invalid ${what} "${value}": expected its number, e.g. 0`)
  return Number(value)
}

/** Parses `0,1,2` into integers, with a clear error. */
export function parseIntList(value: string, what = 'list'): number[] {
  const out = value
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Number(s.trim()))
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UserError(
      `invalid ${what} "${value}": expected comma-separated non-negative integers, e.g. 0,1`
    )
  }
  return out
}

/**
 * Registers `--config FILE` on the program and, before each action, copies values from that
 * YAML/JSON file into options still at their default (so flags and env win). Keys are the
 * options' camelCase names, e.g. `rpc`, `dataDir`, `keystore`.
 */
export function applyConfigFile(program: Command): void {
  program.addOption(
    new Option('--config <file>', 'YAML or JSON settings file (flags and POV_* env win)').env(
      'POV_CONFIG'
    )
  )
  program.hook('preAction', async (_root, action) => {
    const file = program.opts().config as string | undefined
    if (file == null) return
    let values: Record<string, unknown>
    try {
      const { parse } = await import('yaml') // only when a --config file is given
      values = parse(readFileSync(file, 'utf8')) ?? {}
    } catch (err) {
      throw new UserError(`cannot read --config ${file}: ${(err as Error).message}`)
    }
    for (const opt of action.options) {
      const key = opt.attributeName()
      if (!(key in values)) continue
      const source = action.getOptionValueSource(key)
      if (source == null || source === 'default')
        action.setOptionValueWithSource(key, values[key], 'config')
    }
  })
}

/** The effective settings with secrets redacted, for the start-up line. */
export function redacted(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(opts))
    out[k] = /password|secret|key$/i.test(k) && k !== 'keystore' ? '<redacted>' : v
  return out
}

/** --busy-poll-us (node and router): whole µs from 0 (off) to 1 s. */
export function parseBusyPollUs(v: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0 || n > 1_000_000)
    throw new UserError(`invalid --busy-poll-us "${v}": expected whole µs from 0 to 1000000`)
  return n
}

/** The router side of --busy-poll-us (pov generate --peers, pov infer). */
/** `--listen` of the clients (`pov infer`, `pov serve`): where their router accepts connections. */
export function routerListenOption(): Option {
  return new Option(
    '--listen <multiaddr...>',
    'also accept connections here (e.g. /ip4/0.0.0.0/tcp/4102, a public address or a forwarded port): a node behind NAT reached through a relay then dials back and the calls leave the relay (repeat or comma-separate; default: dial only)'
  )
    .env('POV_LISTEN')
    .argParser(collectList)
}

/**
 * Listen addresses as the router takes them, checked before any network call: a TCP multiaddr
 * (the router's only transport) of an IP address, without a /p2p/ part (that is the router's own
 * identity, not the operator's to give).
 */
export function parseListen(addrs: string[] | undefined, flag = '--listen'): string[] | undefined {
  if (addrs == null || addrs.length === 0) return undefined
  return addrs.map((a) => {
    const example = 'e.g. /ip4/0.0.0.0/tcp/4102'
    let names: string[]
    try {
      names = multiaddr(a)
        .getComponents()
        .map((c) => c.name)
    } catch (err) {
      throw new UserError(`invalid ${flag} "${a}": ${(err as Error).message} (${example})`)
    }
    if (!/^ip[46]$/.test(names[0] ?? '') || names[1] !== 'tcp' || names.length !== 2)
      throw new UserError(
        `invalid ${flag} "${a}": expected an IP address and a TCP port, nothing more (${example})`
      )
    return a
  })
}

export function busyPollOption(): Option {
  return new Option(
    '--busy-poll-us <us>',
    `keep the event loop polling while expert calls are out, at most this many µs per call, so answers are read without a wake-up (0: off; default ${DEFAULT_ROUTER_BUSY_POLL_US})`
  ).env('POV_BUSY_POLL_US')
}
