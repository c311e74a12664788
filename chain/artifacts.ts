/**
 * Compiled contract artifacts (ABI + bytecode) from `artifacts/`, produced by `npx hardhat build`.
 * Only deployment needs bytecode; clients use the committed ABIs in `chain/abi/`.
 */
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { InterfaceAbi } from 'ethers'

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Source file (relative to contracts/) of every deployable contract. */
export const CONTRACT_SOURCES = {
  PovToken: 'PovToken.sol',
  ModelApprovals: 'ModelApprovals.sol',
  ExpertRegistry: 'ExpertRegistry.sol',
  PovEscrow: 'PovEscrow.sol',
  PovGovernor: 'governance/PovGovernor.sol',
  PovTimelock: 'governance/PovTimelock.sol',
  FaultReports: 'faults/FaultReports.sol',
  InferenceRequests: 'inference/InferenceRequests.sol',
  InferenceBounty: 'examples/InferenceBounty.sol'
} as const

export type ContractName = keyof typeof CONTRACT_SOURCES

export interface Artifact {
  contractName: string
  abi: InterfaceAbi
  bytecode: string
}

export function artifactPath(name: ContractName, root = REPO_ROOT): string {
  return join(root, 'artifacts', 'contracts', CONTRACT_SOURCES[name], `${name}.json`)
}

export function loadArtifact(name: ContractName, root = REPO_ROOT): Artifact {
  const path = artifactPath(name, root)
  if (!existsSync(path))
    throw new Error(`no compiled artifact for ${name} at ${path} — run npx hardhat build`)
  const json = JSON.parse(readFileSync(path, 'utf8')) as Artifact
  return { contractName: json.contractName, abi: json.abi, bytecode: json.bytecode }
}
