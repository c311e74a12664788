// An operator's standing as the chain sees it, read in one round of view calls: whether routers
// will pick the node, and if not, why and which command fixes it. Read by `pov node status`, by a
// running node (its /ready answer and the warnings it logs when the standing changes) and by tests.
import { ZeroAddress } from 'ethers'
import type { PovContracts } from './contracts.js'

export type NodeView = Awaited<ReturnType<PovContracts['registry']['nodeOf']>>

/** Why routers would not pick the node (or soon will not). */
export type StandingCode =
  'not-registered' | 'unbonding' | 'below-min-stake' | 'frozen' | 'model-revoked'

export interface StandingIssue {
  code: StandingCode
  /** What is wrong, in one line. */
  reason: string
  /** The command (or action) that fixes it. */
  remedy: string
  /** False for an issue that does not stop routers picking the node (a freeze only blocks
   *  withdrawals). */
  blocking: boolean
}

export interface Standing {
  operator: string
  registered: boolean
  /** Routers pick the node (the registry's isActive). */
  active: boolean
  stake: bigint
  minStake: bigint
  price: bigint
  modelId: string
  /** 0 when not frozen. */
  frozenUntil: bigint
  modelApproved: boolean
  issues: StandingIssue[]
  /** The registry's record as read (all zero for an unknown operator). */
  node: NodeView
}

/** One-line amount for the texts below (the caller formats its own in logs). */
type FormatPov = (wei: bigint) => string

/**
 * `node`: the registry's record of `operator` when the caller has just read it (a running node's
 * price poll), so it is not read twice.
 */
export async function readStanding(
  contracts: Pick<PovContracts, 'registry' | 'models'>,
  operator: string,
  fmt: FormatPov,
  now?: bigint,
  node?: NodeView
): Promise<Standing> {
  const { registry, models } = contracts
  const [n, active, minStake, frozenUntil] = await Promise.all([
    node ?? registry.nodeOf(operator),
    registry.isActive(operator),
    registry.minStake(),
    registry.withdrawalFrozenUntil(operator)
  ])
  // nodeOf is all zero for an unknown operator; a stake slashed to 0 is still registered
  const registered = n.operator !== ZeroAddress
  const modelApproved = registered ? await models.isApproved(n.modelId) : true
  const t = now ?? BigInt(Math.floor(Date.now() / 1000))
  const issues: StandingIssue[] = []
  if (!registered) {
    issues.push({
      code: 'not-registered',
      reason: `${operator} is not registered (never, or deregistered and withdrawn)`,
      remedy: 'register it: `pov node register --model BUNDLE --shards …`',
      blocking: true
    })
  } else {
    if (n.unbondingEnds > 0n)
      issues.push({
        code: 'unbonding',
        reason: `${operator} is unbonding (withdrawable at ${new Date(Number(n.unbondingEnds) * 1000).toISOString()}); routers no longer pick it`,
        remedy:
          'withdraw the stake after that with `pov node withdraw-stake`, then `pov node register` again to serve',
        blocking: true
      })
    if (n.stake < minStake)
      issues.push({
        code: 'below-min-stake',
        reason: `stake ${fmt(n.stake)} is below the registry minimum ${fmt(minStake)} (slashed, or the minimum was raised)`,
        remedy: `add at least ${fmt(minStake - n.stake)}: \`pov node add-stake ${fmtPlain(minStake - n.stake, fmt)}\``,
        blocking: true
      })
    if (!modelApproved)
      issues.push({
        code: 'model-revoked',
        reason: `model ${n.modelId} is no longer approved by governance; routers will not use it`,
        remedy:
          'serve an approved model (`pov audit` lists them): `pov node unbond`, then `pov node register --model BUNDLE` with its bundle',
        blocking: true
      })
  }
  if (frozenUntil > t)
    issues.push({
      code: 'frozen',
      reason: `withdrawals are frozen until ${new Date(Number(frozenUntil) * 1000).toISOString()} by a pending fault report`,
      remedy:
        '`pov audit` shows the report; governance decides it (`pov gov list`) — the node keeps serving meanwhile',
      blocking: false
    })
  return {
    operator,
    registered,
    active,
    stake: n.stake,
    minStake,
    price: n.price,
    modelId: n.modelId,
    frozenUntil,
    modelApproved,
    issues,
    node: n
  }
}

/** The amount as the CLI's --add value: the POV number without its unit. */
function fmtPlain(wei: bigint, fmt: FormatPov): string {
  return fmt(wei).replace(/\s*POV$/, '')
}

/** A stable key of the issues, to log only when the standing changes. */
export function standingKey(s: Pick<Standing, 'issues'>): string {
  return s.issues
    .map((i) => i.code)
    .sort()
    .join(',')
}
