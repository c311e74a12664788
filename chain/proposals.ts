// Governance proposals as the Governor's events record them: the list (numbered in the order they
// were made, so `#3` means the same proposal to everyone), one proposal's status, and the steps
// after a vote — queue and execute need the proposal's calls back, which only its
// ProposalCreated event holds.
import { getAddress, id as keccakText, type Provider } from 'ethers'
import { combinedInterface, type PovContracts } from './contracts.js'
import type { Deployment } from './deployment.js'
import { PROPOSAL_STATES } from './proposal-states.js'

export type ProposalState = (typeof PROPOSAL_STATES)[number]
export const SUPPORT_VALUES = { against: 0, for: 1, abstain: 2 } as const
export type Support = keyof typeof SUPPORT_VALUES

export interface ProposalRecord {
  /** 1-based, in creation order (block, log index) since the deployment. */
  number: number
  id: bigint
  proposer: string
  description: string
  descriptionHash: string
  targets: string[]
  values: bigint[]
  calldatas: string[]
  /** Block after which voting opens (the snapshot), and the last voting block. */
  voteStart: bigint
  voteEnd: bigint
  block: number
}

export interface DecodedProposalCall {
  target: string
  /** `registry.slash(0xab…, 5000000000000000000, "reason")`, or the raw selector when unknown. */
  call: string
}

export interface ProposalStatus extends ProposalRecord {
  state: ProposalState
  votes: { for: bigint; against: bigint; abstain: bigint }
  quorum: bigint
  /** Unix seconds after which a queued proposal may execute; null until queued. */
  eta: bigint | null
  currentBlock: number
  calls: DecodedProposalCall[]
}

export class ProposalNotFoundError extends Error {
  override name = 'ProposalNotFoundError'
}

/** Every proposal made since the deployment, oldest first. */
export async function listProposals(
  provider: Provider,
  deployment: Deployment,
  contracts: PovContracts
): Promise<ProposalRecord[]> {
  const governor = contracts.governor
  const logs = await provider.getLogs({
    address: deployment.contracts.governor,
    topics: [governor.interface.getEvent('ProposalCreated')!.topicHash],
    fromBlock: deployment.startBlock ?? 0,
    toBlock: 'latest'
  })
  logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index)
  return logs.map((log, i) => {
    const d = governor.interface.parseLog(log)!
    return {
      number: i + 1,
      id: d.args.proposalId as bigint,
      proposer: d.args.proposer as string,
      description: d.args.description as string,
      descriptionHash: keccakText(d.args.description as string),
      targets: [...(d.args.targets as string[])],
      values: [...(d.args[3] as bigint[])],
      calldatas: [...(d.args.calldatas as string[])],
      voteStart: d.args.voteStart as bigint,
      voteEnd: d.args.voteEnd as bigint,
      block: log.blockNumber
    }
  })
}

/**
 * Finds a proposal by its number in the list (`3` or `#3`), its full id (decimal or 0x hex), or
 * `latest` (the most recent one).
 */
export function pickProposal(list: ProposalRecord[], ref: string): ProposalRecord {
  const r = ref.trim().replace(/^#/, '')
  let found: ProposalRecord | undefined
  if (r === 'latest') found = list.at(-1)
  else if (/^\d{1,9}$/.test(r)) found = list.find((p) => p.number === Number(r))
  else if (/^(\d+|0x[0-9a-fA-F]+)$/.test(r)) found = list.find((p) => p.id === BigInt(r))
  else
    throw new ProposalNotFoundError(
      `invalid proposal "${ref}": give its number from \`pov gov list\` (e.g. 3), its id, or latest`
    )
  if (found == null)
    throw new ProposalNotFoundError(
      list.length === 0
        ? 'no proposal has been made on this deployment yet — make one with `pov gov propose`'
        : `no proposal "${ref}" on this deployment (there are ${list.length}; see \`pov gov list\`)`
    )
  return found
}

export async function proposalStatus(
  provider: Provider,
  deployment: Deployment,
  contracts: PovContracts,
  p: ProposalRecord
): Promise<ProposalStatus> {
  const g = contracts.governor
  const [state, [against, forVotes, abstain], eta, currentBlock] = await Promise.all([
    g.state(p.id),
    g.proposalVotes(p.id),
    g.proposalEta(p.id),
    provider.getBlockNumber()
  ])
  // quorum(timepoint) needs a past block: before the snapshot, use the current one for an estimate
  const quorum = await g.quorum(p.voteStart < BigInt(currentBlock) ? p.voteStart : currentBlock - 1)
  return {
    ...p,
    state: PROPOSAL_STATES[Number(state)] ?? 'Pending',
    votes: { for: forVotes, against, abstain },
    quorum,
    eta: eta === 0n ? null : eta,
    currentBlock,
    calls: decodeCalls(deployment, p)
  }
}

/** The proposal's calls, named by contract and function where the POV ABIs know them. */
export function decodeCalls(deployment: Deployment, p: ProposalRecord): DecodedProposalCall[] {
  const iface = combinedInterface()
  const names = new Map(
    Object.entries(deployment.contracts).map(([k, a]) => [getAddress(a), k] as const)
  )
  return p.targets.map((target, i) => {
    const who = names.get(getAddress(target)) ?? target
    try {
      const tx = iface.parseTransaction({ data: p.calldatas[i], value: p.values[i] })
      if (tx != null) {
        const args = tx.args.map((a: unknown) => formatArg(a)).join(', ')
        return { target, call: `${who}.${tx.name}(${args})` }
      }
    } catch {}
    return { target, call: `${who} ${p.calldatas[i].slice(0, 10)}…` }
  })
}

function formatArg(a: unknown): string {
  if (typeof a === 'bigint') return a.toString()
  if (typeof a === 'string') return /^0x/.test(a) ? a : JSON.stringify(a)
  if (Array.isArray(a)) return `(${a.map(formatArg).join(', ')})`
  return String(a)
}
