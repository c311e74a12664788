/**
 * Typed ethers clients of the deployed contracts. Works in a plain `npx tsx` process (no hardhat):
 * ABIs come from the committed `chain/abi/*.json`, types from the generated `chain/abi/types.ts`.
 */
import { Contract, Interface } from 'ethers'
import type { BaseContract, ContractRunner, InterfaceAbi, Provider } from 'ethers'
import PovTokenAbi from './abi/PovToken.json' with { type: 'json' }
import ModelApprovalsAbi from './abi/ModelApprovals.json' with { type: 'json' }
import ExpertRegistryAbi from './abi/ExpertRegistry.json' with { type: 'json' }
import PovEscrowAbi from './abi/PovEscrow.json' with { type: 'json' }
import PovGovernorAbi from './abi/PovGovernor.json' with { type: 'json' }
import PovTimelockAbi from './abi/PovTimelock.json' with { type: 'json' }
import FaultReportsAbi from './abi/FaultReports.json' with { type: 'json' }
import InferenceRequestsAbi from './abi/InferenceRequests.json' with { type: 'json' }
import InferenceBountyAbi from './abi/InferenceBounty.json' with { type: 'json' }
import type {
  ExpertRegistryContract,
  FaultReportsContract,
  InferenceBountyContract,
  InferenceRequestsContract,
  ModelApprovalsContract,
  PovEscrowContract,
  PovGovernorContract,
  PovTimelockContract,
  PovTokenContract
} from './abi/types.js'
import { readDeployment } from './deployment.js'
import type { ContractAddresses, Deployment } from './deployment.js'

export type * from './abi/types.js'

export const ABIS = {
  PovToken: PovTokenAbi as InterfaceAbi,
  ModelApprovals: ModelApprovalsAbi as InterfaceAbi,
  ExpertRegistry: ExpertRegistryAbi as InterfaceAbi,
  PovEscrow: PovEscrowAbi as InterfaceAbi,
  PovGovernor: PovGovernorAbi as InterfaceAbi,
  PovTimelock: PovTimelockAbi as InterfaceAbi,
  FaultReports: FaultReportsAbi as InterfaceAbi,
  InferenceRequests: InferenceRequestsAbi as InterfaceAbi,
  InferenceBounty: InferenceBountyAbi as InterfaceAbi
} as const

export interface PovContracts {
  token: PovTokenContract
  models: ModelApprovalsContract
  registry: ExpertRegistryContract
  escrow: PovEscrowContract
  governor: PovGovernorContract
  timelock: PovTimelockContract
}

/** A typed client of contract `name` at `address` (the ABI gives the calls, the type their shapes). */
function at<T extends BaseContract>(
  name: keyof typeof ABIS,
  address: string,
  runner?: ContractRunner | null
): T {
  return new Contract(address, ABIS[name], runner) as BaseContract as T
}

/** Clients for every contract at `addresses`, connected to `runner` (a Provider or a Signer). */
export function connectContracts(
  addresses: ContractAddresses,
  runner?: ContractRunner | null
): PovContracts {
  return {
    token: at<PovTokenContract>('PovToken', addresses.token, runner),
    models: at<ModelApprovalsContract>('ModelApprovals', addresses.models, runner),
    registry: at<ExpertRegistryContract>('ExpertRegistry', addresses.registry, runner),
    escrow: at<PovEscrowContract>('PovEscrow', addresses.escrow, runner),
    governor: at<PovGovernorContract>('PovGovernor', addresses.governor, runner),
    timelock: at<PovTimelockContract>('PovTimelock', addresses.timelock, runner)
  }
}

/** The FaultReports client (kept apart from PovContracts: older deployments have none). */
export function connectFaultReports(
  address: string,
  runner?: ContractRunner | null
): FaultReportsContract {
  return at<FaultReportsContract>('FaultReports', address, runner)
}

/** The InferenceRequests client (kept apart from PovContracts: older deployments have none). */
export function connectInferenceRequests(
  address: string,
  runner?: ContractRunner | null
): InferenceRequestsContract {
  return at<InferenceRequestsContract>('InferenceRequests', address, runner)
}

/** A client of the example consumer contracts/examples/InferenceBounty.sol. */
export function connectInferenceBounty(
  address: string,
  runner?: ContractRunner | null
): InferenceBountyContract {
  return at<InferenceBountyContract>('InferenceBounty', address, runner)
}

/**
 * Reads the chain id from `runner`'s provider, loads `deployments/<chainId>.json` (or `file`)
 * and connects the clients.
 */
export async function loadContracts(
  runner: ContractRunner,
  opts: { file?: string; dir?: string } = {}
): Promise<{ deployment: Deployment; contracts: PovContracts }> {
  const provider: Provider | null = runner.provider ?? null
  if (!provider) throw new Error('loadContracts: the runner has no provider')
  const { chainId } = await provider.getNetwork()
  const deployment = readDeployment(chainId, opts)
  return { deployment, contracts: connectContracts(deployment.contracts, runner) }
}

let combined: Interface | null = null

/** One Interface with every function, event and custom error of the POV contracts (deduplicated; built once). */
export function combinedInterface(): Interface {
  if (combined != null) return combined
  const seen = new Set<string>()
  const fragments: unknown[] = []
  for (const abi of Object.values(ABIS)) {
    for (const f of abi as Array<{
      type: string
      name?: string
      inputs?: Array<{ type: string }>
    }>) {
      if (f.type === 'constructor' || f.type === 'fallback' || f.type === 'receive') continue
      const key = `${f.type}:${f.name}(${(f.inputs ?? []).map((i) => i.type).join(',')})`
      if (seen.has(key)) continue
      seen.add(key)
      fragments.push(f)
    }
  }
  combined = new Interface(fragments as InterfaceAbi)
  return combined
}
