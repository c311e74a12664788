// Answering an on-chain inference request (chain/oracle.ts): the prompt's UTF-8 text tokenized
// as `pov generate --prompt` does (BOS added), greedy decoding up to the request's max tokens,
// stopping at EOS, and each token's top-1/top-2 logit margin in micro-logits — the result a
// fulfiller posts and a checker compares. The evidence file (the run and its expert calls, each
// a node's signed answer: router/oracle-evidence.ts) is what the result's hash commits to.
import { keccak256 } from 'ethers'
import type { DenseRuntime } from '../model/dense/index.js'
import type { ExpertExecutor } from '../model/experts.js'
import { generate } from '../model/generate.js'
import type { PovTokenizer } from '../model/tokenizer.js'
import { firstDifference, marginToMicro, type OracleResult } from '../chain/oracle.js'
import {
  encodeOracleEvidence,
  ORACLE_EVIDENCE_FORMAT,
  type CallRecorder,
  type OracleEvidence
} from './oracle-evidence.js'

export interface OracleRun {
  result: OracleResult
  /** The evidence (`degraded`: an expert was substituted; such a run must not be posted). */
  record: OracleEvidence
  /** The evidence file's bytes (its keccak256 is `result.evidenceHash`). */
  evidence: Uint8Array
  text: string
  /** POV wei this run paid expert nodes (0 for local or unpaid experts). */
  cost: bigint
}

export interface OracleModel {
  modelId: string
  dense: DenseRuntime
  experts: ExpertExecutor
  tokenizer: PovTokenizer
  eosTokenId: number | null
  vocabSize: number
  hidden: number
  describe: string
  /** Records the run's expert calls (the experts above report to it); none: the evidence lists no calls. */
  recorder?: CallRecorder
  /** POV wei paid to expert nodes so far (a paid model), to price a run. */
  spent?: () => bigint
}

export class OracleRunError extends Error {
  override name = 'OracleRunError'
}

/** Runs a request's prompt greedily; the result a fulfiller posts. */
export async function runOracleRequest(
  m: OracleModel,
  req: { prompt: string; maxTokens: number },
  signal?: AbortSignal
): Promise<OracleRun> {
  const promptIds = m.tokenizer.encode(req.prompt)
  if (promptIds.length === 0) throw new OracleRunError('the prompt is empty')
  const bad = promptIds.find((id) => id >= m.vocabSize)
  if (bad !== undefined) throw new OracleRunError(`prompt token ${bad} is outside the vocabulary`)
  const tokens: number[] = []
  const margins: number[] = []
  const rec = m.recorder
  rec?.reset()
  const spentBefore = m.spent?.() ?? 0n
  const it = generate({
    dense: m.dense,
    experts: m.experts,
    promptIds,
    maxTokens: req.maxTokens,
    eosTokenId: m.eosTokenId,
    signal
  })
  // calls made while the iterator computes token i belong to step i
  let r = await it.next()
  while (r.done !== true) {
    tokens.push(r.value.id)
    margins.push(marginToMicro(r.value.margin))
    if (rec != null) rec.step = tokens.length
    r = await it.next()
  }
  const record: OracleEvidence = {
    format: ORACLE_EVIDENCE_FORMAT,
    modelId: m.modelId,
    hidden: m.hidden,
    promptIds,
    tokens,
    margins,
    stopReason: r.value.stopReason,
    experts: m.describe,
    degraded: r.value.degraded,
    calls: rec?.take() ?? []
  }
  const evidence = encodeOracleEvidence(record)
  return {
    result: { tokens, margins, evidenceHash: keccak256(evidence) },
    record,
    evidence,
    text: m.tokenizer.decode(tokens),
    cost: (m.spent?.() ?? 0n) - spentBefore
  }
}

export interface OracleVerdict {
  agree: boolean
  /** First differing token, -1 when the tokens agree. */
  position: number
  /** Both margins (micro-logits) at `position` below the near-tie threshold: the contract refuses a challenge. */
  nearTie: boolean
  postedMargin: number | null
  myMargin: number | null
}

/** Compares a posted result with this run, with the contract's near-tie rule. */
export function compareResults(
  posted: OracleResult,
  mine: OracleResult,
  tieMargin: number
): OracleVerdict {
  const position = firstDifference(posted.tokens, mine.tokens)
  if (position < 0)
    return { agree: true, position, nearTie: false, postedMargin: null, myMargin: null }
  const postedMargin = posted.margins[position] ?? null
  const myMargin = mine.margins[position] ?? null
  const nearTie =
    postedMargin != null && myMargin != null && postedMargin < tieMargin && myMargin < tieMargin
  return { agree: false, position, nearTie, postedMargin, myMargin }
}
