// Failed calls and transactions as one line that says what happened and what to do: custom errors
// decoded with times as ISO dates and amounts in POV, the common ones with their remedy; a key
// without ETH for gas, an unreachable chain and missing files in plain words.
import { formatUnits, Transaction } from 'ethers'
import { decodeRevert, type DecodedRevert } from '../chain/errors.js'
import { PROPOSAL_STATES } from '../chain/proposal-states.js'
import { UserError } from './errors.js'
import { GovInputError } from '../chain/gov-actions.js'
import { FaultInputError, FaultReportsMissingError } from '../chain/faults.js'
import { InferenceRequestsMissingError, OracleInputError } from '../chain/oracle.js'

/** A chain timestamp (seconds) as an ISO date without milliseconds. */
export function isoTime(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z')
}

export function povAmount(wei: bigint): string {
  const s = formatUnits(wei, 18)
  return `${s.endsWith('.0') ? s.slice(0, -2) : s} POV`
}

/** "in 59 min" / "in 2.5 h" from `now` to `at` (both chain seconds). */
function wait(at: bigint, now: bigint): string {
  const s = Number(at - now)
  if (s <= 0) return 'now'
  if (s < 120) return `in ${s} s`
  if (s < 7200) return `in ${Math.ceil(s / 60)} min`
  if (s < 172800) return `in ${(s / 3600).toFixed(1)} h`
  return `in ${(s / 86400).toFixed(1)} days`
}

const TIME_PARAM = /(At|^timestamp|^deadline|^eta)$/
const POV_PARAM =
  /^(amount|stake|minimum|owed|deposit|alreadyPaid|cumulativeAmount|balance|needed|allowance|votes|threshold|price)$/

/** One decoded parameter for people: times as ISO dates, POV amounts in POV. */
export function formatParam(p: { name: string; type: string; value: unknown }): string {
  const v = p.value
  if (typeof v === 'bigint' && p.type.startsWith('uint')) {
    if (TIME_PARAM.test(p.name) && v > 0n) return isoTime(v)
    if (POV_PARAM.test(p.name) && p.type === 'uint256') return povAmount(v)
  }
  if (Array.isArray(v)) return `[${v.map((x) => String(x)).join(', ')}]`
  return String(v)
}

type Args = Record<string, unknown>
const t = (v: unknown): string => isoTime(v as bigint)
const pov = (v: unknown): string => povAmount(v as bigint)

/** The custom errors users meet, each as what happened — what to do. Others are decoded generically. */
const REVERT_TEXT: Record<string, (a: Args) => string> = {
  EscrowUnlockPending: (a) =>
    `the escrow deposit of ${a.payer} unlocks at ${t(a.unlockAt)} (${wait(a.unlockAt as bigint, a.timestamp as bigint)}; chain time ${t(a.timestamp)}) — run \`pov withdraw\` after that, or \`pov cancel-unlock\` to keep using the deposit`,
  EscrowNotUnlocking: (a) =>
    `the escrow deposit of ${a.payer} is not unlocking — run \`pov unlock\`, then \`pov withdraw\` once the unlock period is over`,
  EscrowAlreadyUnlocking: (a) =>
    `the escrow deposit of ${a.payer} is already unlocking, until ${t(a.unlockAt)} — wait for it, or \`pov cancel-unlock\``,
  EscrowInsufficientDeposit: (a) =>
    `${a.payer} owes ${pov(a.owed)} but has ${pov(a.deposit)} there (its lane to that node, or its unallocated deposit) — deposit more with \`pov deposit AMOUNT\``,
  EscrowNothingToWithdraw: (a) => `${a.payee} has no earnings left to withdraw`,
  EscrowZeroAmount: () => 'the amount must be above 0 POV',
  ModelsNotApproved: (a) =>
    `model ${a.modelId} is not approved on this chain — \`pov gov list\` and \`pov audit\` show the approved models; governance approves one with \`pov gov propose approve-model\``,
  RegistryModelNotApproved: (a) =>
    `model ${a.modelId} is not approved on this chain — \`pov gov list\` and \`pov audit\` show the approved models; governance approves one with \`pov gov propose approve-model\``,
  ModelsAlreadyApproved: (a) => `model ${a.modelId} is already approved`,
  RegistryInsufficientStake: (a) =>
    `a stake of ${pov(a.stake)} is below the minimum of ${pov(a.minimum)} — stake at least that much (\`--stake\`, or \`pov node add-stake\`)`,
  RegistryAlreadyRegistered: (a) =>
    `${a.operator} is already registered — change price, shards or addresses with \`pov node update\``,
  RegistryNotRegistered: (a) => `${a.operator} is not registered — run \`pov node register\` first`,
  RegistryIsUnbonding: (a) =>
    `${a.operator} is unbonding (stake withdrawable at ${t(a.withdrawableAt)}) — an unbonding node cannot change its registration`,
  RegistryNotUnbonding: (a) =>
    `${a.operator} is not unbonding — run \`pov node unbond\` first, then \`pov node withdraw-stake\` after the unbonding period`,
  RegistryUnbondingNotOver: (a) =>
    `the stake of ${a.operator} is withdrawable at ${t(a.withdrawableAt)} (${wait(a.withdrawableAt as bigint, a.timestamp as bigint)}; chain time ${t(a.timestamp)}) — run \`pov node withdraw-stake\` after that`,
  RegistryWithdrawalFrozen: (a) =>
    `the stake of ${a.operator} is frozen until ${t(a.until)} (a fault report is pending; chain time ${t(a.timestamp)}) — it can be withdrawn once governance decides or the freeze ends`,
  SettingOutOfRange: (a) =>
    `${a.setting} ${a.value} is outside its bounds [${a.min}, ${a.max}] (periods in seconds, amounts in wei)`,
  RegistryInvalidFreezer: (a) =>
    `${a.freezer} cannot be the registry's freezer: it must be a contract whose registry() is this registry (FaultReports), or 0 to switch freezing off`,
  GovernorPathOutlastsUnbonding: (a) =>
    `the governance path with its margin (${a.pathWithMargin} s) would reach the registry's unbonding period (${a.unbondingPeriod} s) — lengthen the unbonding period first`,
  FaultsNotFirstReport: (a) =>
    `fault report #${a.reportId} copies the evidence of report #${a.firstReportId}, committed earlier: only that one can be upheld`,
  FaultsRevealTooEarly: () =>
    'the report is revealed in the block of its commitment — reveal it in a later block',
  FaultsNotCommitted: () =>
    'no commitment matches this report (reporter, operator, evidence, refund, salt) — commit it first',
  GovernorAlreadyCastVote: (a) => `${a.voter} has already voted on this proposal`,
  GovernorUnexpectedProposalState: (a) =>
    `the proposal is ${PROPOSAL_STATES[Number(a.current)] ?? String(a.current)}, which does not allow this step — see \`pov gov status\``,
  GovernorInsufficientProposerVotes: (a) =>
    `${a.proposer} has ${pov(a.votes)} of votes, below the proposal threshold of ${pov(a.threshold)} — get POV and \`pov gov delegate\``,
  GovernorNonexistentProposal: () => 'no such proposal — `pov gov list` shows them',
  ERC20InsufficientBalance: (a) =>
    `${a.sender} holds ${pov(a.balance)} and needs ${pov(a.needed)} — get POV first (\`pov transfer\` from a holder; on a dev chain \`pov dev fund\`)`
}

/** A decoded revert as one line (remedy included where known). */
export function describeRevert(r: DecodedRevert): string {
  if (r.name === 'Error') return `reverted: ${String(r.params[0]?.value)}`
  if (r.name === 'Panic') return `the contract panicked (code ${String(r.params[0]?.value)})`
  const args: Args = Object.fromEntries(r.params.map((p) => [p.name, p.value]))
  const text = REVERT_TEXT[r.name]
  if (text != null) return text(args)
  return `${r.name}(${r.params.map((p) => `${p.name}=${formatParam(p)}`).join(', ')})`
}

/** Every message in an error and its causes (ethers nests the node's answer under `error`). */
function messages(err: unknown, depth = 0): string[] {
  if (depth > 5 || err == null || typeof err !== 'object') return []
  const e = err as Record<string, unknown>
  const own = [e.shortMessage, e.message].filter((m): m is string => typeof m === 'string')
  return [...own, ...messages(e.error, depth + 1), ...messages(e.cause, depth + 1)]
}

/** The sender of a failed raw transaction, when ethers kept the request. */
function senderOf(err: unknown): string | undefined {
  const payload = (err as { payload?: { method?: string; params?: unknown[] } }).payload
  if (payload?.method !== 'eth_sendRawTransaction') return undefined
  try {
    return Transaction.from(String(payload.params?.[0])).from ?? undefined
  } catch {
    return undefined
  }
}

/**
 * One line for any failure of a chain call or transaction. `from` names the sending account when
 * the caller knows it.
 */
export function describeChainError(err: unknown, from?: string): string {
  if (err instanceof UserError) return err.message
  const revert = decodeRevert(err)
  if (revert != null) return describeRevert(revert)
  const all = messages(err)
  const gas = all.find((m) => /enough funds|insufficient funds/i.test(m))
  if (gas != null) {
    const who = from ?? senderOf(err) ?? 'the sending account'
    const m = /upfront cost is: (\d+) and the sender's balance is: (\d+)/.exec(gas)
    const detail =
      m != null
        ? ` (the transaction may cost up to ${formatUnits(m[1], 18)} ETH; it holds ${formatUnits(m[2], 18)} ETH)`
        : ''
    return `${who} has too little ETH to pay for gas${detail} — send it ETH; on a local dev chain: \`pov dev fund ${from ?? senderOf(err) ?? 'ADDRESS'}\``
  }
  if (all.some((m) => /ECONNREFUSED|fetch failed|socket hang up/.test(m)))
    return 'the chain stopped answering (connection refused) — is the RPC node still running?'
  // ethers' "could not coalesce error" wraps the node's own message: show that one
  const useful = all.find((m) => m !== '' && !/could not coalesce error/.test(m)) ?? String(err)
  return useful.split('\n')[0]
}

/** Missing or unreadable files (password file, config, bundle) in plain words. */
export function describeFileError(err: unknown, what: string): string | undefined {
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code !== 'string') return undefined
  if (e.code === 'ENOENT') return `${what} ${e.path ?? ''} does not exist`
  if (e.code === 'EACCES') return `${what} ${e.path ?? ''} is not readable by this user`
  if (e.code === 'EISDIR') return `${what} ${e.path ?? ''} is a directory, not a file`
  return undefined
}

/** The chain layer's refusals of what the user asked (bad input, a contract the deployment lacks). */
const INPUT_ERRORS = [
  GovInputError,
  FaultInputError,
  FaultReportsMissingError,
  OracleInputError,
  InferenceRequestsMissingError
]

/**
 * Chain failures (ethers errors, reverts) and the chain layer's input errors as a UserError line;
 * anything else unchanged.
 */
export function asUserError(err: unknown): unknown {
  if (err instanceof UserError) return err
  if (INPUT_ERRORS.some((E) => err instanceof E)) return new UserError((err as Error).message)
  const e = err as { code?: unknown; shortMessage?: unknown } | null
  if (decodeRevert(err) != null || (typeof e?.code === 'string' && e.shortMessage != null))
    return new UserError(describeChainError(err))
  return err
}

/** A listen failure on a port that is taken, as one line that says what to do; else undefined. */
export function listenError(
  err: unknown,
  addrs: string[] | undefined,
  flag = '--listen'
): UserError | undefined {
  const text = [(err as Error)?.message, String((err as { cause?: unknown })?.cause ?? '')].join(
    ' '
  )
  const code = (err as NodeJS.ErrnoException)?.code
  const where = addrs?.join(', ') ?? 'the default address'
  if (code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(text))
    return new UserError(
      `cannot listen on ${where}: the port is already in use — stop the process that holds it, or choose another port with ${flag}`
    )
  // libp2p names only its own setting when no address could be bound
  if (/faultTolerance/.test(text))
    return new UserError(
      `cannot listen on ${where}: the port is in use or the address is not on this machine — free the port or change ${flag}`
    )
  return undefined
}
