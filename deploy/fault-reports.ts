/**
 * FaultReports for a deployment. `deployAll` deploys and wires it itself (before the registry
 * goes to the timelock); `deployFaultReports` adds it to a deployment made without it, after which
 * one governance proposal (`wireFaultReportsActions`) wires it into the registry. docs/trust.md.
 */
import { ContractFactory, getAddress, parseEther } from 'ethers'
import type { Signer } from 'ethers'
import { loadArtifact } from '../chain/artifacts.js'
import type { Deployment } from '../chain/deployment.js'

export interface FaultReportsParams {
  /** The least POV a reporter posts, lost to the accused unless upheld. @default 100 POV (≥ 1) */
  reportBond?: bigint
  /** The bond as a share of the accused's stake, when that is more. @default 100 bps (≥ 10) */
  bondBps?: number
  /** Seconds governance has to decide; the accused's withdrawal is frozen meanwhile. @default 3 days */
  decisionPeriod?: number
  /** Share of an upheld slash paid to the reporter, in basis points. @default 2000 (20 %) */
  reporterShareBps?: number
  /** Where forfeited bonds and the network's part of slashes go. @default the deployment's treasury */
  treasury?: string
}

export const FAULT_REPORT_DEFAULTS = {
  reportBond: parseEther('100'),
  bondBps: 100,
  decisionPeriod: 3 * 24 * 3600,
  reporterShareBps: 2000
} as const

/**
 * The decision period a deployment should use: a report must outlive one whole governance round
 * (its uphold proposal is made, voted, queued and executed before the deadline), so twice the
 * governance path, within the contract's bounds (1 hour to 30 days).
 */
export function defaultDecisionPeriod(governancePathSeconds: number): number {
  return Math.min(MAX_DECISION_PERIOD, Math.max(MIN_DECISION_PERIOD, 2 * governancePathSeconds))
}

/** FaultReports.MIN_DECISION_PERIOD and MAX_DECISION_PERIOD. */
export const MIN_DECISION_PERIOD = 3_600
export const MAX_DECISION_PERIOD = 30 * 24 * 3_600

/** Deploys FaultReports owned by `owner` next to `token` and `registry`; returns its address. */
export async function deployFaultReportsContract(
  signer: Signer,
  a: { token: string; registry: string; owner: string; treasury: string },
  p: FaultReportsParams = {}
): Promise<string> {
  const { abi, bytecode } = loadArtifact('FaultReports')
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(
    a.token,
    a.registry,
    getAddress(p.treasury ?? a.treasury),
    p.reportBond ?? FAULT_REPORT_DEFAULTS.reportBond,
    p.bondBps ?? FAULT_REPORT_DEFAULTS.bondBps,
    p.decisionPeriod ?? FAULT_REPORT_DEFAULTS.decisionPeriod,
    p.reporterShareBps ?? FAULT_REPORT_DEFAULTS.reporterShareBps,
    a.owner
  )
  await contract.waitForDeployment()
  return await contract.getAddress()
}

/**
 * Adds FaultReports, owned by the timelock, to a deployment made without it and returns the
 * deployment with its address; it acts once governance wires it (`wireFaultReportsActions`).
 */
export async function deployFaultReports(
  signer: Signer,
  deployment: Deployment,
  p: FaultReportsParams = {}
): Promise<Deployment> {
  const c = deployment.contracts
  const address = await deployFaultReportsContract(
    signer,
    {
      token: c.token,
      registry: c.registry,
      owner: c.timelock,
      treasury: deployment.params.treasury
    },
    p
  )
  return { ...deployment, faultReports: address }
}
