// Development-chain conveniences (Hardhat node, anvil): give an address ETH and POV, fast-forward
// blocks and time. Each call first checks that the chain really is a dev chain, by asking for
// the node's own methods, so none of this can be aimed at a live network by mistake.
import { formatUnits, toQuantity, type JsonRpcProvider } from 'ethers'
import type { PovContracts } from './contracts.js'

/** Which dev node answers: its RPC methods carry this prefix (`hardhat_mine`, `anvil_mine`). */
export type DevChainKind = 'hardhat' | 'anvil'

export class NotDevChainError extends Error {
  override name = 'NotDevChainError'
}

/** 'hardhat' or 'anvil' when the node answers that node's own methods, else null. */
export async function detectDevChain(provider: JsonRpcProvider): Promise<DevChainKind | null> {
  const probes: Array<[DevChainKind, string]> = [
    ['hardhat', 'hardhat_metadata'],
    ['anvil', 'anvil_nodeInfo']
  ]
  for (const [kind, method] of probes) {
    try {
      await provider.send(method, [])
      return kind
    } catch {}
  }
  return null
}

/** Like detectDevChain, but throws a NotDevChainError that says why `what` is refused. */
export async function requireDevChain(
  provider: JsonRpcProvider,
  what: string
): Promise<DevChainKind> {
  const kind = await detectDevChain(provider)
  if (kind == null)
    throw new NotDevChainError(
      `${what} works only on a local development chain (Hardhat node or anvil), and this chain answers neither hardhat_metadata nor anvil_nodeInfo — on a live network, get ETH and POV from someone who holds them (\`pov transfer\` sends POV)`
    )
  return kind
}

/** Blocks and seconds of a dev chain, through its RPC. */
export interface DevClock {
  mineBlocks(n: number): Promise<void>
  increaseTime(seconds: number): Promise<void>
}

export function devClock(provider: JsonRpcProvider, kind: DevChainKind): DevClock {
  return {
    async mineBlocks(n) {
      if (n > 0) await provider.send(`${kind}_mine`, [toQuantity(n)])
    },
    async increaseTime(seconds) {
      // the next block carries the new time; mine it so views (block.timestamp) see it at once
      if (seconds > 0) await provider.send('evm_increaseTime', [Math.ceil(seconds)])
      await provider.send('evm_mine', [])
    }
  }
}

/** Adds `wei` ETH to `address` (the dev node sets balances directly; no account pays). */
export async function devAddEth(
  provider: JsonRpcProvider,
  kind: DevChainKind,
  address: string,
  wei: bigint
): Promise<bigint> {
  const balance = (await provider.getBalance(address)) + wei
  await provider.send(`${kind}_setBalance`, [address, toQuantity(balance)])
  return balance
}

/**
 * Sends `amount` POV from the deployment's treasury (which holds the initial supply) to `to`,
 * signing as the treasury through the dev node's account impersonation.
 */
export async function devSendPov(
  provider: JsonRpcProvider,
  kind: DevChainKind,
  contracts: PovContracts,
  treasury: string,
  to: string,
  amount: bigint
): Promise<string> {
  const held = await contracts.token.balanceOf(treasury)
  if (held < amount)
    throw new NotDevChainError(
      `the treasury ${treasury} holds only ${formatUnits(held, 18)} POV, less than the ${formatUnits(amount, 18)} POV asked for`
    )
  // the treasury may have no ETH for gas on a fresh fork; give it some
  if ((await provider.getBalance(treasury)) === 0n)
    await devAddEth(provider, kind, treasury, 10n ** 18n)
  await provider.send(`${kind}_impersonateAccount`, [treasury])
  try {
    const signer = await provider.getSigner(treasury)
    const token = contracts.token.connect(signer) as typeof contracts.token
    const tx = await token.transfer(to, amount)
    await tx.wait()
    return tx.hash
  } finally {
    await provider.send(`${kind}_stopImpersonatingAccount`, [treasury])
  }
}
