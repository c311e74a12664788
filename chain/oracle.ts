// Inference requests on-chain (contracts/inference/InferenceRequests.sol): posting a request,
// fulfilling, challenging and finalising it, the governance actions that decide a dispute, and
// the list auditors and `pov oracle serve` read. The contract keeps only hashes: a request's
// parameters come back from its RequestPosted event, results from ResultPosted / Challenged.
// docs/contracts.md ("Inference requests").
import { AbiCoder, getAddress, keccak256, toUtf8Bytes, toUtf8String, type Signer } from 'ethers'
import type { ContractRunner, EventLog, Log } from 'ethers'
import { connectInferenceRequests } from './contracts.js'
import type { InferenceRequestsContract, PovContracts } from './contracts.js'
import type { Deployment } from './deployment.js'
import type { ProposalAction } from './governance.js'

export const REQUEST_STATUS = [
  'None',
  'Open',
  'Fulfilled',
  'Disputed',
  'Decided',
  'Finalised',
  'Cancelled'
] as const
export type RequestStatus = (typeof REQUEST_STATUS)[number]

/**
 * The near-tie margin, micro-logits (0.05 logits). Honest runs agree on logits to 1e-4 on one
 * machine (tests/unit/model/generate.test.ts) and each expert output to a relative 1e-3 across
 * CPU/GPU (router/tolerance.ts, bench:verify); through the last layers that moves a logit by
 * about 1e-3 of its magnitude (≤ 10 on the models shipped). Twice that on each side: 0.05.
 */
export const TIE_MARGIN_MICRO = 50_000

/** Micro-logits as the contract records a margin (saturating uint32). */
export function marginToMicro(margin: number): number {
  if (!Number.isFinite(margin)) return 0xffffffff
  return Math.min(0xffffffff, Math.max(0, Math.round(margin * 1e6)))
}

export const OUTCOMES = ['None', 'FulfillerRight', 'ChallengerRight', 'Tie', 'BothWrong'] as const
export type Outcome = (typeof OUTCOMES)[number]

/** The Request struct every call after `request` passes back (IInferenceRequests.Request). */
export interface RequestParams {
  requester: string
  modelId: string
  promptHash: string
  maxTokens: number
  fee: bigint
  bond: bigint
  deadline: number
  challengeWindow: number
  callback: string
  selector: string
  callbackGasLimit: number
}

/** A result: greedy token ids, each token's top-1 − top-2 logit in micro-logits, evidence hash. */
export interface OracleResult {
  tokens: number[]
  margins: number[]
  evidenceHash: string
}

export interface PostedResult extends OracleResult {
  by: string
  evidenceUri: string
  block: number
  tx: string
}

export interface RequestView {
  id: number
  params: RequestParams
  /** The prompt's bytes as UTF-8 text; null when only its hash and URI were posted. */
  prompt: string | null
  promptUri: string
  status: RequestStatus
  postedAt: number
  /** The first result posted (the fulfiller's), when any. */
  result?: PostedResult & { challengeDeadline: number }
  dispute?: PostedResult & {
    position: number
    deadline: number
    outcome: Outcome
  }
  /** Who was paid on finalisation, and whether the callback ran. */
  finalised?: { paidTo: string; fee: bigint; bond: bigint; callbackOk: boolean | null }
  /** POV each address got when a dispute was decided. */
  resolved?: { fulfillerPaid: bigint; challengerPaid: bigint }
  cancelled?: { refund: bigint }
}

export class InferenceRequestsMissingError extends Error {
  override name = 'InferenceRequestsMissingError'
  constructor() {
    super(
      'this deployment has no InferenceRequests contract — deploy it (deploy/inference-requests.ts)'
    )
  }
}

export class OracleInputError extends Error {
  override name = 'OracleInputError'
}

/** The InferenceRequests client of a deployment; InferenceRequestsMissingError when it has none. */
export function inferenceRequestsOf(
  d: Pick<Deployment, 'inferenceRequests'>,
  runner?: ContractRunner | null
): InferenceRequestsContract {
  if (d.inferenceRequests == null) throw new InferenceRequestsMissingError()
  return connectInferenceRequests(d.inferenceRequests, runner)
}

const REQUEST_TUPLE =
  'tuple(address requester, bytes32 modelId, bytes32 promptHash, uint32 maxTokens, uint96 fee, uint96 bond, uint64 deadline, uint32 challengeWindow, address callback, bytes4 selector, uint32 callbackGasLimit)'
const RESULT_TUPLE = 'tuple(uint32[] tokens, uint32[] margins, bytes32 evidenceHash)'

/** keccak256(abi.encode(req)): what the record keeps (InferenceRequests.hashRequest). */
export function hashRequest(p: RequestParams): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode([REQUEST_TUPLE], [toTuple(p)]))
}

/** keccak256(abi.encode(result)) (InferenceRequests.hashResult). */
export function hashResult(r: OracleResult): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode([RESULT_TUPLE], [[r.tokens, r.margins, r.evidenceHash]])
  )
}

function toTuple(p: RequestParams): unknown[] {
  return [
    p.requester,
    p.modelId,
    p.promptHash,
    p.maxTokens,
    p.fee,
    p.bond,
    p.deadline,
    p.challengeWindow,
    p.callback,
    p.selector,
    p.callbackGasLimit
  ]
}

interface RawRequest {
  requester: string
  modelId: string
  promptHash: string
  maxTokens: bigint
  fee: bigint
  bond: bigint
  deadline: bigint
  challengeWindow: bigint
  callback: string
  selector: string
  callbackGasLimit: bigint
}

function paramsOf(r: RawRequest): RequestParams {
  return {
    requester: getAddress(r.requester),
    modelId: r.modelId,
    promptHash: r.promptHash,
    maxTokens: Number(r.maxTokens),
    fee: BigInt(r.fee),
    bond: BigInt(r.bond),
    deadline: Number(r.deadline),
    challengeWindow: Number(r.challengeWindow),
    callback: getAddress(r.callback),
    selector: r.selector,
    callbackGasLimit: Number(r.callbackGasLimit)
  }
}

function resultOf(r: { tokens: bigint[]; margins: bigint[]; evidenceHash: string }): OracleResult {
  return {
    tokens: [...r.tokens].map(Number),
    margins: [...r.margins].map(Number),
    evidenceHash: r.evidenceHash
  }
}

function promptText(bytes: string): string | null {
  if (bytes === '0x') return null
  try {
    return toUtf8String(bytes)
  } catch {
    return null
  }
}

/** Every request with its result, dispute and payouts, read from the contract's events. */
export async function listRequests(
  ir: InferenceRequestsContract,
  fromBlock = 0
): Promise<RequestView[]> {
  const logs = (await ir.queryFilter('*', fromBlock)) as Array<EventLog | Log>
  const views = new Map<number, RequestView>()
  for (const log of logs) {
    if (!('args' in log)) continue
    const a = log.args
    const id = Number(a.requestId)
    const v = views.get(id)
    switch (log.eventName) {
      case 'RequestPosted': {
        const block = await log.getBlock()
        views.set(id, {
          id,
          params: paramsOf(a.request as RawRequest),
          prompt: promptText(a.prompt as string),
          promptUri: a.promptUri as string,
          status: 'Open',
          postedAt: block.timestamp
        })
        break
      }
      case 'ResultPosted':
        if (v == null) break
        v.result = {
          ...resultOf(a.result),
          by: getAddress(a.fulfiller as string),
          evidenceUri: a.evidenceUri as string,
          challengeDeadline: Number(a.challengeDeadline),
          block: log.blockNumber,
          tx: log.transactionHash
        }
        break
      case 'Challenged':
        if (v == null) break
        v.dispute = {
          ...resultOf(a.result),
          by: getAddress(a.challenger as string),
          evidenceUri: a.evidenceUri as string,
          position: Number(a.position),
          deadline: Number(a.disputeDeadline),
          outcome: 'None',
          block: log.blockNumber,
          tx: log.transactionHash
        }
        break
      case 'DisputeResolved':
        if (v?.dispute == null) break
        v.dispute.outcome = OUTCOMES[Number(a.outcome)] ?? 'None'
        v.resolved = {
          fulfillerPaid: BigInt(a.fulfillerPaid),
          challengerPaid: BigInt(a.challengerPaid)
        }
        break
      case 'Finalised':
        if (v == null) break
        v.finalised = {
          paidTo: getAddress(a.paidTo as string),
          fee: BigInt(a.fee),
          bond: BigInt(a.bond),
          callbackOk: null
        }
        break
      case 'CallbackRun':
        if (v?.finalised != null) v.finalised.callbackOk = a.ok as boolean
        break
      case 'RequestCancelled':
        if (v != null) v.cancelled = { refund: BigInt(a.refund) }
        break
    }
  }
  const out = [...views.values()].sort((x, y) => x.id - y.id)
  await Promise.all(
    out.map(async (v) => {
      v.status = REQUEST_STATUS[Number((await ir.recordOf(v.id)).status)] ?? 'None'
    })
  )
  return out
}

/** One request (its view from the events); OracleInputError when there is none. */
export async function readRequest(
  ir: InferenceRequestsContract,
  id: number,
  fromBlock = 0
): Promise<RequestView> {
  const n = Number(await ir.requestCount())
  if (!Number.isSafeInteger(id) || id < 0 || id >= n)
    throw new OracleInputError(`no inference request #${id} (there are ${n}) — see \`pov audit\``)
  const v = (await listRequests(ir, fromBlock)).find((r) => r.id === id)
  if (v == null) throw new OracleInputError(`request #${id} has no RequestPosted event`)
  return v
}

/** The result a finalisation delivers: the challenger's once it won, else the fulfiller's. */
export function deliverable(v: RequestView): OracleResult {
  const r = v.dispute?.outcome === 'ChallengerRight' ? v.dispute : v.result
  if (r == null) throw new OracleInputError(`request #${v.id} has no result`)
  return { tokens: r.tokens, margins: r.margins, evidenceHash: r.evidenceHash }
}

export interface NewRequestArgs {
  modelId: string
  /** The prompt text (UTF-8 in calldata), or null with `promptHash` + `promptUri`. */
  prompt: string | null
  promptHash?: string
  promptUri?: string
  maxTokens: number
  fee: bigint
  deadline: number
  callback?: string
  selector?: string
  callbackGasLimit?: number
}

function parsedEvent(ir: InferenceRequestsContract, logs: readonly Log[], name: string) {
  for (const l of logs) {
    try {
      const e = ir.interface.parseLog(l)
      if (e?.name === name) return e
    } catch {}
  }
  return null
}

async function approve(c: PovContracts, signer: Signer, spender: string, amount: bigint) {
  if (amount === 0n) return
  const token = c.token.connect(signer) as PovContracts['token']
  const owner = await signer.getAddress()
  if (BigInt(await token.allowance(owner, spender)) >= amount) return
  await (await token.approve(spender, amount)).wait()
}

/** Waits for a sent transaction to be mined; its hash (a revert throws, as tx.wait does). */
async function mined(
  sent: Promise<{ hash: string; wait: () => Promise<unknown> }>
): Promise<string> {
  const tx = await sent
  await tx.wait()
  return tx.hash
}

/** Posts a request as `signer` (approving the fee first); returns its id and parameters. */
export async function postRequest(
  c: PovContracts,
  ir: InferenceRequestsContract,
  signer: Signer,
  a: NewRequestArgs
): Promise<{ id: number; params: RequestParams; tx: string }> {
  const me = ir.connect(signer) as InferenceRequestsContract
  await approve(c, signer, ir.target as string, a.fee)
  const tx = await me.request({
    modelId: a.modelId,
    prompt: a.prompt == null ? '0x' : toUtf8Bytes(a.prompt),
    promptHash: a.promptHash ?? '0x' + '00'.repeat(32),
    promptUri: a.promptUri ?? '',
    maxTokens: a.maxTokens,
    fee: a.fee,
    deadline: a.deadline,
    callback: a.callback ?? '0x0000000000000000000000000000000000000000',
    selector: a.selector ?? '0x00000000',
    callbackGasLimit: a.callbackGasLimit ?? 0
  })
  const receipt = await tx.wait()
  const ev = parsedEvent(me, receipt?.logs ?? [], 'RequestPosted')
  if (ev == null) throw new Error(`request ${tx.hash} emitted no RequestPosted event`)
  return {
    id: Number(ev.args.requestId),
    params: paramsOf(ev.args.request as RawRequest),
    tx: tx.hash
  }
}

/** Posts `result` for request `v` as `signer`, approving the bond first. */
export async function fulfilRequest(
  c: PovContracts,
  ir: InferenceRequestsContract,
  signer: Signer,
  v: Pick<RequestView, 'id' | 'params'>,
  result: OracleResult,
  evidenceUri = ''
): Promise<string> {
  await approve(c, signer, ir.target as string, v.params.bond)
  const me = ir.connect(signer) as InferenceRequestsContract
  return await mined(me.fulfil(v.id, v.params, result, evidenceUri))
}

/** Challenges the posted result of `v` with `mine` as `signer`, approving the bond first. */
export async function challengeRequest(
  c: PovContracts,
  ir: InferenceRequestsContract,
  signer: Signer,
  v: RequestView,
  mine: OracleResult,
  evidenceUri = ''
): Promise<string> {
  if (v.result == null) throw new OracleInputError(`request #${v.id} has no result to challenge`)
  await approve(c, signer, ir.target as string, v.params.bond)
  const me = ir.connect(signer) as InferenceRequestsContract
  const posted = {
    tokens: v.result.tokens,
    margins: v.result.margins,
    evidenceHash: v.result.evidenceHash
  }
  return await mined(me.challenge(v.id, v.params, posted, mine, evidenceUri))
}

/** Finalises `v` (pays, runs the callback); returns the tx hash and whether the callback ran. */
export async function finalizeRequest(
  ir: InferenceRequestsContract,
  signer: Signer,
  v: RequestView
): Promise<{ tx: string; callbackOk: boolean | null }> {
  const me = ir.connect(signer) as InferenceRequestsContract
  const tx = await me.finalize(v.id, v.params, deliverable(v))
  const receipt = await tx.wait()
  const ev = parsedEvent(me, receipt?.logs ?? [], 'CallbackRun')
  return { tx: tx.hash, callbackOk: ev == null ? null : (ev.args.ok as boolean) }
}

/** Refunds an unfulfilled request past its deadline. */
export async function cancelRequest(
  ir: InferenceRequestsContract,
  signer: Signer,
  v: Pick<RequestView, 'id' | 'params'>
): Promise<string> {
  return await mined((ir.connect(signer) as InferenceRequestsContract).cancel(v.id, v.params))
}

/** Closes a dispute governance left undecided past its deadline. */
export async function expireDispute(
  ir: InferenceRequestsContract,
  signer: Signer,
  v: Pick<RequestView, 'id' | 'params'>
): Promise<string> {
  return await mined(
    (ir.connect(signer) as InferenceRequestsContract).expireDispute(v.id, v.params)
  )
}

/** The proposal that decides a dispute (`pov gov propose resolve-dispute`). */
export async function resolveDisputeProposal(
  ir: InferenceRequestsContract,
  id: number,
  outcome: Exclude<Outcome, 'None'>
): Promise<{ actions: ProposalAction[]; description: string }> {
  const v = await readRequest(ir, id)
  if (v.status !== 'Disputed')
    throw new OracleInputError(`request #${id} is ${v.status}, not disputed: nothing to decide`)
  return {
    actions: [
      {
        target: ir.target as string,
        data: ir.interface.encodeFunctionData('resolveDispute', [
          id,
          toTuple(v.params),
          OUTCOMES.indexOf(outcome)
        ])
      }
    ],
    description: `Resolve inference request #${id}: ${outcome} (first difference at token ${v.dispute?.position}; fulfiller ${v.result?.by}, challenger ${v.dispute?.by})`
  }
}

/** First index where two token lists differ (the shorter one's length when one is a prefix); -1 when equal. */
export function firstDifference(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : n
}
