/**
 * The deployment file: `deployments/<chainId>.json`, written by deploy/deploy.ts and read by
 * the node, the router and the CLI.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { REPO_ROOT } from './artifacts.js'

export interface ContractAddresses {
  token: string
  models: string
  registry: string
  escrow: string
  governor: string
  timelock: string
}

export interface DeploymentParams {
  treasury: string
  initialSupply: string
  minStake: string
  unbondingPeriod: number
  /** Floor of the unbonding period (the governance path at deployment), seconds. */
  minUnbondingPeriod?: number
  unlockPeriod: number
  feeBps: number
  votingDelay: number
  votingPeriod: number
  proposalThreshold: string
  quorumPercent: number
  timelockDelay: number
  /** Seconds per block assumed when comparing governance (blocks) with unbonding (seconds). */
  blockTime?: number
  /** Initial holders besides the treasury (POV wei as decimal strings). */
  distribution?: Array<{ to: string; amount: string }>
}

export interface Deployment {
  chainId: number
  deployer: string
  /** Block of the first deployment transaction: where auditors start scanning events. */
  startBlock: number
  deployedAt: string
  contracts: ContractAddresses
  /** Hash of the chain's block 0: tells a restarted dev chain (same id, new genesis) from the one
   *  deployed to. Absent in files written before it was recorded. */
  genesisHash?: string
  /** FaultReports (docs/trust.md), added to a deployment by deploy/fault-reports.ts; absent before. */
  faultReports?: string
  /** InferenceRequests (docs/contracts.md), deployed by deployAll or deploy/inference-requests.ts; absent before. */
  inferenceRequests?: string
  params: DeploymentParams
}

export class DeploymentNotFoundError extends Error {
  override name = 'DeploymentNotFoundError'
}

export function defaultDeploymentsDir(): string {
  return join(REPO_ROOT, 'deployments')
}

export function deploymentPath(chainId: bigint | number, dir = defaultDeploymentsDir()): string {
  return join(dir, `${chainId}.json`)
}

function display(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel.startsWith('..') ? path : rel
}

/** Reads `deployments/<chainId>.json` (or `file` when given). */
export function readDeployment(
  chainId: bigint | number,
  opts: { dir?: string; file?: string } = {}
): Deployment {
  const path = opts.file ?? deploymentPath(chainId, opts.dir)
  if (!existsSync(path)) {
    throw new DeploymentNotFoundError(
      `no deployment for chain ${chainId} at ${display(path)} — run npm run deploy:local` +
        (Number(chainId) === 31337 ? '' : ' (or deploy/deploy.ts --rpc URL)')
    )
  }
  const dep = JSON.parse(readFileSync(path, 'utf8')) as Deployment
  if (BigInt(dep.chainId) !== BigInt(chainId)) {
    throw new Error(`deployment file ${display(path)} is for chain ${dep.chainId}, not ${chainId}`)
  }
  return dep
}

/** Writes the deployment file; returns its path. */
export function writeDeployment(dep: Deployment, dir = defaultDeploymentsDir()): string {
  const path = deploymentPath(dep.chainId, dir)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify(dep, null, 2) + '\n')
  return path
}

/** Why a deployment file does not describe the chain at hand, or null when it does: code at its
 *  addresses, and (where recorded) the same genesis block — a restarted dev chain keeps its id,
 *  and another project's node may answer on the same port. */
export async function deploymentMismatch(
  rpc: { send: (method: string, params: unknown[]) => Promise<unknown> },
  dep: Deployment
): Promise<string | null> {
  const [registryCode, tokenCode, genesis] = await Promise.all([
    rpc.send('eth_getCode', [dep.contracts.registry, 'latest']) as Promise<string>,
    rpc.send('eth_getCode', [dep.contracts.token, 'latest']) as Promise<string>,
    dep.genesisHash != null
      ? (rpc.send('eth_getBlockByNumber', ['0x0', false]) as Promise<{ hash: string } | null>)
      : Promise.resolve(null)
  ])
  if (dep.genesisHash != null && genesis != null && genesis.hash !== dep.genesisHash)
    return `it was deployed to another chain with the same id ${dep.chainId} (genesis ${dep.genesisHash.slice(0, 10)}…, this one ${genesis.hash.slice(0, 10)}…: restarted, or another node answers on this port)`
  if (registryCode === '0x' || tokenCode === '0x')
    return `there is no contract code at its addresses on chain ${dep.chainId} (a restarted or different chain)`
  return null
}

/** The file a deployment is read from, as the user would type it. */
export function deploymentFileFor(chainId: bigint | number, file?: string): string {
  return display(file ?? deploymentPath(chainId))
}
