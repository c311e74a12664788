// The auditor's view of the chain: governance proposals with their votes and decoded calls, model
// approvals, the registry's history, settlements, and the check that every registered node serves
// an approved model. Everything is read from events and views; ordering is (block, tx hash, log
// index) so every auditor reproduces the same report.
import {
  getAddress,
  type Log,
  type LogDescription,
  type Provider,
  type TransactionDescription
} from 'ethers'
import { combinedInterface, connectContracts } from '../contracts.js'
import type { Deployment } from '../deployment.js'
import type { ModelApprovalArgs } from '../gov-actions.js'
import { PROPOSAL_STATES } from '../proposal-states.js'
import { faultReportsOf, listFaultReports, type FaultStatus } from '../faults.js'
import { collectInference, type InferenceRow } from './inference.js'

const SUPPORT = ['against', 'for', 'abstain'] as const

export interface EventRef {
  block: number
  tx: string
  logIndex: number
}
export interface DecodedCall {
  target: string
  targetName: string
  value: string
  function: string
  args: Record<string, unknown>
}
export interface VoteRow extends EventRef {
  voter: string
  weight: string
  support: (typeof SUPPORT)[number]
  reason: string
}
export interface ProposalReport {
  id: string
  state: string
  proposer: string
  description: string
  votes: { for: string; against: string; abstain: string }
  quorum: string
  snapshot: string
  deadline: string
  eta: string | null
  calls: DecodedCall[]
  voters: VoteRow[]
  timeline: Array<EventRef & { event: string }>
}
export interface ModelReport extends ModelApprovalArgs {
  approved: boolean
  history: Array<EventRef & { event: string }>
}
export interface RegistryEvent extends EventRef {
  event: string
  operator: string
  args: Record<string, unknown>
}
export interface SettlementRow extends EventRef {
  payer: string
  payee: string
  amount: string
  fee: string
  shortfall: string
  cumulativeAmount: string
}
export interface Totals {
  amount: string
  fee: string
  net: string
  vouchers: number
}
/** A payee taking its credited earnings out of the escrow (`EarningsWithdrawn`). */
export interface WithdrawalRow extends EventRef {
  payee: string
  amount: string
}
export interface NodeCheck {
  operator: string
  peerId: string
  modelId: string
  active: boolean
  approved: boolean
  ok: boolean
  detail: string
  dial?: { ok: boolean; detail: string }
}

export interface AuditReport {
  chainId: number
  fromBlock: number
  toBlock: number
  contracts: Deployment['contracts']
  proposals: ProposalReport[]
  models: ModelReport[]
  registry: RegistryEvent[]
  /** Redeemed vouchers credit the payee's earnings in the escrow (net of fee); `withdrawals` take them out. */
  settlements: {
    vouchers: SettlementRow[]
    perNode: Record<string, Totals>
    perPayer: Record<string, Totals>
    total: Totals
    withdrawals: WithdrawalRow[]
    withdrawnPerNode: Record<string, string>
  }
  checks: NodeCheck[]
  /** Fault reports and their outcomes (empty when the deployment has no FaultReports). */
  faults: FaultRow[]
  /** Inference requests, results, disputes and payouts (empty without InferenceRequests). */
  inference: InferenceRow[]
}

export interface FaultRow {
  id: number
  status: FaultStatus
  reporter: string
  operator: string
  evidenceHash: string
  uri: string
  bond: string
  /** The price of the convicted calls the reporter claims back out of the slash (wei). */
  refund: string
  deadline: number
  slashed: string
  reward: string
  timeline: Array<EventRef & { event: string }>
}

/** Dials a node and returns the model ids / manifest hashes it reports (the router's info protocol). */
export type NodeDialer = (node: {
  operator: string
  peerId: string
  multiaddrs: string[]
}) => Promise<Array<{ modelId: string; manifestHash: string }>>

const REGISTRY_EVENTS = new Set([
  'NodeRegistered',
  'PriceUpdated',
  'MultiaddrsUpdated',
  'ShardsUpdated',
  'StakeAdded',
  'UnbondingStarted',
  'StakeWithdrawn',
  'Slashed'
])

function ref(log: Log): EventRef {
  return { block: log.blockNumber, tx: log.transactionHash, logIndex: log.index }
}
function order(a: EventRef, b: EventRef): number {
  return a.block - b.block || (a.tx < b.tx ? -1 : a.tx > b.tx ? 1 : 0) || a.logIndex - b.logIndex
}

/** Plain JSON for an ethers Result (named fields, bigint as decimal strings). */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) {
    const r = v as unknown[] & { toObject?: () => Record<string, unknown> }
    if (typeof r.toObject === 'function') {
      try {
        const o = r.toObject()
        if (Object.keys(o).length > 0 && !Object.keys(o).every((k) => /^_?\d+$/.test(k)))
          return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]))
      } catch {}
    }
    return r.map(plain)
  }
  return v
}

function args(
  d: Pick<LogDescription | TransactionDescription, 'fragment' | 'args'>
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  d.fragment.inputs.forEach((p, i) => {
    out[p.name === '' ? String(i) : p.name] = plain((d.args as unknown[])[i])
  })
  return out
}

/** A decoded event of one of the deployment's contracts; `from` names the contract. */
export interface ParsedEvent {
  log: Log
  d: LogDescription
  from: string
}

/** The contract name of each deployment address (checksummed), for `ParsedEvent.from`. */
export function contractNames(addresses: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(addresses).map(([k, a]) => [getAddress(a), k]))
}

/** Decodes the logs the POV ABIs know (others are skipped), in (block, tx, log index) order. */
export function parseEvents(
  logs: readonly Log[],
  names: ReadonlyMap<string, string>,
  iface = combinedInterface()
): ParsedEvent[] {
  const parsed: ParsedEvent[] = []
  for (const log of logs) {
    let d: LogDescription | null = null
    try {
      d = iface.parseLog(log)
    } catch {}
    if (d != null) parsed.push({ log, d, from: names.get(getAddress(log.address)) ?? log.address })
  }
  return parsed.sort((a, b) => order(ref(a.log), ref(b.log)))
}

/** Proposals from the governor's events: calls decoded, votes cast, timeline, eta. `state`,
 *  `votes` and `quorum` come from the governor's views (readProposalState). */
export function collectProposals(
  parsed: readonly ParsedEvent[],
  names: ReadonlyMap<string, string>,
  iface = combinedInterface()
): ProposalReport[] {
  const proposals = new Map<string, ProposalReport>()
  for (const { log, d, from } of parsed) {
    if (from !== 'governor') continue
    const id = String(d.args.proposalId)
    if (d.name === 'ProposalCreated') {
      const targets = d.args.targets as string[]
      const values = d.args[3] as bigint[]
      const calldatas = d.args.calldatas as string[]
      proposals.set(id, {
        id,
        state: '',
        proposer: d.args.proposer,
        description: d.args.description,
        votes: { for: '0', against: '0', abstain: '0' },
        quorum: '0',
        snapshot: String(d.args.voteStart),
        deadline: String(d.args.voteEnd),
        eta: null,
        calls: targets.map((t, i) => decodeCall(iface, names, t, values[i], calldatas[i])),
        voters: [],
        timeline: []
      })
    }
    const p = proposals.get(id)
    if (p == null) continue
    p.timeline.push({ ...ref(log), event: d.name })
    if (d.name === 'VoteCast' || d.name === 'VoteCastWithParams') {
      p.voters.push({
        ...ref(log),
        voter: d.args.voter,
        weight: String(d.args.weight),
        support: SUPPORT[Number(d.args.support)] ?? 'abstain',
        reason: d.args.reason
      })
    }
    if (d.name === 'ProposalQueued') p.eta = String(d.args.etaSeconds ?? d.args[1])
  }
  return [...proposals.values()]
}

/** Models from the approvals' events (`approved` as of the last event; readModelState asks). */
export function collectModels(parsed: readonly ParsedEvent[]): ModelReport[] {
  const models = new Map<string, ModelReport>()
  for (const { log, d, from } of parsed) {
    if (from !== 'models') continue
    const id = String(d.args.modelId)
    if (d.name === 'ModelApproved') {
      const prev = models.get(id)
      models.set(id, {
        modelId: id,
        name: d.args.name,
        layers: Number(d.args.layers),
        experts: Number(d.args.experts),
        shardCount: Number(d.args.shardCount),
        uri: d.args.uri,
        approved: true,
        history: [...(prev?.history ?? [])]
      })
    }
    const m = models.get(id)
    if (m == null) continue
    m.history.push({ ...ref(log), event: d.name })
    if (d.name === 'ModelRevoked') m.approved = false
  }
  return [...models.values()]
}

/** The registry's history, and every operator that ever registered. */
export function collectRegistry(parsed: readonly ParsedEvent[]): {
  registry: RegistryEvent[]
  operators: string[]
} {
  const registry: RegistryEvent[] = []
  const operators = new Set<string>()
  for (const { log, d, from } of parsed) {
    if (from !== 'registry' || !REGISTRY_EVENTS.has(d.name)) continue
    const a = args(d)
    registry.push({ ...ref(log), event: d.name, operator: String(a.operator), args: a })
    if (d.name === 'NodeRegistered') operators.add(String(a.operator))
  }
  return { registry, operators: [...operators] }
}

/** Redeemed vouchers with totals per node, per payer and overall; earnings withdrawn. */
export function collectSettlements(parsed: readonly ParsedEvent[]): AuditReport['settlements'] {
  const vouchers: SettlementRow[] = []
  const perNode: Record<string, Totals> = {}
  const perPayer: Record<string, Totals> = {}
  const total = zero()
  for (const { log, d, from } of parsed) {
    if (from !== 'escrow' || d.name !== 'VoucherRedeemed') continue
    const row: SettlementRow = {
      ...ref(log),
      payer: d.args.payer,
      payee: d.args.payee,
      amount: String(d.args.amount),
      fee: String(d.args.fee),
      shortfall: String(d.args.shortfall),
      cumulativeAmount: String(d.args.cumulativeAmount)
    }
    vouchers.push(row)
    for (const t of [(perNode[row.payee] ??= zero()), (perPayer[row.payer] ??= zero()), total])
      add(t, row)
  }
  const withdrawals: WithdrawalRow[] = []
  const withdrawnPerNode: Record<string, string> = {}
  for (const { log, d, from } of parsed) {
    if (from !== 'escrow' || d.name !== 'EarningsWithdrawn') continue
    withdrawals.push({ ...ref(log), payee: d.args.payee, amount: String(d.args.amount) })
    withdrawnPerNode[d.args.payee] = String(
      BigInt(withdrawnPerNode[d.args.payee] ?? '0') + BigInt(d.args.amount)
    )
  }
  return { vouchers, perNode, perPayer, total, withdrawals, withdrawnPerNode }
}

/** The dial part of a node check: does the node report the approved manifest hash? */
export function dialCheck(
  modelId: string,
  served: Array<{ modelId: string; manifestHash: string }>
): { ok: boolean; detail: string } {
  const match = served.find((s) => s.modelId.toLowerCase() === modelId.toLowerCase())
  const ok = match != null && match.manifestHash.toLowerCase() === modelId.toLowerCase()
  return {
    ok,
    detail: ok
      ? 'node reports the approved manifest hash'
      : match == null
        ? `node does not report model ${modelId}`
        : `node reports manifest hash ${match.manifestHash}, chain approved ${modelId}`
  }
}

type Contracts = ReturnType<typeof connectContracts>

/** Fills in each proposal's state, vote totals and quorum from the governor's views. */
async function readProposalState(proposals: ProposalReport[], c: Contracts): Promise<void> {
  for (const p of proposals) {
    p.state = PROPOSAL_STATES[Number(await c.governor.state(p.id))] ?? 'Unknown'
    const [against, forVotes, abstain] = await c.governor.proposalVotes(p.id)
    p.votes = { for: forVotes.toString(), against: against.toString(), abstain: abstain.toString() }
    try {
      p.quorum = String(await c.governor.quorum(p.snapshot))
    } catch {
      p.quorum = 'n/a'
    }
  }
}

/** Every registered node serves an approved model (and, when dialled, the approved manifest). */
async function checkNodes(
  operators: string[],
  c: Contracts,
  dial: NodeDialer | undefined
): Promise<NodeCheck[]> {
  const checks: NodeCheck[] = []
  for (const op of operators) {
    const n = await c.registry.nodeOf(op)
    // an operator that withdrew its stake has left: no registration is left to check
    if (n.stake === 0n && BigInt(n.modelId) === 0n) continue
    const active = await c.registry.isActive(op)
    const approved = await c.models.isApproved(n.modelId)
    const check: NodeCheck = {
      operator: op,
      peerId: n.peerId,
      modelId: n.modelId,
      active,
      approved,
      ok: approved,
      detail: approved ? 'serves an approved model' : `model ${n.modelId} is not approved`
    }
    if (dial != null && active) {
      try {
        check.dial = dialCheck(
          n.modelId,
          await dial({ operator: op, peerId: n.peerId, multiaddrs: [...n.multiaddrs] })
        )
      } catch (err) {
        check.dial = { ok: false, detail: `unreachable: ${(err as Error).message}` }
      }
      check.ok = check.ok && check.dial.ok
    }
    checks.push(check)
  }
  return checks
}

/** Fault reports: the state of each (views), with its events as a timeline. */
async function collectFaults(
  parsed: readonly ParsedEvent[],
  deployment: Deployment,
  provider: Provider
): Promise<FaultRow[]> {
  if (deployment.faultReports == null) return []
  return (await listFaultReports(faultReportsOf(deployment, provider))).map((r) => ({
    id: r.id,
    status: r.status,
    reporter: r.reporter,
    operator: r.operator,
    evidenceHash: r.evidenceHash,
    uri: r.uri,
    bond: r.bond.toString(),
    refund: r.refund.toString(),
    deadline: r.deadline,
    slashed: r.slashed.toString(),
    reward: r.reward.toString(),
    timeline: parsed
      .filter(({ d, from }) => from === 'faultReports' && Number(d.args.reportId) === r.id)
      .map(({ log, d }) => ({ ...ref(log), event: d.name }))
  }))
}

export async function buildAuditReport(
  provider: Provider,
  deployment: Deployment,
  opts: { fromBlock?: number; dial?: NodeDialer } = {}
): Promise<AuditReport> {
  const c = connectContracts(deployment.contracts, provider)
  const addresses: Record<string, string> = {
    ...deployment.contracts,
    ...(deployment.faultReports != null ? { faultReports: deployment.faultReports } : {})
  }
  const names = contractNames(addresses)
  const fromBlock = opts.fromBlock ?? deployment.startBlock ?? 0
  const toBlock = await provider.getBlockNumber()
  const logs = await provider.getLogs({ address: Object.values(addresses), fromBlock, toBlock })
  const parsed = parseEvents(logs, names)

  const proposals = collectProposals(parsed, names)
  await readProposalState(proposals, c)
  const models = collectModels(parsed)
  for (const m of models) m.approved = await c.models.isApproved(m.modelId)
  const { registry, operators } = collectRegistry(parsed)
  return {
    chainId: deployment.chainId,
    fromBlock,
    toBlock,
    contracts: deployment.contracts,
    proposals,
    models,
    registry,
    settlements: collectSettlements(parsed),
    checks: await checkNodes(operators, c, opts.dial),
    faults: await collectFaults(parsed, deployment, provider),
    inference: await collectInference(deployment, provider, fromBlock)
  }
}

function decodeCall(
  iface: ReturnType<typeof combinedInterface>,
  names: ReadonlyMap<string, string>,
  target: string,
  value: bigint,
  data: string
): DecodedCall {
  const targetName = names.get(getAddress(target)) ?? 'unknown'
  try {
    const tx = iface.parseTransaction({ data, value })
    if (tx != null)
      return {
        target,
        targetName,
        value: String(value),
        function: tx.signature,
        args: args(tx)
      }
  } catch {}
  return {
    target,
    targetName,
    value: String(value),
    function: `raw ${data.slice(0, 10)}`,
    args: { data }
  }
}

function zero(): Totals {
  return { amount: '0', fee: '0', net: '0', vouchers: 0 }
}
function add(t: Totals, r: SettlementRow): void {
  t.amount = String(BigInt(t.amount) + BigInt(r.amount))
  t.fee = String(BigInt(t.fee) + BigInt(r.fee))
  t.net = String(BigInt(t.amount) - BigInt(t.fee))
  t.vouchers++
}

/** `voter,weight,support,reason,block,tx`, ordered by (block, tx, log index). */
export function votesCsv(report: AuditReport): string {
  const rows = report.proposals.flatMap((p) => p.voters).sort(order)
  return (
    [
      'voter,weight,support,reason,block,tx',
      ...rows.map((v) => [v.voter, v.weight, v.support, csv(v.reason), v.block, v.tx].join(','))
    ].join('\n') + '\n'
  )
}

/** `payer,payee,amount,fee,block,tx` (one row per redeemed voucher: `amount` left the payer's
 * deposit, `amount − fee` was credited to the payee), ordered by (block, tx, log index). */
export function settlementsCsv(report: AuditReport): string {
  return (
    [
      'payer,payee,amount,fee,block,tx',
      ...report.settlements.vouchers.map((s) =>
        [s.payer, s.payee, s.amount, s.fee, s.block, s.tx].join(',')
      )
    ].join('\n') + '\n'
  )
}

function csv(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}
