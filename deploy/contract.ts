/**
 * The deployment steps the deploy modules share: deploying one compiled contract (every
 * contract of `deployAll`), and what a contract that joins a deployment later has in common —
 * FaultReports (deploy/fault-reports.ts) and InferenceRequests (deploy/inference-requests.ts):
 * owned by the timelock, forfeits to the deployment's treasury, and a governed period that must
 * outlive a governance round.
 */
import { ContractFactory } from 'ethers'
import type { Signer } from 'ethers'
import { loadArtifact } from '../chain/artifacts.js'
import type { ContractName } from '../chain/artifacts.js'
import type { ContractAddresses, Deployment } from '../chain/deployment.js'

/** Deploys the compiled contract `name` (`npx hardhat build`) and returns its address once mined. */
export async function deployContract(
  signer: Signer,
  name: ContractName,
  args: unknown[]
): Promise<string> {
  const { abi, bytecode } = loadArtifact(name)
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(...args)
  await contract.waitForDeployment()
  return await contract.getAddress()
}

/** A governed period's bounds on-chain (the contract's MIN_… and MAX_… constants), seconds. */
export interface PeriodBounds {
  min: number
  max: number
}

/**
 * A period inside which a governance decision must be carried out (a fault report's decision
 * period, a dispute's): the proposal is made, voted, queued and executed before it ends, so
 * twice the governance path, within the contract's bounds.
 */
export function outlastGovernanceRound(
  governancePathSeconds: number,
  bounds: PeriodBounds
): number {
  return Math.min(bounds.max, Math.max(bounds.min, 2 * governancePathSeconds))
}

/** What a contract joining a deployment is deployed with: its owner and its treasury. */
export interface JoiningContract {
  /** The deployment's contracts, to take the ones it works with from. */
  contracts: ContractAddresses
  /** The timelock: a passed proposal changes its parameters and decides its disputes. */
  owner: string
  /** Where its forfeited bonds go: the deployment's treasury. */
  treasury: string
}

/**
 * Adds a contract, owned by the timelock, to a deployment made without it: `deploy` gets the
 * deployment's contracts, owner and treasury and returns the new address, recorded under `key`.
 */
export async function addToDeployment(
  deployment: Deployment,
  key: 'faultReports' | 'inferenceRequests',
  deploy: (a: JoiningContract) => Promise<string>
): Promise<Deployment> {
  const address = await deploy({
    contracts: deployment.contracts,
    owner: deployment.contracts.timelock,
    treasury: deployment.params.treasury
  })
  return { ...deployment, [key]: address }
}
