// Answering an on-chain inference request (chain/oracle.ts): the prompt's UTF-8 text tokenized
// as `pov generate --prompt` does (BOS added), greedy decoding up to the request's max tokens,
// stopping at EOS, and each token's top-1/top-2 logit margin in micro-logits — the result a
// fulfiller posts and a checker compares. The run record (prompt ids, tokens, margins, where the
// experts ran) is the evidence file whose keccak256 the result commits to.
import { keccak256, toUtf8Bytes } from 'ethers'
import type { DenseRuntime } from '../model/dense/index.js'
import type { ExpertExecutor } from '../model/experts.js'
import { generate } from '../model/generate.js'
import type { PovTokenizer } from '../model/tokenizer.js'
import { firstDifference, marginToMicro, type OracleResult } from '../chain/oracle.js'

export const ORACLE_RUN_FORMAT = 'pov-oracle-run/1'

export interface OracleRunRecord {
  format: typeof ORACLE_RUN_FORMAT
  modelId: string
  promptIds: number[]
  tokens: number[]
  /** Top-1 minus top-2 logit of each token, micro-logits. */
  margins: number[]
  stopReason: string
  /** Where the experts ran (local, or the peers' descriptions). */
  experts: string
  /** Whether any expert was substituted (a degraded run must not be posted). */
  degraded: boolean
}

export interface OracleRun {
  result: OracleResult
  record: OracleRunRecord
  /** The evidence file's bytes (its keccak256 is `result.evidenceHash`). */
  evidence: Uint8Array
  text: string
}

export interface OracleModel {
  modelId: string
  dense: DenseRuntime
  experts: ExpertExecutor
  tokenizer: PovTokenizer
  eosTokenId: number | null
  vocabSize: number
  describe: string
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
  const it = generate({
    dense: m.dense,
    experts: m.experts,
    promptIds,
    maxTokens: req.maxTokens,
    eosTokenId: m.eosTokenId,
    signal
  })
  let r = await it.next()
  while (r.done !== true) {
    tokens.push(r.value.id)
    margins.push(marginToMicro(r.value.margin))
    r = await it.next()
  }
  const record: OracleRunRecord = {
    format: ORACLE_RUN_FORMAT,
    modelId: m.modelId,
    promptIds,
    tokens,
    margins,
    stopReason: r.value.stopReason,
    experts: m.describe,
    degraded: r.value.degraded
  }
  const evidence = toUtf8Bytes(JSON.stringify(record) + '\n')
  return {
    result: { tokens, margins, evidenceHash: keccak256(evidence) },
    record,
    evidence,
    text: m.tokenizer.decode(tokens)
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
