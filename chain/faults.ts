// Fault reports on-chain (contracts/faults/FaultReports.sol): filing a bonded report, the
// governance actions that decide it, and the list auditors read. docs/trust.md.
import { Interface, formatUnits, getAddress, hexlify, randomBytes, type Signer } from 'ethers'
import type { ContractRunner } from 'ethers'
import { connectFaultReports } from './contracts.js'
import type { PovContracts, FaultReportsContract } from './contracts.js'
import type { Deployment } from './deployment.js'
import type { ProposalAction } from './governance.js'

export const FAULT_STATUS = ['None', 'Pending', 'Upheld', 'Rejected', 'Expired'] as const
export type FaultStatus = (typeof FAULT_STATUS)[number]

export interface FaultReportView {
  id: number
  reporter: string
  operator: string
  evidenceHash: string
  uri: string
  bond: bigint
  /** The price of the convicted call(s) the reporter claims back out of the slash. */
  refund: bigint
  createdAt: number
  deadline: number
  /** Block of the reporter's commitment (the earliest one of an evidence file can be upheld). */
  committedAt: number
  status: FaultStatus
  slashed: bigint
  reward: bigint
}

export class FaultReportsMissingError extends Error {
  override name = 'FaultReportsMissingError'
  constructor() {
    super(
      'this deployment has no FaultReports contract — deploy it (deploy/fault-reports.ts) and wire it by governance (docs/trust.md)'
    )
  }
}

/** The FaultReports client of a deployment; FaultReportsMissingError when it has none. */
export function faultReportsOf(
  d: Pick<Deployment, 'faultReports'>,
  runner?: ContractRunner | null
): FaultReportsContract {
  if (d.faultReports == null) throw new FaultReportsMissingError()
  return connectFaultReports(d.faultReports, runner)
}

// The registry's freezer hook, by signature: the FaultReports contract needs only these two.
const REGISTRY_HOOKS = new Interface([
  'function setFreezer(address freezer)',
  'function setTreasury(address treasury)'
])

/**
 * The proposal that switches fault reports on: the registry lets FaultReports freeze withdrawals
 * and sends slashed stake to it (to be split with reporters; the rest goes on to the treasury).
 */
export function wireFaultReportsActions(c: PovContracts, faultReports: string): ProposalAction[] {
  const target = c.registry.target as string
  return [
    { target, data: REGISTRY_HOOKS.encodeFunctionData('setFreezer', [faultReports]) },
    { target, data: REGISTRY_HOOKS.encodeFunctionData('setTreasury', [faultReports]) }
  ]
}

export async function readFaultReport(
  fr: FaultReportsContract,
  id: number
): Promise<FaultReportView> {
  const r = await fr.reportOf(id)
  return {
    id,
    reporter: getAddress(r.reporter),
    operator: getAddress(r.operator),
    evidenceHash: r.evidenceHash,
    uri: r.uri,
    bond: BigInt(r.bond),
    refund: BigInt(r.refund),
    createdAt: Number(r.createdAt),
    deadline: Number(r.deadline),
    committedAt: Number(r.committedAt),
    status: FAULT_STATUS[Number(r.status)] ?? 'None',
    slashed: BigInt(r.slashed),
    reward: BigInt(r.reward)
  }
}

export async function listFaultReports(fr: FaultReportsContract): Promise<FaultReportView[]> {
  const n = Number(await fr.reportCount())
  return await Promise.all(Array.from({ length: n }, async (_, i) => await readFaultReport(fr, i)))
}

/**
 * Files a report as `reporter`, in two transactions: the commitment (which names nobody), then,
 * once it is mined, the reveal with the bond (approved first). A copier who sees the reveal can
 * only commit later, so it can neither take the reward nor block the evidence. `refund` (wei) is
 * the price of the convicted call(s) the reporter claims back (0 for none; governance checks it
 * against the evidence before upholding). Returns the report id.
 */
export async function reportFault(
  c: PovContracts,
  faultReports: FaultReportsContract,
  reporter: Signer,
  a: { operator: string; evidenceHash: string; uri: string; refund?: bigint; salt?: string }
): Promise<{ id: number; tx: string }> {
  const fr = faultReports.connect(reporter) as FaultReportsContract
  const operator = getAddress(a.operator)
  const refund = a.refund ?? 0n
  const salt = a.salt ?? hexlify(randomBytes(32))
  const commitment = await fr.commitmentOf(
    await reporter.getAddress(),
    operator,
    a.evidenceHash,
    refund,
    salt
  )
  const committed = await (await fr.commitReport(commitment)).wait()
  const bond = BigInt(await fr.bondFor(operator))
  const token = c.token.connect(reporter) as PovContracts['token']
  await (await token.approve(fr.target as string, bond)).wait()
  // the reveal must land in a later block than the commitment
  const provider = reporter.provider
  if (provider != null && committed != null)
    while ((await provider.getBlockNumber()) <= committed.blockNumber)
      await new Promise((r) => setTimeout(r, 250))
  const tx = await fr.reportFault(operator, a.evidenceHash, refund, salt, a.uri)
  const receipt = await tx.wait()
  const ev = receipt?.logs
    .map((l) => {
      try {
        return fr.interface.parseLog(l)
      } catch {
        return null
      }
    })
    .find((e) => e?.name === 'FaultReported')
  if (ev == null) throw new Error(`reportFault ${tx.hash} emitted no FaultReported event`)
  return { id: Number(ev.args.reportId), tx: tx.hash }
}

const SWEEP = new Interface(['function sweep()'])

/**
 * Sends the slashed stake FaultReports holds, and that no report claims, on to the treasury.
 * Anyone may call it; proposals that slash end with it so that the stake does not wait there.
 */
export function sweepAction(faultReports: string): ProposalAction {
  return { target: faultReports, data: SWEEP.encodeFunctionData('sweep') }
}

/**
 * Upholding a report: slash `amount` wei of the accused (the stake goes to FaultReports, the
 * registry's treasury), then split it with the reporter — one proposal, so both or neither. A
 * sweep goes first: the reporter's share is of what FaultReports holds at `upholdFault`, which
 * must be this slash only, not an earlier one still waiting there.
 */
export function upholdFaultActions(
  c: PovContracts,
  fr: FaultReportsContract,
  report: Pick<FaultReportView, 'id' | 'operator' | 'evidenceHash'>,
  amount: bigint
): ProposalAction[] {
  return [
    sweepAction(fr.target as string),
    {
      target: c.registry.target as string,
      data: c.registry.interface.encodeFunctionData('slash', [
        report.operator,
        amount,
        `fault report #${report.id} (evidence ${report.evidenceHash})`
      ])
    },
    {
      target: fr.target as string,
      data: fr.interface.encodeFunctionData('upholdFault', [report.id])
    }
  ]
}

export function rejectFaultActions(fr: FaultReportsContract, id: number): ProposalAction[] {
  return [
    { target: fr.target as string, data: fr.interface.encodeFunctionData('rejectFault', [id]) }
  ]
}

/** `pov gov propose uphold-fault`: reads the report, slashes `amount` wei and upholds it. */
export async function upholdFaultProposal(
  c: PovContracts,
  fr: FaultReportsContract,
  id: number,
  amount: bigint
): Promise<{ actions: ProposalAction[]; description: string }> {
  const r = await undecidedReport(fr, id)
  if (amount <= 0n) throw new FaultInputError('the slash amount must be above 0 POV')
  return {
    actions: upholdFaultActions(c, fr, r, amount),
    description: `Uphold fault report #${id}: slash ${formatUnits(amount, 18)} POV of ${r.operator} (evidence ${r.evidenceHash}, ${r.uri})`
  }
}

/** `pov gov propose reject-fault`: the reporter's bond goes to the accused operator. */
export async function rejectFaultProposal(
  fr: FaultReportsContract,
  id: number
): Promise<{ actions: ProposalAction[]; description: string }> {
  const r = await undecidedReport(fr, id)
  return {
    actions: rejectFaultActions(fr, id),
    description: `Reject fault report #${id} against ${r.operator} (evidence ${r.evidenceHash})`
  }
}

export class FaultInputError extends Error {
  override name = 'FaultInputError'
}

/** A report governance can still decide: pending, or expired without a verdict. */
async function undecidedReport(fr: FaultReportsContract, id: number): Promise<FaultReportView> {
  const n = Number(await fr.reportCount())
  if (!Number.isSafeInteger(id) || id < 0 || id >= n)
    throw new FaultInputError(`no fault report #${id} (there are ${n}) — see \`pov audit\``)
  const r = await readFaultReport(fr, id)
  if (r.status !== 'Pending' && r.status !== 'Expired')
    throw new FaultInputError(`fault report #${id} is ${r.status}: already decided`)
  return r
}
