// What every chain-facing command needs: a provider that answers, the deployment file, typed
// contract clients, and (for transactions) the keystore's wallet. Errors say what to do.
import type { JsonRpcProvider } from 'ethers'
import { Option, type Command } from 'commander'
import { print } from './output.js'
import {
  Signature,
  getAddress,
  formatUnits,
  parseUnits,
  type Wallet,
  type ContractTransactionResponse,
  type TransactionReceipt
} from 'ethers'
import { connectContracts, type PovContracts } from '../chain/contracts.js'
import { createProvider, probeChainId } from '../chain/provider.js'
import {
  deploymentFileFor,
  deploymentMismatch,
  readDeployment,
  type Deployment
} from '../chain/deployment.js'
import { describeChainError, isoTime } from './error-format.js'
import {
  createKeystore,
  loadKeystore,
  loadWallet,
  readPassword,
  type Keystore
} from './keystore.js'
import { keystoreDir, type ChainCliOptions, type KeyCliOptions } from './options.js'
import { UserError } from './errors.js'
import { asUserError } from './error-format.js'

export interface ChainContext {
  provider: JsonRpcProvider
  chainId: number
  deployment: Deployment
  contracts: PovContracts
}

export async function connectChain(opts: ChainCliOptions): Promise<ChainContext> {
  let chainId: number
  try {
    chainId = await probeChainId(opts.rpc, 5000)
  } catch (err) {
    throw new UserError(
      `cannot reach the chain at ${opts.rpc} (${(err as Error).message.split('\n')[0]}) — start one with \`npm run chain\` or pass --rpc URL`
    )
  }
  const provider = createProvider(opts.rpc, chainId)
  provider.pollingInterval = 250
  let deployment: Deployment
  let mismatch: string | null
  try {
    deployment = readDeployment(chainId, { file: opts.deployment })
    mismatch = await withTimeout(deploymentMismatch(provider, deployment), 5000)
  } catch (err) {
    provider.destroy()
    throw new UserError((err as Error).message)
  }
  if (mismatch != null) {
    provider.destroy()
    const file = deploymentFileFor(chainId, opts.deployment)
    throw new UserError(
      `${file} does not match the chain at ${opts.rpc}: ${mismatch} — ` +
        (chainId === 31337 || chainId === 1337
          ? 'redeploy with `npm run deploy:local`, or pass --rpc of the chain it was deployed to'
          : 'pass the --rpc and --deployment of the same network')
    )
  }
  return {
    provider,
    chainId,
    deployment,
    contracts: connectContracts(deployment.contracts, provider)
  }
}

/** Connects, runs `fn`, and closes the provider whatever `fn` does. */
export async function withChain(
  opts: ChainCliOptions,
  fn: (ctx: ChainContext) => Promise<void>
): Promise<void> {
  const ctx = await connectChain(opts)
  try {
    await fn(ctx)
  } catch (err) {
    throw asUserError(err)
  } finally {
    ctx.provider.destroy()
  }
}

/** The whole keystore (Ethereum wallet and libp2p key) named by --keystore / --data-dir. */
export async function openKeystore(opts: KeyCliOptions & { dataDir?: string }): Promise<Keystore> {
  return await loadKeystore(
    keystoreDir(opts),
    await readPassword(opts.passwordFile, process.env.POV_PASSWORD)
  )
}

/** Creates the keystore `--keystore`/`--data-dir` names (`pov node init`, `pov key new`). */
export async function newKeystore(
  opts: KeyCliOptions & { dataDir?: string; scryptN?: string }
): Promise<{ dir: string; address: string; peerId: string }> {
  const dir = keystoreDir(opts)
  const password = await readPassword(opts.passwordFile, process.env.POV_PASSWORD, {
    confirm: true
  })
  const { address, peerId } = await createKeystore(dir, password, {
    scryptN: opts.scryptN != null ? Number(opts.scryptN) : undefined
  })
  return { dir, address, peerId }
}

/**
 * Makes `cmd` create a keystore (`pov node init`, `pov key new`): adds `--scrypt-n`, then prints
 * the keystore, address and PeerId (`text` words it for humans; --json gets the fields).
 */
export function keystoreNewAction(
  cmd: Command,
  text: (k: { dir: string; address: string; peerId: string }) => string
): Command {
  return cmd
    .addOption(
      new Option(
        '--scrypt-n <n>',
        'scrypt cost (power of two); lower only for throw-away keys'
      ).env('POV_SCRYPT_N')
    )
    .action(
      async (opts: KeyCliOptions & { dataDir?: string; scryptN?: string; json?: boolean }) => {
        const k = await newKeystore(opts)
        print(opts, { keystore: k.dir, address: k.address, peerId: k.peerId }, text(k))
      }
    )
}

export async function loadSigner(
  opts: KeyCliOptions & { dataDir?: string },
  ctx: ChainContext
): Promise<Wallet> {
  const dir = keystoreDir(opts)
  const wallet = await loadWallet(
    dir,
    await readPassword(opts.passwordFile, process.env.POV_PASSWORD)
  )
  return wallet.connect(ctx.provider)
}

/** Sends a transaction, waits for it, and turns a revert into one line with the decoded custom error. */
export async function sendTx(
  what: string,
  send: () => Promise<ContractTransactionResponse>
): Promise<TransactionReceipt> {
  try {
    const tx = await send()
    const r = await tx.wait()
    if (r == null || r.status !== 1) throw new Error('transaction failed')
    return r
  } catch (err) {
    throw new UserError(`${what} failed: ${describeChainError(err)}`)
  }
}

/** ERC-2612 permit signature so deposits and stakes need no separate approve transaction. */
export async function signPermit(
  ctx: ChainContext,
  owner: Wallet,
  spender: string,
  value: bigint
): Promise<{ deadline: bigint; v: number; r: string; s: string }> {
  const token = ctx.contracts.token
  const [nonce, name] = await Promise.all([token.nonces(owner.address), token.name()])
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600)
  const sig = Signature.from(
    await owner.signTypedData(
      {
        name,
        version: '1',
        chainId: ctx.chainId,
        verifyingContract: ctx.deployment.contracts.token
      },
      {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' }
        ]
      },
      { owner: owner.address, spender, value, nonce, deadline }
    )
  )
  return { deadline, v: sig.v, r: sig.r, s: sig.s }
}

/** "12.5" POV → wei, with a clear error. */
export function parsePov(value: string, what: string): bigint {
  try {
    const v = parseUnits(value, 18)
    if (v < 0n) throw new Error('negative')
    return v
  } catch {
    throw new UserError(`invalid ${what} "${value}": expected an amount of POV such as 100 or 0.5`)
  }
}

export function formatPov(wei: bigint): string {
  const s = formatUnits(wei, 18)
  return `${s.endsWith('.0') ? s.slice(0, -2) : s} POV`
}

/** A chain timestamp (seconds) as an ISO date. */
export function formatChainTime(seconds: bigint | number | string): string {
  return isoTime(BigInt(seconds))
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)
      })
    ])
  } finally {
    clearTimeout(t)
  }
}

/** A typed contract client bound to `signer` (ethers' connect() loses the ABI type). */
export function withSigner<T extends { connect(runner: Wallet): unknown }>(
  contract: T,
  signer: Wallet
): T {
  return contract.connect(signer) as T
}

/** A user-typed address, checksummed; a mixed-case typo is named as a checksum error (ethers
 *  would say only "bad address checksum"), anything else as not an address. */
export function parseAddress(value: string, what = 'address'): string {
  const v = value.trim()
  try {
    return getAddress(v)
  } catch {
    if (/^0x[0-9a-fA-F]{40}$/.test(v))
      throw new UserError(
        `invalid ${what} "${v}": its mixed-case checksum (EIP-55) does not match — a typo? Copy it again, or write it all lowercase to skip the check`
      )
    throw new UserError(
      `invalid ${what} "${v}": expected 0x followed by 40 hex digits${/^0x[0-9a-fA-F]*$/.test(v) ? ` (it has ${v.length - 2})` : ''}`
    )
  }
}
