// Fault evidence: a self-contained JSON file anyone can check offline against the approved
// bundle (`pov audit verify-fault`). It carries the call (model id, layer, expert, encoding,
// shape, the input tensor) and every answer the router compared: each node's output tensor,
// its hash, the node's signature over the call (protocol/signature.ts) and, when the router
// knew it, the registry's PeerId→operator binding. Re-running the expert says who was wrong;
// the signature makes the wrong answer the node's own.
import { keccak256 } from 'ethers'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { publicKeyFromPeerIdBytes, verifyPeerBinding } from '../chain/peer-binding.js'
import { DType } from '../protocol/expert.js'
import { bytesPerElement, bytesToHex, decodeTensor, hexToBytes } from '../protocol/codec.js'
import type { Voucher as WireVoucher } from '../protocol/expert.js'
import { voucherFromWire } from '../protocol/payment.js'
import { sha256, verifyDigest } from '../protocol/signature.js'
import { DEFAULT_VERIFY_TOLERANCE, outputDistance } from './tolerance.js'

export const EVIDENCE_FORMAT = 'pov-fault-evidence/1'

/** The on-chain registration that ties a PeerId to a staked operator (docs/contracts.md). */
export interface EvidenceBinding {
  chainId: string
  registry: string
  operator: string
  /** 0x PeerId bytes as registered. */
  peerIdBytes: string
  /** 0x the PeerId key's signature over the binding message. */
  peerSignature: string
}

export interface EvidenceAnswer {
  /** 'node': a signed remote answer; 'local': the router's own run (unsigned, not evidence against anyone). */
  source: 'node' | 'local'
  peerId?: string
  binding?: EvidenceBinding
  /** Decimal uint64: the request id the node signed. */
  requestId?: string
  /** 0x sha256 of `output`'s bytes. */
  outputHash: string
  /** 0x Ed25519 signature (nodes only). */
  signature?: string
  /** The output tensor as on the wire, base64. */
  output: string
  /**
   * What the payer paid for this answer (a paid network): the voucher sent with the call, signed
   * by the payer (EIP-712, docs/protocol.md#vouchers), and the call's charge. With the node's
   * signed wrong answer above, this is the payer's claim to get `charge` back (docs/trust.md).
   */
  payment?: EvidencePayment
}

export interface EvidencePayment {
  /** 0x payer address. */
  payer: string
  /** 0x payee (operator) address. */
  payee: string
  /** Decimal POV wei: the voucher's cumulative amount, this call included. */
  cumulativeAmount: string
  /** 0x 65-byte EIP-712 voucher signature by the payer. */
  voucherSignature: string
  /** Decimal POV wei: what this call was charged (price × rows), when the router knew it. */
  charge?: string
}

export interface FaultEvidence {
  format: typeof EVIDENCE_FORMAT
  modelId: string
  layer: number
  expert: number
  dtype: 'fp32' | 'fp16'
  rows: number
  hidden: number
  /** 0x sha256 of `input`'s bytes. */
  inputHash: string
  /** The input tensor as on the wire, base64. */
  input: string
  answers: EvidenceAnswer[]
  /** What the router concluded (informative; a verifier recomputes it). */
  router: { tolerance: number; convicted: string[]; createdAt: string }
}

export class EvidenceError extends Error {
  override name = 'EvidenceError'
}

const b64 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const dtypeOf = (d: 'fp32' | 'fp16'): DType => (d === 'fp16' ? DType.FP16 : DType.FP32)

/** The bytes of an evidence file (canonical: what the hash on-chain commits to). */
export function encodeEvidence(e: FaultEvidence): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(e, null, 2) + '\n')
}

/** keccak256 of the file's bytes: the `evidenceHash` of an on-chain fault report. */
export function evidenceHash(fileBytes: Uint8Array): string {
  return keccak256(fileBytes)
}

/** Whether `p` has the shape of an EvidencePayment (addresses, decimal amounts, a 65-byte
 *  voucher signature); the signature itself is checked where the evidence is verified. */
export function isPaymentEvidence(p: Partial<Record<keyof EvidencePayment, unknown>>): boolean {
  return (
    /^0x[0-9a-f]{40}$/i.test(String(p.payer)) &&
    /^0x[0-9a-f]{40}$/i.test(String(p.payee)) &&
    /^[0-9]+$/.test(String(p.cumulativeAmount)) &&
    /^0x[0-9a-f]{130}$/i.test(String(p.voucherSignature)) &&
    (p.charge == null || /^[0-9]+$/.test(String(p.charge)))
  )
}

/** The evidence form of the voucher a call carried, and its charge when known. */
export function paymentEvidence(v: WireVoucher, charge?: bigint): EvidencePayment {
  const s = voucherFromWire(v)!
  return {
    payer: s.payer,
    payee: s.payee,
    cumulativeAmount: s.cumulativeAmount.toString(),
    voucherSignature: s.signature,
    ...(charge != null ? { charge: charge.toString() } : {})
  }
}

export function buildEvidence(call: {
  modelId: string
  layer: number
  expert: number
  dtype: DType
  rows: number
  hidden: number
  input: Uint8Array
  answers: Array<{
    peerId?: string
    binding?: EvidenceBinding
    requestId?: bigint
    output: Uint8Array
    signature?: Uint8Array
    payment?: EvidencePayment
  }>
  tolerance: number
  convicted: string[]
}): FaultEvidence {
  return {
    format: EVIDENCE_FORMAT,
    modelId: call.modelId.toLowerCase(),
    layer: call.layer,
    expert: call.expert,
    dtype: call.dtype === DType.FP16 ? 'fp16' : 'fp32',
    rows: call.rows,
    hidden: call.hidden,
    inputHash: bytesToHex(sha256(call.input)),
    input: b64(call.input),
    answers: call.answers.map((a) => ({
      source: a.peerId == null ? 'local' : 'node',
      ...(a.peerId != null ? { peerId: a.peerId } : {}),
      ...(a.binding != null ? { binding: a.binding } : {}),
      ...(a.requestId != null ? { requestId: a.requestId.toString() } : {}),
      outputHash: bytesToHex(sha256(a.output)),
      ...(a.signature != null ? { signature: bytesToHex(a.signature) } : {}),
      output: b64(a.output),
      ...(a.payment != null ? { payment: a.payment } : {})
    })),
    router: {
      tolerance: call.tolerance,
      convicted: call.convicted,
      createdAt: new Date().toISOString()
    }
  }
}

/** Parses and shape-checks an evidence file; throws EvidenceError saying what is wrong. */
export function parseEvidence(text: string): FaultEvidence {
  let e: FaultEvidence
  try {
    e = JSON.parse(text) as FaultEvidence
  } catch (err) {
    throw new EvidenceError(`not JSON: ${(err as Error).message}`)
  }
  const fail = (what: string): never => {
    throw new EvidenceError(`not a ${EVIDENCE_FORMAT} file: ${what}`)
  }
  if (e == null || typeof e !== 'object') fail('not an object')
  if (e.format !== EVIDENCE_FORMAT) fail(`format is ${JSON.stringify(e.format)}`)
  if (!/^0x[0-9a-f]{64}$/i.test(String(e.modelId))) fail('modelId is not 32 bytes of hex')
  for (const k of ['layer', 'expert', 'rows', 'hidden'] as const)
    if (!Number.isSafeInteger(e[k]) || e[k] < 0) fail(`${k} is not a non-negative integer`)
  if (e.rows < 1 || e.hidden < 1) fail('rows and hidden must be ≥ 1')
  if (e.dtype !== 'fp32' && e.dtype !== 'fp16') fail('dtype must be fp32 or fp16')
  if (typeof e.input !== 'string') fail('input is missing')
  if (!Array.isArray(e.answers) || e.answers.length < 2) fail('fewer than 2 answers')
  for (const [i, a] of e.answers.entries()) {
    if (a.source !== 'node' && a.source !== 'local')
      fail(`answer ${i}: source must be node or local`)
    if (typeof a.output !== 'string' || typeof a.outputHash !== 'string')
      fail(`answer ${i}: output or outputHash missing`)
    if (a.source === 'node' && (a.peerId == null || a.signature == null || a.requestId == null))
      fail(`answer ${i}: a node answer needs peerId, requestId and signature`)
    if (a.payment != null && !isPaymentEvidence(a.payment))
      fail(
        `answer ${i}: payment needs payer, payee, a decimal cumulativeAmount and a 65-byte voucherSignature`
      )
  }
  return e
}

export interface SignerVerdict {
  peerId: string
  operator: string | null
  /** The signature verifies over (call, input hash, output hash) with the PeerId's key. */
  signatureOk: boolean
  /** The on-chain binding verifies (null: none in the file). */
  bindingOk: boolean | null
  /** The carried output matches the signed hash. */
  outputHashOk: boolean
  /** Distance of the signed output from the re-executed expert (router/tolerance.ts). */
  distance: number
  wrong: boolean
  /** A wrong answer that was paid for: what the payer may claim back (the file's voucher). */
  refund?: EvidencePayment
}

export interface FaultVerdict {
  modelId: string
  layer: number
  expert: number
  rows: number
  tolerance: number
  inputHashOk: boolean
  /** Every node answer, in file order. */
  signers: SignerVerdict[]
  /** Signers proven wrong: valid signature on an output outside the tolerance. */
  wrong: SignerVerdict[]
  problems: string[]
}

/**
 * Re-executes the call with `reference` (the approved bundle's expert) and judges every signed
 * answer. `modelId`: the bundle's id; the evidence must name the same model.
 */
export async function verifyFaultEvidence(
  e: FaultEvidence,
  modelId: string,
  reference: (x: Float32Array, rows: number) => Promise<Float32Array>,
  tolerance = DEFAULT_VERIFY_TOLERANCE
): Promise<FaultVerdict> {
  if (e.modelId.toLowerCase() !== modelId.toLowerCase())
    throw new EvidenceError(
      `the evidence is about model ${e.modelId}, the bundle is ${modelId} — pass the approved bundle the evidence names`
    )
  const dtype = dtypeOf(e.dtype)
  const input = unb64(e.input)
  const expected = e.rows * e.hidden * bytesPerElement(dtype)
  if (input.byteLength !== expected)
    throw new EvidenceError(
      `input has ${input.byteLength} bytes; ${e.rows}×${e.hidden} ${e.dtype} needs ${expected}`
    )
  const problems: string[] = []
  const inputHash = bytesToHex(sha256(input))
  const inputHashOk = inputHash === e.inputHash.toLowerCase()
  if (!inputHashOk) problems.push(`input hash is ${inputHash}, the file says ${e.inputHash}`)
  const truth = await reference(decodeTensor(input, dtype), e.rows)
  const signers: SignerVerdict[] = []
  for (const a of e.answers) {
    if (a.source !== 'node') continue
    const peerId = a.peerId!
    const output = unb64(a.output)
    const outputHash = sha256(output)
    const outputHashOk = bytesToHex(outputHash) === a.outputHash.toLowerCase()
    let signatureOk: boolean
    try {
      const key = peerIdFromString(peerId).publicKey
      signatureOk =
        key != null &&
        (await verifyDigest(
          key,
          {
            requestId: BigInt(a.requestId!),
            modelId: hexToBytes(e.modelId),
            layer: e.layer,
            expert: e.expert,
            dtype,
            rows: e.rows,
            hidden: e.hidden,
            inputHash: sha256(input),
            outputHash
          },
          hexToBytes(a.signature!)
        ))
    } catch {
      signatureOk = false
    }
    let bindingOk: boolean | null = null
    if (a.binding != null) {
      const b = a.binding
      bindingOk =
        (await verifyPeerBinding(
          { chainId: BigInt(b.chainId), registry: b.registry, operator: b.operator },
          b.peerIdBytes,
          b.peerSignature
        )) && samePeer(b.peerIdBytes, peerId)
    }
    const distance =
      output.byteLength === expected
        ? outputDistance(decodeTensor(output, dtype), truth, e.hidden)
        : Infinity
    const short = peerId.slice(-8)
    if (!outputHashOk) problems.push(`${short}: output does not match its signed hash`)
    if (!signatureOk) problems.push(`${short}: signature does not verify (not this node's answer)`)
    if (bindingOk === false) problems.push(`${short}: the PeerId→operator binding does not verify`)
    const wrong = signatureOk && outputHashOk && inputHashOk && distance > tolerance
    signers.push({
      peerId,
      operator: a.binding?.operator ?? null,
      signatureOk,
      bindingOk,
      outputHashOk,
      distance,
      wrong,
      ...(wrong && a.payment != null ? { refund: a.payment } : {})
    })
  }
  return {
    modelId: e.modelId,
    layer: e.layer,
    expert: e.expert,
    rows: e.rows,
    tolerance,
    inputHashOk,
    signers,
    wrong: signers.filter((s) => s.wrong),
    problems
  }
}

function samePeer(peerIdBytes: string, peerId: string): boolean {
  try {
    return peerIdFromPublicKey(publicKeyFromPeerIdBytes(peerIdBytes)).toString() === peerId
  } catch {
    return false
  }
}
