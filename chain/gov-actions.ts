// What a governance proposal can do, by name: approve or revoke a model, set a parameter, slash
// an operator. Each action turns its inputs into the calls the timelock will make and a readable
// description. Every governed parameter is one row of GOV_PARAMS: adding a parameter to a
// contract means adding its row here, and `pov gov propose set` and `pov gov params` pick it up.
import { formatUnits, getAddress, isHexString, parseUnits } from 'ethers'
import type { ContractAddresses } from './deployment.js'
import type { FaultReportsContract, InferenceRequestsContract, PovContracts } from './contracts.js'
import type { ProposalAction } from './governance.js'
import { sweepAction } from './faults.js'

/** How a parameter's value is written on the command line and shown back. */
export type ParamKind =
  'pov' | 'seconds' | 'blocks' | 'bps' | 'percent' | 'address' | 'bool' | 'micrologit'

/**
 * The contracts a parameter may live in: the core ones, and those a deployment may leave out
 * (`--no-fault-reports`, `--no-inference-requests`).
 */
export type GovContracts = PovContracts &
  Partial<{ faultReports: FaultReportsContract; inferenceRequests: InferenceRequestsContract }>

export interface GovParam {
  /** The name on the command line: `pov gov propose set min-stake 2000`. */
  name: string
  contract: (keyof ContractAddresses & keyof PovContracts) | 'faultReports' | 'inferenceRequests'
  /** onlyOwner / onlyGovernance setter taking the one value. */
  setter: string
  /** View returning the current value. */
  getter: string
  kind: ParamKind
  description: string
}

export const GOV_PARAMS: readonly GovParam[] = [
  {
    name: 'min-stake',
    contract: 'registry',
    setter: 'setMinStake',
    getter: 'minStake',
    kind: 'pov',
    description: 'POV an operator must stake to register'
  },
  {
    name: 'unbonding-period',
    contract: 'registry',
    setter: 'setUnbondingPeriod',
    getter: 'unbondingPeriod',
    kind: 'seconds',
    description: "time between an operator's unbond and the stake's return (slashable meanwhile)"
  },
  {
    name: 'registry-treasury',
    contract: 'registry',
    setter: 'setTreasury',
    getter: 'treasury',
    kind: 'address',
    description: 'receives slashed stake'
  },
  {
    name: 'fee-bps',
    contract: 'escrow',
    setter: 'setFeeBps',
    getter: 'feeBps',
    kind: 'bps',
    description: 'protocol fee on every redeemed voucher, in basis points'
  },
  {
    name: 'unlock-period',
    contract: 'escrow',
    setter: 'setUnlockPeriod',
    getter: 'unlockPeriod',
    kind: 'seconds',
    description: "time between a payer's unlock and withdraw (nodes redeem meanwhile)"
  },
  {
    name: 'escrow-treasury',
    contract: 'escrow',
    setter: 'setTreasury',
    getter: 'treasury',
    kind: 'address',
    description: 'receives the protocol fees'
  },
  {
    name: 'minting-enabled',
    contract: 'token',
    setter: 'setMintingEnabled',
    getter: 'mintingEnabled',
    kind: 'bool',
    description: 'whether governance may mint POV'
  },
  {
    name: 'voting-delay',
    contract: 'governor',
    setter: 'setVotingDelay',
    getter: 'votingDelay',
    kind: 'blocks',
    description: 'blocks between a proposal and the start of its vote'
  },
  {
    name: 'voting-period',
    contract: 'governor',
    setter: 'setVotingPeriod',
    getter: 'votingPeriod',
    kind: 'blocks',
    description: 'blocks a vote lasts'
  },
  {
    name: 'proposal-threshold',
    contract: 'governor',
    setter: 'setProposalThreshold',
    getter: 'proposalThreshold',
    kind: 'pov',
    description: 'votes needed to make a proposal'
  },
  {
    name: 'quorum-percent',
    contract: 'governor',
    setter: 'updateQuorumNumerator',
    getter: 'quorumNumerator()',
    kind: 'percent',
    description: 'share of the supply (at the snapshot) that must vote For or Abstain'
  },
  {
    name: 'timelock-delay',
    contract: 'timelock',
    setter: 'updateDelay',
    getter: 'getMinDelay',
    kind: 'seconds',
    description: 'time between queueing a passed proposal and executing it'
  },
  {
    name: 'report-bond',
    contract: 'faultReports',
    setter: 'setReportBond',
    getter: 'reportBond',
    kind: 'pov',
    description: "a fault report's bond floor (the reporter loses it when the report is rejected)"
  },
  {
    name: 'report-bond-bps',
    contract: 'faultReports',
    setter: 'setBondBps',
    getter: 'bondBps',
    kind: 'bps',
    description: "a fault report's bond as a share of the accused's stake, when above the floor"
  },
  {
    name: 'report-decision-period',
    contract: 'faultReports',
    setter: 'setDecisionPeriod',
    getter: 'decisionPeriod',
    kind: 'seconds',
    description: 'time governance has to decide a fault report before it lapses'
  },
  {
    name: 'reporter-share',
    contract: 'faultReports',
    setter: 'setReporterShare',
    getter: 'reporterShareBps',
    kind: 'bps',
    description: "the reporter's share of an upheld report's slash"
  },
  {
    name: 'fault-treasury',
    contract: 'faultReports',
    setter: 'setTreasury',
    getter: 'treasury',
    kind: 'address',
    description: "receives an upheld slash's remainder and rejected reports' bonds"
  },
  {
    name: 'fulfil-bond',
    contract: 'inferenceRequests',
    setter: 'setFulfilBond',
    getter: 'fulfilBond',
    kind: 'pov',
    description: 'bond an inference result (and a challenge) posts; fixed per request'
  },
  {
    name: 'challenge-window',
    contract: 'inferenceRequests',
    setter: 'setChallengeWindow',
    getter: 'challengeWindow',
    kind: 'seconds',
    description: 'time a posted inference result can be challenged; fixed per request'
  },
  {
    name: 'dispute-period',
    contract: 'inferenceRequests',
    setter: 'setDisputePeriod',
    getter: 'disputePeriod',
    kind: 'seconds',
    description: 'time governance has to decide an inference dispute before it expires'
  },
  {
    name: 'tie-margin',
    contract: 'inferenceRequests',
    setter: 'setTieMargin',
    getter: 'tieMargin',
    kind: 'micrologit',
    description: 'top-1/top-2 logit margin below which a differing token is a near-tie'
  },
  {
    name: 'inference-treasury',
    contract: 'inferenceRequests',
    setter: 'setTreasury',
    getter: 'treasury',
    kind: 'address',
    description: 'receives both bonds of a dispute decided BothWrong'
  }
]

/** The client of `p`'s contract; GovInputError when this deployment has none. */
function contractOf(c: GovContracts, p: GovParam) {
  const contract = c[p.contract]
  if (contract == null)
    throw new GovInputError(
      `this deployment has no ${p.contract === 'faultReports' ? 'FaultReports' : 'InferenceRequests'} contract: ${p.name} cannot be set`
    )
  return contract
}

export class GovInputError extends Error {
  override name = 'GovInputError'
}

export function findParam(name: string): GovParam {
  const p = GOV_PARAMS.find((x) => x.name === name)
  if (p == null)
    throw new GovInputError(
      `unknown parameter "${name}" — one of: ${GOV_PARAMS.map((x) => x.name).join(', ')}`
    )
  return p
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

/** "3600", "90m", "2h", "7d" → seconds. */
export function parseDuration(value: string, what: string): bigint {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(value.trim())
  if (m == null)
    throw new GovInputError(
      `invalid ${what} "${value}": expected seconds or a number with s, m, h, d or w (e.g. 3600, 90m, 7d)`
    )
  return BigInt(m[1]) * BigInt(DURATION_UNITS[m[2] === '' ? 's' : m[2]])
}

/** A duration in seconds as "3600 s (1h)". */
export function formatDuration(seconds: bigint): string {
  const s = Number(seconds)
  for (const [u, n] of [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60]
  ] as const)
    if (s >= n && s % n === 0) return `${s} s (${s / n}${u})`
  return `${s} s`
}

function wholeNumber(value: string, what: string, max?: number): bigint {
  if (!/^\d+$/.test(value.trim()) || (max != null && Number(value) > max))
    throw new GovInputError(
      `invalid ${what} "${value}": expected a whole number${max != null ? ` from 0 to ${max}` : ''}`
    )
  return BigInt(value.trim())
}

/** Parses a parameter value as its kind wants it (POV amounts in POV, not wei). */
export function parseParamValue(p: GovParam, value: string): bigint | string | boolean {
  const what = `value for ${p.name}`
  switch (p.kind) {
    case 'pov':
      try {
        const v = parseUnits(value.trim(), 18)
        if (v < 0n) throw new Error('negative')
        return v
      } catch {
        throw new GovInputError(
          `invalid ${what} "${value}": expected an amount of POV such as 1000`
        )
      }
    case 'seconds':
      return parseDuration(value, what)
    case 'blocks':
      return wholeNumber(value, what)
    case 'bps':
      return wholeNumber(value, what, 10_000)
    case 'percent':
      return wholeNumber(value, what, 100)
    case 'micrologit':
      return wholeNumber(value, `${what} (micro-logits: 50000 = 0.05 logit)`, 10_000_000)
    case 'address':
      try {
        return getAddress(value.trim())
      } catch {
        throw new GovInputError(`invalid ${what} "${value}": expected a 0x… address`)
      }
    case 'bool':
      if (/^(true|on|yes|1)$/i.test(value.trim())) return true
      if (/^(false|off|no|0)$/i.test(value.trim())) return false
      throw new GovInputError(`invalid ${what} "${value}": expected true or false`)
  }
}

/** A parameter value for people: POV amounts in POV, durations with their unit. */
export function formatParamValue(p: GovParam, v: unknown): string {
  switch (p.kind) {
    case 'pov': {
      const s = formatUnits(BigInt(v as bigint), 18)
      return `${s.endsWith('.0') ? s.slice(0, -2) : s} POV`
    }
    case 'seconds':
      return formatDuration(BigInt(v as bigint))
    case 'blocks':
      return `${String(v)} block${String(v) === '1' ? '' : 's'}`
    case 'bps':
      return `${String(v)} bps (${Number(v) / 100} %)`
    case 'percent':
      return `${String(v)} %`
    case 'micrologit':
      return `${String(v)} µlogit (${Number(v) / 1e6} logit)`
    default:
      return String(v)
  }
}

/** The current value of every parameter of the contracts this deployment has. */
export async function readParams(
  contracts: GovContracts
): Promise<Array<{ param: GovParam; value: unknown }>> {
  return await Promise.all(
    GOV_PARAMS.filter((param) => contracts[param.contract] != null).map(async (param) => ({
      param,
      value: (await contractOf(contracts, param).getFunction(param.getter).staticCall()) as unknown
    }))
  )
}

export interface BuiltProposal {
  actions: ProposalAction[]
  /** Default description (the proposal's title); the proposer may give another. */
  description: string
}

export interface ModelApprovalArgs {
  modelId: string
  name: string
  layers: number
  experts: number
  shardCount: number
  uri: string
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/

function modelIdOrThrow(id: string): string {
  if (!BYTES32.test(id))
    throw new GovInputError(`invalid model id "${id}": expected 0x followed by 64 hex digits`)
  return id.toLowerCase()
}

export function approveModelAction(c: PovContracts, a: ModelApprovalArgs): BuiltProposal {
  const modelId = modelIdOrThrow(a.modelId)
  return {
    actions: [
      {
        target: c.models.target as string,
        data: c.models.interface.encodeFunctionData('approveModel', [
          modelId,
          {
            name: a.name,
            layers: a.layers,
            experts: a.experts,
            shardCount: a.shardCount,
            uri: a.uri
          }
        ])
      }
    ],
    description: `Approve model ${a.name} (${modelId})`
  }
}

export function revokeModelAction(c: PovContracts, modelIdIn: string): BuiltProposal {
  const modelId = modelIdOrThrow(modelIdIn)
  return {
    actions: [
      {
        target: c.models.target as string,
        data: c.models.interface.encodeFunctionData('revokeModel', [modelId])
      }
    ],
    description: `Revoke model ${modelId}`
  }
}

export function setParamAction(c: GovContracts, name: string, value: string): BuiltProposal {
  const p = findParam(name)
  const v = parseParamValue(p, value)
  const contract = contractOf(c, p)
  return {
    actions: [
      {
        target: contract.target as string,
        data: contract.interface.encodeFunctionData(p.setter, [v])
      }
    ],
    description: `Set ${p.name} to ${formatParamValue(p, v)}`
  }
}

/**
 * Slashes `amount` POV of `operator`'s stake to the treasury. An evidence hash (of a fault file,
 * for instance) is carried in the on-chain reason so auditors can match the slash to it. Where
 * FaultReports is the registry's treasury (`faultReports` given), the proposal ends with its
 * sweep, so the stake goes on to the real treasury at once and no reporter's share is taken of it.
 */
export function slashAction(
  c: PovContracts,
  a: { operator: string; amount: string; reason: string; evidence?: string; faultReports?: string }
): BuiltProposal {
  let operator: string
  try {
    operator = getAddress(a.operator)
  } catch {
    throw new GovInputError(`invalid operator "${a.operator}": expected a 0x… address`)
  }
  const p: GovParam = { ...findParam('min-stake'), name: 'amount' }
  const amount = parseParamValue(p, a.amount) as bigint
  if (amount === 0n) throw new GovInputError('the slash amount must be above 0 POV')
  if (a.evidence != null && !(isHexString(a.evidence, 32) || isHexString(a.evidence)))
    throw new GovInputError(`invalid evidence "${a.evidence}": expected a 0x… hash`)
  if (a.reason.trim() === '') throw new GovInputError('say why: --reason TEXT')
  const reason = a.evidence != null ? `${a.reason} (evidence ${a.evidence})` : a.reason
  return {
    actions: [
      {
        target: c.registry.target as string,
        data: c.registry.interface.encodeFunctionData('slash', [operator, amount, reason])
      },
      ...(a.faultReports != null ? [sweepAction(a.faultReports)] : [])
    ],
    description: `Slash ${formatParamValue(p, amount)} of ${operator}: ${reason}`
  }
}
