/**
 * Adds fault reports to a deployment: deploys FaultReports owned by the timelock, records its
 * address in the deployment, and builds the governance proposal that wires it into the registry
 * (the registry is the timelock's, so wiring is a governance decision). docs/trust.md.
 */
import { ContractFactory, getAddress, parseEther } from 'ethers'
import type { Signer } from 'ethers'
import { loadArtifact } from '../chain/artifacts.js'
import type { Deployment } from '../chain/deployment.js'

export interface FaultReportsParams {
  /** POV a reporter posts, lost when governance rejects the report. @default 100 POV */
  reportBond?: bigint
  /** Seconds governance has to decide; the accused's withdrawal is frozen meanwhile. @default 3 days */
  decisionPeriod?: number
  /** Share of an upheld slash paid to the reporter, in basis points. @default 2000 (20 %) */
  reporterShareBps?: number
  /** Where forfeited bonds and the network's part of slashes go. @default the deployment's treasury */
  treasury?: string
}

export const FAULT_REPORT_DEFAULTS = {
  reportBond: parseEther('100'),
  decisionPeriod: 3 * 24 * 3600,
  reporterShareBps: 2000
} as const

/** Deploys FaultReports for `deployment` and returns the deployment with its address added. */
export async function deployFaultReports(
  signer: Signer,
  deployment: Deployment,
  p: FaultReportsParams = {}
): Promise<Deployment> {
  const { abi, bytecode } = loadArtifact('FaultReports')
  const c = deployment.contracts
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(
    c.token,
    c.registry,
    getAddress(p.treasury ?? deployment.params.treasury),
    p.reportBond ?? FAULT_REPORT_DEFAULTS.reportBond,
    p.decisionPeriod ?? FAULT_REPORT_DEFAULTS.decisionPeriod,
    p.reporterShareBps ?? FAULT_REPORT_DEFAULTS.reporterShareBps,
    c.timelock
  )
  await contract.waitForDeployment()
  return { ...deployment, faultReports: await contract.getAddress() }
}
