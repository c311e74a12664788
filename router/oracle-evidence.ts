// The evidence of an oracle run (docs/contracts.md#evidence): the run (prompt ids, tokens,
// margins) and the canonical list of its expert calls, each a node's signed answer — the hashes
// of the input sent and of the output, the node's Ed25519 signature over them
// (protocol/signature.ts), the voucher that paid for it and its charge. A result commits to the
// file: its `evidenceHash` is keccak256 of the file's bytes, so the list cannot be swapped after
// posting. `pov oracle check` verifies the commitment, every signature against the PeerId the
// registry binds to the named operator, and names the first call where two runs differ.
import { keccak256, toUtf8Bytes } from 'ethers'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import type { ExpertExecutor } from '../model/experts.js'
import { DType } from '../protocol/expert.js'
import { bytesToHex, encodeTensor, hexToBytes } from '../protocol/codec.js'
import type { Voucher as WireVoucher } from '../protocol/expert.js'
import { sha256, verifyDigest } from '../protocol/signature.js'
import { isVoucherSignedByPayer, type VoucherDomain } from '../protocol/voucher.js'
import { publicKeyFromPeerIdBytes, verifyPeerBinding } from '../chain/peer-binding.js'
import type { OracleResult } from '../chain/oracle.js'
import { isPaymentEvidence, paymentEvidence, type EvidencePayment } from './evidence.js'

export const ORACLE_EVIDENCE_FORMAT = 'pov-oracle-evidence/2'

/** One expert call of a run, as the router used it. */
export interface OracleCall {
  /** The token this call helped produce: 0 the prompt's pass, i the pass after token i − 1. */
  step: number
  layer: number
  expert: number
  rows: number
  dtype: 'fp32' | 'fp16'
  /** 0x sha256 of the input tensor's bytes as sent. */
  inputHash: string
  /** 0x sha256 of the output tensor's bytes as received (what the node signed). */
  outputHash: string
  /** 'node': a node's signed answer; 'local': run by the poster itself (unsigned, proves nothing). */
  source: 'node' | 'local'
  peerId?: string
  /** The staked operator the registry binds `peerId` to, as the router knew it. */
  operator?: string
  /** Decimal uint64: the request id the node signed. */
  requestId?: string
  /** 0x Ed25519 signature of the node over (call, input hash, output hash). */
  signature?: string
  /** The voucher the call carried and its charge (a paid run). */
  payment?: EvidencePayment
}

export interface OracleEvidence {
  format: typeof ORACLE_EVIDENCE_FORMAT
  modelId: string
  hidden: number
  promptIds: number[]
  tokens: number[]
  /** Top-1 minus top-2 logit of each token, micro-logits. */
  margins: number[]
  stopReason: string
  /** Where the experts ran (informative). */
  experts: string
  degraded: boolean
  /** Canonical order: step, layer, expert, input hash (callOrder). */
  calls: OracleCall[]
}

export class OracleEvidenceError extends Error {
  override name = 'OracleEvidenceError'
}

/** The file's bytes: what the posted `evidenceHash` commits to. */
export function encodeOracleEvidence(e: OracleEvidence): Uint8Array {
  return toUtf8Bytes(JSON.stringify(e) + '\n')
}

/** The canonical order of calls (completion order varies with the network; this does not). */
export function callOrder(a: OracleCall, b: OracleCall): number {
  return (
    a.step - b.step ||
    a.layer - b.layer ||
    a.expert - b.expert ||
    (a.inputHash < b.inputHash ? -1 : a.inputHash > b.inputHash ? 1 : 0)
  )
}

const hex = (b: Uint8Array): string => bytesToHex(b)
const dtypeName = (d: DType): 'fp32' | 'fp16' => (d === DType.FP16 ? 'fp16' : 'fp32')

/** What a remote executor reports of a completed call (RemoteExecutorOptions.onCall). */
export interface RecordedRemoteCall {
  peer: string
  layer: number
  expert: number
  rows: number
  dtype: DType
  input: Uint8Array
  answer: { requestId: bigint; output: Uint8Array; signature: Uint8Array; payment?: WireVoucher }
}

/**
 * Collects a run's expert calls. The runner sets `step` before each token's pass; a remote
 * router reports through `onRemote`, local experts are wrapped by `wrapLocal`.
 */
export class CallRecorder {
  step = 0
  private calls: OracleCall[] = []

  constructor(
    private readonly o: {
      operatorOf?: (peer: string) => string | undefined
      /** POV wei a call to `peer` of `rows` rows was charged. */
      chargeOf?: (peer: string, rows: number) => bigint | undefined
    } = {}
  ) {}

  reset(): void {
    this.step = 0
    this.calls = []
  }

  /** The calls so far, in canonical order. */
  take(): OracleCall[] {
    return [...this.calls].sort(callOrder)
  }

  readonly onRemote = (c: RecordedRemoteCall): void => {
    const operator = this.o.operatorOf?.(c.peer)
    const charge = this.o.chargeOf?.(c.peer, c.rows)
    this.calls.push({
      step: this.step,
      layer: c.layer,
      expert: c.expert,
      rows: c.rows,
      dtype: dtypeName(c.dtype),
      inputHash: hex(sha256(c.input)),
      outputHash: hex(sha256(c.answer.output)),
      source: 'node',
      peerId: c.peer,
      ...(operator != null ? { operator } : {}),
      requestId: c.answer.requestId.toString(),
      signature: hex(c.answer.signature),
      ...(c.answer.payment != null ? { payment: paymentEvidence(c.answer.payment, charge) } : {})
    })
  }

  /** `ex` with every call recorded (fp32 bytes, as an fp32 wire would carry them). */
  wrapLocal(ex: ExpertExecutor): ExpertExecutor {
    return {
      runExpert: async (layer, expert, x, rows, opts) => {
        const step = this.step
        const y = await ex.runExpert(layer, expert, x, rows, opts)
        this.calls.push({
          step,
          layer,
          expert,
          rows,
          dtype: 'fp32',
          inputHash: hex(sha256(encodeTensor(x, DType.FP32))),
          outputHash: hex(sha256(encodeTensor(y, DType.FP32))),
          source: 'local'
        })
        return y
      }
    }
  }
}

/** Parses and shape-checks an evidence file; OracleEvidenceError saying what is wrong. */
export function parseOracleEvidence(bytes: Uint8Array): OracleEvidence {
  let e: OracleEvidence
  try {
    e = JSON.parse(new TextDecoder().decode(bytes)) as OracleEvidence
  } catch (err) {
    throw new OracleEvidenceError(`evidence is not JSON: ${(err as Error).message}`)
  }
  const fail = (what: string): never => {
    throw new OracleEvidenceError(`not a ${ORACLE_EVIDENCE_FORMAT} file: ${what}`)
  }
  if (e == null || typeof e !== 'object') fail('not an object')
  if (e.format !== ORACLE_EVIDENCE_FORMAT) fail(`format is ${JSON.stringify(e.format)}`)
  if (!/^0x[0-9a-f]{64}$/i.test(String(e.modelId))) fail('modelId is not 32 bytes of hex')
  if (!Number.isSafeInteger(e.hidden) || e.hidden < 1) fail('hidden is not a positive integer')
  for (const k of ['promptIds', 'tokens', 'margins'] as const)
    if (!Array.isArray(e[k]) || !e[k].every((n) => Number.isSafeInteger(n) && n >= 0))
      fail(`${k} is not a list of non-negative integers`)
  if (!Array.isArray(e.calls)) fail('calls is not a list')
  const h32 = /^0x[0-9a-f]{64}$/i
  for (const [i, c] of e.calls.entries()) {
    const at = `call ${i}`
    if (c == null || typeof c !== 'object') fail(`${at} is not an object`)
    for (const k of ['step', 'layer', 'expert', 'rows'] as const)
      if (!Number.isSafeInteger(c[k]) || c[k] < 0) fail(`${at}: ${k} is not a non-negative integer`)
    if (c.dtype !== 'fp32' && c.dtype !== 'fp16') fail(`${at}: dtype must be fp32 or fp16`)
    if (!h32.test(String(c.inputHash)) || !h32.test(String(c.outputHash)))
      fail(`${at}: inputHash and outputHash must be 32 bytes of hex`)
    if (c.source !== 'node' && c.source !== 'local') fail(`${at}: source must be node or local`)
    if (c.source === 'node' && typeof c.peerId !== 'string') fail(`${at}: a node call needs peerId`)
    if (c.requestId != null && !/^[0-9]+$/.test(String(c.requestId)))
      fail(`${at}: requestId is not a decimal integer`)
    if (c.signature != null && !/^0x[0-9a-f]*$/i.test(String(c.signature)))
      fail(`${at}: signature is not hex`)
    if (c.payment != null && !isPaymentEvidence(c.payment))
      fail(`${at}: payment needs payer, payee, cumulativeAmount and a 65-byte voucherSignature`)
  }
  return e
}

/** Reads a committed evidence file: keccak256(bytes) must be the result's `evidenceHash`. */
export function openCommittedEvidence(bytes: Uint8Array, posted: OracleResult): OracleEvidence {
  const got = keccak256(bytes)
  if (got.toLowerCase() !== posted.evidenceHash.toLowerCase())
    throw new OracleEvidenceError(
      `commitment mismatch: the evidence file hashes to ${got}, the posted result commits to ${posted.evidenceHash} — not the evidence of this result`
    )
  return parseOracleEvidence(bytes)
}

/** The registry's binding of `operator` (ExpertRegistry.nodeOf), as the checker reads it. */
export interface RegisteredBinding {
  chainId: bigint
  registry: string
  peerId: string
  peerSignature: string
}

export interface EvidenceCheck {
  calls: number
  /** Calls with a valid node signature by a PeerId the registry binds to the named operator. */
  signed: number
  /** Calls the poster ran itself (unsigned). */
  local: number
  /** Per operator: calls and POV wei charged in the vouchers. */
  operators: Map<string, { calls: number; rows: number; charged: bigint }>
  /** Payers whose vouchers paid for the calls. */
  payers: string[]
  /** What is wrong, first problem first; empty when everything verifies. */
  problems: string[]
}

const describeCall = (i: number, c: OracleCall): string =>
  `call ${i} (token ${c.step}, layer ${c.layer}, expert ${c.expert}${c.peerId != null ? `, node ${c.peerId.slice(-8)}` : ''})`

/**
 * Verifies every node call of `e` against the run it claims and the registry: the signature
 * over (request id, model, layer, expert, dtype, rows, hidden, input hash, output hash) with
 * the PeerId's key, that PeerId bound in the registry to the named operator (`bindingOf`), the
 * voucher's EIP-712 signature by its payer (`domain`), the canonical order, and that the file's
 * tokens and margins are the posted ones.
 */
export async function checkOracleEvidence(
  e: OracleEvidence,
  posted: OracleResult,
  o: {
    modelId: string
    bindingOf: (operator: string) => Promise<RegisteredBinding | null>
    domain?: VoucherDomain
  }
): Promise<EvidenceCheck> {
  const problems: string[] = []
  if (e.modelId.toLowerCase() !== o.modelId.toLowerCase())
    problems.push(`the evidence is of model ${e.modelId}, the request asks ${o.modelId}`)
  if (
    e.tokens.join(',') !== posted.tokens.join(',') ||
    e.margins.join(',') !== posted.margins.join(',')
  )
    problems.push('the evidence’s tokens or margins are not the posted ones')
  for (let i = 1; i < e.calls.length; i++)
    if (callOrder(e.calls[i - 1], e.calls[i]) > 0) {
      problems.push(`calls are not in canonical order at call ${i}`)
      break
    }
  const bindings = new Map<string, Promise<{ ok: boolean; why: string }>>()
  const bound = (operator: string, peerId: string): Promise<{ ok: boolean; why: string }> => {
    const key = `${operator.toLowerCase()}|${peerId}`
    let p = bindings.get(key)
    if (p == null) {
      p = (async () => {
        const b = await o.bindingOf(operator)
        if (b == null) return { ok: false, why: `operator ${operator} is not registered` }
        let registered: string
        try {
          registered = peerIdFromPublicKey(publicKeyFromPeerIdBytes(b.peerId)).toString()
        } catch {
          return { ok: false, why: `operator ${operator} has no usable PeerId registered` }
        }
        if (registered !== peerId)
          return {
            ok: false,
            why: `the registry binds operator ${operator} to ${registered.slice(-8)}, not to this node`
          }
        const ok = await verifyPeerBinding(
          { chainId: b.chainId, registry: b.registry, operator },
          b.peerId,
          b.peerSignature
        )
        return ok
          ? { ok, why: '' }
          : { ok, why: `the registered binding of operator ${operator} does not verify` }
      })()
      bindings.set(key, p)
    }
    return p
  }
  const operators = new Map<string, { calls: number; rows: number; charged: bigint }>()
  const payers = new Set<string>()
  let signed = 0
  let local = 0
  for (const [i, c] of e.calls.entries()) {
    if (c.source === 'local') {
      local++
      continue
    }
    const at = describeCall(i, c)
    if (c.signature == null || c.signature === '0x' || c.requestId == null) {
      problems.push(`${at}: no signature — not a node's answer`)
      continue
    }
    let sigOk: boolean
    try {
      const key = peerIdFromString(c.peerId!).publicKey
      sigOk =
        key != null &&
        (await verifyDigest(
          key,
          {
            requestId: BigInt(c.requestId),
            modelId: hexToBytes(e.modelId),
            layer: c.layer,
            expert: c.expert,
            dtype: c.dtype === 'fp16' ? DType.FP16 : DType.FP32,
            rows: c.rows,
            hidden: e.hidden,
            inputHash: hexToBytes(c.inputHash),
            outputHash: hexToBytes(c.outputHash)
          },
          hexToBytes(c.signature)
        ))
    } catch {
      sigOk = false
    }
    if (!sigOk) {
      problems.push(`${at}: the signature does not verify (forged, or not this node's answer)`)
      continue
    }
    if (c.operator == null) {
      problems.push(`${at}: no operator named — the node is not tied to any stake`)
      continue
    }
    const b = await bound(c.operator, c.peerId!)
    if (!b.ok) {
      problems.push(`${at}: ${b.why}`)
      continue
    }
    if (c.payment != null && o.domain != null) {
      const v = {
        payer: c.payment.payer,
        payee: c.payment.payee,
        cumulativeAmount: BigInt(c.payment.cumulativeAmount)
      }
      if (!isVoucherSignedByPayer(o.domain, v, c.payment.voucherSignature)) {
        problems.push(`${at}: the voucher is not signed by its payer ${c.payment.payer}`)
        continue
      }
      if (c.payment.payee.toLowerCase() !== c.operator.toLowerCase()) {
        problems.push(`${at}: the voucher pays ${c.payment.payee}, not the node's operator`)
        continue
      }
      payers.add(c.payment.payer)
    }
    signed++
    const s = operators.get(c.operator) ?? { calls: 0, rows: 0, charged: 0n }
    s.calls++
    s.rows += c.rows
    s.charged += BigInt(c.payment?.charge ?? 0)
    operators.set(c.operator, s)
  }
  return { calls: e.calls.length, signed, local, operators, payers: [...payers], problems }
}

export interface CallDifference {
  /** Index in the posted evidence's calls (or in mine, when the posted list lacks the call). */
  index: number
  call: OracleCall
  /** 'output': same input, another output — re-run this expert to see who is right. 'input': the runs had already diverged upstream (an earlier output, or the dense part). 'missing': one run made a call the other did not (another expert was routed). */
  kind: 'output' | 'input' | 'missing'
  text: string
}

/**
 * The first expert call, in canonical order, where the posted run and this run differ. Calls
 * are matched by (token, layer, expert) and, within that, by order; bitwise output hashes are
 * compared, so across hardware an honest pair may differ in the last bits too — the first
 * difference is where to look, and re-running that call (tolerance, router/tolerance.ts) decides.
 */
export function firstDifferingCall(
  posted: readonly OracleCall[],
  mine: readonly OracleCall[]
): CallDifference | null {
  const key = (c: OracleCall): string => `${c.step}|${c.layer}|${c.expert}`
  const group = (cs: readonly OracleCall[]): Map<string, OracleCall[]> => {
    const m = new Map<string, OracleCall[]>()
    for (const c of cs) m.set(key(c), [...(m.get(key(c)) ?? []), c])
    return m
  }
  const theirs = group(posted)
  const ours = group(mine)
  const seen = new Map<string, number>()
  const candidates: CallDifference[] = []
  for (const [i, c] of posted.entries()) {
    const n = seen.get(key(c)) ?? 0
    seen.set(key(c), n + 1)
    const m = ours.get(key(c))?.[n]
    const at = describeCall(i, c)
    if (m == null) {
      candidates.push({
        index: i,
        call: c,
        kind: 'missing',
        text: `${at}: this run made no such call (it routed that token to other experts)`
      })
      break
    }
    if (m.inputHash !== c.inputHash) {
      candidates.push({
        index: i,
        call: c,
        kind: 'input',
        text: `${at}: another input than this run's (the runs diverged before this call)`
      })
      break
    }
    if (m.outputHash !== c.outputHash) {
      candidates.push({
        index: i,
        call: c,
        kind: 'output',
        text: `${at}: same input, another output (${c.outputHash.slice(0, 10)}… vs ${m.outputHash.slice(0, 10)}…) — re-run this expert to see whose is right`
      })
      break
    }
  }
  const seenMine = new Map<string, number>()
  for (const [i, c] of mine.entries()) {
    const n = seenMine.get(key(c)) ?? 0
    seenMine.set(key(c), n + 1)
    if (theirs.get(key(c))?.[n] == null) {
      candidates.push({
        index: i,
        call: c,
        kind: 'missing',
        text: `${describeCall(i, c)} of this run: the posted evidence has no such call (it routed that token to other experts)`
      })
      break
    }
  }
  return candidates.sort((a, b) => callOrder(a.call, b.call))[0] ?? null
}
