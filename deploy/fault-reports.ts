/**
 * FaultReports for a deployment. `deployAll` deploys and wires it itself (before the registry
 * goes to the timelock); `deployFaultReports` adds it to a deployment made without it, after which
 * one governance proposal (`wireFaultReportsActions`) wires it into the registry. docs/trust.md.
 */
import { getAddress, parseEther } from 'ethers'
import type { Signer } from 'ethers'
import type { Deployment } from '../chain/deployment.js'
import { addToDeployment, deployContract, outlastGovernanceRound } from './contract.js'

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

/** FaultReports.MIN_DECISION_PERIOD and MAX_DECISION_PERIOD (checked against the contract by its test). */
export const MIN_DECISION_PERIOD = 3_600
export const MAX_DECISION_PERIOD = 30 * 24 * 3_600

/**
 * The decision period a deployment should use: a report's uphold proposal must pass before its
 * deadline, so twice the governance path, within the contract's bounds (1 hour to 30 days).
 */
export function defaultDecisionPeriod(governancePathSeconds: number): number {
  return outlastGovernanceRound(governancePathSeconds, {
    min: MIN_DECISION_PERIOD,
    max: MAX_DECISION_PERIOD
  })
}

/** Deploys FaultReports owned by `owner` next to `token` and `registry`; returns its address. */
export async function deployFaultReportsContract(
  signer: Signer,
  a: { token: string; registry: string; owner: string; treasury: string },
  p: FaultReportsParams = {}
): Promise<string> {
  return await deployContract(signer, 'FaultReports', [
    a.token,
    a.registry,
    getAddress(p.treasury ?? a.treasury),
    p.reportBond ?? FAULT_REPORT_DEFAULTS.reportBond,
    p.bondBps ?? FAULT_REPORT_DEFAULTS.bondBps,
    p.decisionPeriod ?? FAULT_REPORT_DEFAULTS.decisionPeriod,
    p.reporterShareBps ?? FAULT_REPORT_DEFAULTS.reporterShareBps,
    a.owner
  ])
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
  return await addToDeployment(deployment, 'faultReports', ({ contracts, owner, treasury }) =>
    deployFaultReportsContract(
      signer,
      { token: contracts.token, registry: contracts.registry, owner, treasury },
      p
    )
  )
}
