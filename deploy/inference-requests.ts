/**
 * InferenceRequests for a deployment (contracts/inference/InferenceRequests.sol, docs/contracts.md
 * "Inference requests"). `deployAll` deploys it owned by the timelock; `deployInferenceRequests`
 * adds it to a deployment made without it (it needs no wiring: it only reads ModelApprovals).
 */
import { getAddress, parseEther } from 'ethers'
import type { Signer } from 'ethers'
import type { Deployment } from '../chain/deployment.js'
import { TIE_MARGIN_MICRO } from '../chain/oracle.js'
import { addToDeployment, deployContract, outlastGovernanceRound } from './contract.js'

export interface InferenceRequestsParams {
  /** POV a fulfiller (and a challenger) posts per result. @default 100 POV */
  fulfilBond?: bigint
  /** Seconds a posted result can be challenged. @default 1 hour (public), 60 s (local) */
  challengeWindow?: number
  /** Seconds governance has to decide a dispute. @default twice the governance path */
  disputePeriod?: number
  /** Margins below this many micro-logits are near-ties. @default TIE_MARGIN_MICRO */
  tieMargin?: number
  /** Where both bonds go when both sides of a dispute were wrong. @default the deployment's treasury */
  treasury?: string
}

export const INFERENCE_DEFAULTS = {
  fulfilBond: parseEther('100'),
  challengeWindow: 3_600,
  tieMargin: TIE_MARGIN_MICRO
} as const

/** InferenceRequests.MIN/MAX_DISPUTE_PERIOD (checked against the contract by its test). */
export const MIN_DISPUTE_PERIOD = 3_600
export const MAX_DISPUTE_PERIOD = 30 * 24 * 3_600

/** A dispute's deciding proposal must pass before it expires: twice the governance path, within bounds. */
export function defaultDisputePeriod(governancePathSeconds: number): number {
  return outlastGovernanceRound(governancePathSeconds, {
    min: MIN_DISPUTE_PERIOD,
    max: MAX_DISPUTE_PERIOD
  })
}

/** Deploys InferenceRequests owned by `owner`; returns its address. */
export async function deployInferenceRequestsContract(
  signer: Signer,
  a: { token: string; models: string; owner: string; treasury: string },
  p: InferenceRequestsParams & { disputePeriod: number }
): Promise<string> {
  return await deployContract(signer, 'InferenceRequests', [
    a.token,
    a.models,
    getAddress(p.treasury ?? a.treasury),
    p.fulfilBond ?? INFERENCE_DEFAULTS.fulfilBond,
    p.challengeWindow ?? INFERENCE_DEFAULTS.challengeWindow,
    p.disputePeriod,
    p.tieMargin ?? INFERENCE_DEFAULTS.tieMargin,
    a.owner
  ])
}

/** Adds InferenceRequests, owned by the timelock, to a deployment made without it. */
export async function deployInferenceRequests(
  signer: Signer,
  deployment: Deployment,
  p: InferenceRequestsParams & { disputePeriod: number }
): Promise<Deployment> {
  return await addToDeployment(deployment, 'inferenceRequests', ({ contracts, owner, treasury }) =>
    deployInferenceRequestsContract(
      signer,
      { token: contracts.token, models: contracts.models, owner, treasury },
      p
    )
  )
}
