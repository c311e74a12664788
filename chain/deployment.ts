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
  /** FaultReports (docs/trust.md), added to a deployment by deploy/fault-reports.ts; absent before. */
  faultReports?: string
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
