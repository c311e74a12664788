// MixtralConfig: the camelCase view of a Hugging Face `config.json` for MixtralForCausalLM.
// Field names follow transformers' MixtralConfig; defaults are transformers' defaults where a
// real checkpoint may omit the field (head_dim, tie_word_embeddings, bos/eos ids).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface MixtralConfig {
  hiddenSize: number
  intermediateSize: number
  numLayers: number
  numHeads: number
  numKvHeads: number
  headDim: number
  numExperts: number
  topK: number
  vocabSize: number
  rmsNormEps: number
  ropeTheta: number
  slidingWindow: number | null
  maxPositionEmbeddings: number
  bosTokenId: number
  eosTokenId: number
  tieWordEmbeddings: boolean
  torchDtype: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Json = Record<string, unknown>

function int(j: Json, key: string, opts: { min?: number; def?: number } = {}): number {
  const v = j[key] ?? opts.def
  if (v === undefined) throw new ConfigError(`config.json: missing required field "${key}"`)
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new ConfigError(`config.json: "${key}" must be an integer, got ${JSON.stringify(v)}`)
  const min = opts.min ?? 1
  if (v < min) throw new ConfigError(`config.json: "${key}" must be >= ${min}, got ${v}`)
  return v
}

function num(j: Json, key: string, def: number, positive = true): number {
  const v = j[key] ?? def
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) {
    throw new ConfigError(
      `config.json: "${key}" must be a ${positive ? 'positive ' : ''}finite number, got ${JSON.stringify(v)}`
    )
  }
  return v
}

/** Token id fields may be a number or (in some checkpoints) a list; we take the first entry. */
function tokenId(j: Json, key: string, def: number): number {
  let v = j[key] ?? def
  if (Array.isArray(v)) v = v[0]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ConfigError(
      `config.json: "${key}" must be a non-negative integer, got ${JSON.stringify(j[key])}`
    )
  return v
}

/** Validates a parsed `config.json` and returns its camelCase view. Throws ConfigError. */
export function parseMixtralConfig(json: unknown): MixtralConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ConfigError('config.json: expected a JSON object')
  const j = json as Json
  if (j.model_type !== undefined && j.model_type !== 'mixtral') {
    throw new ConfigError(
      `config.json: model_type is "${String(j.model_type)}", expected "mixtral" (MixtralForCausalLM)`
    )
  }
  const hiddenSize = int(j, 'hidden_size')
  const numHeads = int(j, 'num_attention_heads')
  const numKvHeads = int(j, 'num_key_value_heads', { def: numHeads })
  const headDim = int(j, 'head_dim', { def: Math.floor(hiddenSize / numHeads) })
  if (j.head_dim == null && hiddenSize % numHeads !== 0)
    throw new ConfigError(
      `config.json: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} (and no head_dim is given)`
    )
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(
      `config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`
    )
  const numExperts = int(j, 'num_local_experts')
  const topK = int(j, 'num_experts_per_tok')
  if (topK > numExperts)
    throw new ConfigError(
      `config.json: num_experts_per_tok ${topK} > num_local_experts ${numExperts}`
    )
  const vocabSize = int(j, 'vocab_size')
  const sw = j.sliding_window
  let slidingWindow: number | null = null
  if (sw != null) slidingWindow = int(j, 'sliding_window')
  const tie = j.tie_word_embeddings ?? false
  if (typeof tie !== 'boolean')
    throw new ConfigError(
      `config.json: "tie_word_embeddings" must be a boolean, got ${JSON.stringify(tie)}`
    )
  const dtype = j.torch_dtype ?? j.dtype ?? 'float32'
  if (typeof dtype !== 'string')
    throw new ConfigError(
      `config.json: "torch_dtype" must be a string, got ${JSON.stringify(dtype)}`
    )
  const bosTokenId = tokenId(j, 'bos_token_id', 1)
  const eosTokenId = tokenId(j, 'eos_token_id', 2)
  for (const [k, v] of [
    ['bos_token_id', bosTokenId],
    ['eos_token_id', eosTokenId]
  ] as const) {
    if (v >= vocabSize)
      throw new ConfigError(
        `config.json: ${k} ${v} is outside the vocabulary (vocab_size ${vocabSize})`
      )
  }
  return {
    hiddenSize,
    intermediateSize: int(j, 'intermediate_size'),
    numLayers: int(j, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    numExperts,
    topK,
    vocabSize,
    rmsNormEps: num(j, 'rms_norm_eps', 1e-5),
    ropeTheta: num(j, 'rope_theta', 1e6),
    slidingWindow,
    maxPositionEmbeddings: int(j, 'max_position_embeddings', { def: 4096 * 32 }),
    bosTokenId,
    eosTokenId,
    tieWordEmbeddings: tie,
    torchDtype: dtype
  }
}

/** The HF `config.json` form of a MixtralConfig (what init-tiny writes). */
export function toHfConfigJson(c: MixtralConfig): Json {
  return {
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    attention_dropout: 0.0,
    hidden_act: 'silu',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    num_local_experts: c.numExperts,
    num_experts_per_tok: c.topK,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    sliding_window: c.slidingWindow,
    max_position_embeddings: c.maxPositionEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: c.torchDtype,
    output_router_logits: false,
    router_aux_loss_coef: 0.02,
    initializer_range: 0.02,
    use_cache: true,
    transformers_version: '4.46.0'
  }
}

/** Reads and validates `<dir>/config.json`. */
export async function readMixtralConfig(dir: string): Promise<MixtralConfig> {
  const path = join(dir, 'config.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
  try {
    return parseMixtralConfig(json)
  } catch (err) {
    if (err instanceof ConfigError) err.message = err.message.replace(/^config\.json/, path)
    throw err
  }
}
