// A model draft: a small dense transformer (Hugging Face LlamaForCausalLM layout) with the
// target's tokenizer, run in plain TypeScript on the CPU with its own KV cache. Small enough
// (models/tiny-en/draft: 2 layers, hidden 128) that a proposed token costs well under a
// millisecond, so no ORT session is needed; the LM head (vocab × hidden) is most of the work.
//
// Roll-back: the draft remembers the tokens its KV cache holds; a new context keeps the longest
// common prefix and recomputes the rest, so after a rejection the proposals are exactly those of
// a fresh draft on the same context (tests/unit/model/model-draft.test.ts).
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Draft, DraftProposal, DraftSampling } from '../draft.js'
import { argmax, sampleFrom, tokenDistribution } from '../sampling.js'
import { CheckpointReader } from '../safetensors.js'

/** Where a bundle or an HF model directory keeps its draft. */
export const DRAFT_DIR = 'draft'

export class DraftError extends Error {
  override name = 'DraftError'
}

export interface DraftConfig {
  /** `pov_draft_name` in config.json (for logs and `--json`), else 'model-draft'. */
  name: string
  hiddenSize: number
  intermediateSize: number
  numLayers: number
  numHeads: number
  numKvHeads: number
  headDim: number
  vocabSize: number
  rmsNormEps: number
  ropeTheta: number
  tieWordEmbeddings: boolean
}

type Json = Record<string, unknown>

function int(file: string, j: Json, key: string, def?: number): number {
  const v = j[key] ?? def
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new DraftError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`)
  return v
}

function positive(file: string, j: Json, key: string, def: number): number {
  const v = j[key] ?? def
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new DraftError(`${file}: "${key}" must be a positive number, got ${JSON.stringify(v)}`)
  return v
}

/** Validates a draft's HF `config.json` (LlamaForCausalLM / MistralForCausalLM: dense, no
 *  sliding window, no rope scaling). Throws DraftError. */
export function parseDraftConfig(json: unknown, file = 'config.json'): DraftConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new DraftError(`${file}: expected a JSON object`)
  const j = json as Json
  if (j.model_type !== 'llama' && j.model_type !== 'mistral')
    throw new DraftError(
      `${file}: model_type is ${JSON.stringify(j.model_type)}; a model draft is a dense "llama" or "mistral" model`
    )
  if (j.rope_scaling != null)
    throw new DraftError(`${file}: rope_scaling is not supported by the model draft`)
  if (j.sliding_window != null)
    throw new DraftError(`${file}: sliding_window is not supported by the model draft`)
  if (j.attention_bias === true || j.mlp_bias === true)
    throw new DraftError(`${file}: biases are not supported by the model draft`)
  const hiddenSize = int(file, j, 'hidden_size')
  const numHeads = int(file, j, 'num_attention_heads')
  const numKvHeads = int(file, j, 'num_key_value_heads', numHeads)
  const headDim = int(file, j, 'head_dim', Math.floor(hiddenSize / numHeads))
  if (numHeads % numKvHeads !== 0)
    throw new DraftError(
      `${file}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`
    )
  if (headDim % 2 !== 0) throw new DraftError(`${file}: head_dim ${headDim} must be even (RoPE)`)
  const intermediateSize = int(file, j, 'intermediate_size')
  for (const [key, v] of [
    ['hidden_size', hiddenSize],
    ['intermediate_size', intermediateSize],
    ['head_dim × num_attention_heads', headDim * numHeads]
  ] as const)
    if (v % 4 !== 0) throw new DraftError(`${file}: ${key} ${v} must be a multiple of 4`)
  const tie = j.tie_word_embeddings ?? false
  if (typeof tie !== 'boolean')
    throw new DraftError(`${file}: "tie_word_embeddings" must be a boolean`)
  const name = j.pov_draft_name ?? 'model-draft'
  if (typeof name !== 'string' || name.length === 0 || name.length > 64)
    throw new DraftError(`${file}: "pov_draft_name" must be a short string`)
  return {
    name,
    hiddenSize,
    intermediateSize,
    numLayers: int(file, j, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(file, j, 'vocab_size'),
    rmsNormEps: positive(file, j, 'rms_norm_eps', 1e-6),
    ropeTheta: positive(file, j, 'rope_theta', 10000),
    tieWordEmbeddings: tie
  }
}

interface LayerWeights {
  inNorm: Float32Array
  q: Float32Array
  k: Float32Array
  v: Float32Array
  o: Float32Array
  postNorm: Float32Array
  gate: Float32Array
  up: Float32Array
  down: Float32Array
}

/** The weights of a model draft, as float32 (f16/bf16 checkpoints are widened exactly). */
export interface DraftWeights {
  config: DraftConfig
  embed: Float32Array
  layers: LayerWeights[]
  norm: Float32Array
  lmHead: Float32Array
}

/** Reads and checks a draft checkpoint directory (config.json + safetensors). */
export async function readDraftWeights(dir: string): Promise<DraftWeights> {
  const cfgPath = join(dir, 'config.json')
  let raw: string
  try {
    raw = await readFile(cfgPath, 'utf8')
  } catch (err) {
    throw new DraftError(`${cfgPath}: cannot read the draft's config: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (err) {
    throw new DraftError(`${cfgPath}: not valid JSON: ${(err as Error).message}`)
  }
  const c = parseDraftConfig(json, cfgPath)
  let r: CheckpointReader
  try {
    r = await CheckpointReader.open(dir)
  } catch (err) {
    throw new DraftError(`draft ${dir}: ${(err as Error).message}`)
  }
  try {
    const H = c.hiddenSize
    const qd = c.numHeads * c.headDim
    const kvd = c.numKvHeads * c.headDim
    const I = c.intermediateSize
    const read = async (name: string, shape: number[]): Promise<Float32Array> => {
      try {
        const w = await r.readFloat32(name, shape)
        for (let i = 0; i < w.length; i++)
          if (!Number.isFinite(w[i])) throw new Error(`non-finite value at index ${i}`)
        return w
      } catch (err) {
        throw new DraftError(`draft ${dir}: tensor "${name}": ${(err as Error).message}`)
      }
    }
    const layers: LayerWeights[] = []
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`
      layers.push({
        inNorm: await read(`${p}input_layernorm.weight`, [H]),
        q: await read(`${p}self_attn.q_proj.weight`, [qd, H]),
        k: await read(`${p}self_attn.k_proj.weight`, [kvd, H]),
        v: await read(`${p}self_attn.v_proj.weight`, [kvd, H]),
        o: await read(`${p}self_attn.o_proj.weight`, [H, qd]),
        postNorm: await read(`${p}post_attention_layernorm.weight`, [H]),
        gate: await read(`${p}mlp.gate_proj.weight`, [I, H]),
        up: await read(`${p}mlp.up_proj.weight`, [I, H]),
        down: await read(`${p}mlp.down_proj.weight`, [H, I])
      })
    }
    const embed = await read('model.embed_tokens.weight', [c.vocabSize, H])
    const lmHead =
      c.tieWordEmbeddings && !r.has('lm_head.weight')
        ? embed
        : await read('lm_head.weight', [c.vocabSize, H])
    return { config: c, embed, layers, norm: await read('model.norm.weight', [H]), lmHead }
  } finally {
    await r.close()
  }
}

/** y = W x, W row-major [out, in] (nn.Linear's layout); `inDim` a multiple of 4 (checked at
 *  load). Four accumulators: the LM head is most of a token's work. */
function matvec(w: Float32Array, x: Float64Array, out: Float64Array, inDim: number): void {
  const n = out.length
  for (let o = 0; o < n; o++) {
    const b = o * inDim
    let s0 = 0
    let s1 = 0
    let s2 = 0
    let s3 = 0
    for (let i = 0; i < inDim; i += 4) {
      s0 += w[b + i] * x[i]
      s1 += w[b + i + 1] * x[i + 1]
      s2 += w[b + i + 2] * x[i + 2]
      s3 += w[b + i + 3] * x[i + 3]
    }
    out[o] = s0 + s1 + (s2 + s3)
  }
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number, out: Float64Array): void {
  let ss = 0
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i]
  const inv = 1 / Math.sqrt(ss / x.length + eps)
  for (let i = 0; i < x.length; i++) out[i] = w[i] * (x[i] * inv)
}

/** The draft's KV cache: the tokens it holds and, per layer, keys and values by position. */
interface Cache {
  tokens: number[]
  k: Float32Array[]
  v: Float32Array[]
  capacity: number
}

/** Speculative decoding's model draft (see the file comment). */
export class ModelDraft implements Draft {
  readonly config: DraftConfig
  private readonly w: DraftWeights
  private cache: Cache
  // Scratch buffers, one token at a time.
  private readonly h: Float64Array
  private readonly xn: Float64Array
  private readonly q: Float64Array
  private readonly kRow: Float64Array
  private readonly vRow: Float64Array
  private readonly att: Float64Array
  private readonly proj: Float64Array
  private readonly g: Float64Array
  private readonly u: Float64Array
  private readonly invFreq: Float64Array
  private readonly logits: Float32Array
  private readonly logitsRow: Float64Array

  readonly name: string

  constructor(weights: DraftWeights) {
    const c = weights.config
    this.name = c.name
    this.config = c
    this.w = weights
    const kvd = c.numKvHeads * c.headDim
    this.h = new Float64Array(c.hiddenSize)
    this.xn = new Float64Array(c.hiddenSize)
    this.q = new Float64Array(c.numHeads * c.headDim)
    this.kRow = new Float64Array(kvd)
    this.vRow = new Float64Array(kvd)
    this.att = new Float64Array(c.numHeads * c.headDim)
    this.proj = new Float64Array(c.hiddenSize)
    this.g = new Float64Array(c.intermediateSize)
    this.u = new Float64Array(c.intermediateSize)
    this.invFreq = Float64Array.from(
      { length: c.headDim / 2 },
      (_, i) => 1 / c.ropeTheta ** ((2 * i) / c.headDim)
    )
    this.logits = new Float32Array(c.vocabSize)
    this.logitsRow = new Float64Array(c.vocabSize)
    this.cache = this.newCache(64)
  }

  private newCache(capacity: number): Cache {
    const kvd = this.config.numKvHeads * this.config.headDim
    return {
      tokens: [],
      k: this.w.layers.map(() => new Float32Array(capacity * kvd)),
      v: this.w.layers.map(() => new Float32Array(capacity * kvd)),
      capacity
    }
  }

  /** A draft of its own (own KV cache and scratch) on the same read-only weights: one per
   *  generation running at the same time. */
  fork(): ModelDraft {
    return new ModelDraft(this.w)
  }

  /** Tokens whose keys and values the draft's cache holds (for tests and logs). */
  get cachedTokens(): readonly number[] {
    return this.cache.tokens
  }

  private rope(x: Float64Array, heads: number, pos: number): void {
    const D = this.config.headDim
    const half = D / 2
    for (let i = 0; i < half; i++) {
      const ang = pos * this.invFreq[i]
      const c = Math.cos(ang)
      const s = Math.sin(ang)
      for (let hd = 0; hd < heads; hd++) {
        const b = hd * D
        const x1 = x[b + i]
        const x2 = x[b + i + half]
        x[b + i] = x1 * c - x2 * s
        x[b + i + half] = x2 * c + x1 * s
      }
    }
  }

  /** Appends `token` at the next position; with `wantLogits`, returns the next-token logits. */
  private step(token: number, wantLogits: boolean): Float32Array | null {
    const c = this.config
    if (!Number.isSafeInteger(token) || token < 0 || token >= c.vocabSize)
      throw new RangeError(
        `draft: token ${token} is outside the vocabulary (0..${c.vocabSize - 1})`
      )
    const H = c.hiddenSize
    const D = c.headDim
    const kvd = c.numKvHeads * D
    const group = c.numHeads / c.numKvHeads
    const pos = this.cache.tokens.length
    if (pos === this.cache.capacity) {
      const bigger = this.newCache(this.cache.capacity * 2)
      for (let l = 0; l < this.w.layers.length; l++) {
        bigger.k[l].set(this.cache.k[l])
        bigger.v[l].set(this.cache.v[l])
      }
      bigger.tokens = this.cache.tokens
      this.cache = bigger
    }
    const { h, xn, q, kRow, vRow, att, proj, g, u } = this
    for (let i = 0; i < H; i++) h[i] = this.w.embed[token * H + i]
    const scale = 1 / Math.sqrt(D)
    const scores = new Float64Array(pos + 1)
    for (let l = 0; l < this.w.layers.length; l++) {
      const w = this.w.layers[l]
      rmsNorm(h, w.inNorm, c.rmsNormEps, xn)
      matvec(w.q, xn, q, H)
      matvec(w.k, xn, kRow, H)
      matvec(w.v, xn, vRow, H)
      this.rope(q, c.numHeads, pos)
      this.rope(kRow, c.numKvHeads, pos)
      const K = this.cache.k[l]
      const V = this.cache.v[l]
      K.set(kRow, pos * kvd)
      V.set(vRow, pos * kvd)
      for (let hd = 0; hd < c.numHeads; hd++) {
        const kvOff = Math.floor(hd / group) * D
        const qOff = hd * D
        let max = -Infinity
        for (let t = 0; t <= pos; t++) {
          const b = t * kvd + kvOff
          let s = 0
          for (let i = 0; i < D; i++) s += q[qOff + i] * K[b + i]
          s *= scale
          scores[t] = s
          if (s > max) max = s
        }
        let sum = 0
        for (let t = 0; t <= pos; t++) {
          scores[t] = Math.exp(scores[t] - max)
          sum += scores[t]
        }
        for (let i = 0; i < D; i++) att[qOff + i] = 0
        for (let t = 0; t <= pos; t++) {
          const p = scores[t] / sum
          const b = t * kvd + kvOff
          for (let i = 0; i < D; i++) att[qOff + i] += p * V[b + i]
        }
      }
      matvec(w.o, att, proj, c.numHeads * D)
      for (let i = 0; i < H; i++) h[i] += proj[i]
      rmsNorm(h, w.postNorm, c.rmsNormEps, xn)
      matvec(w.gate, xn, g, H)
      matvec(w.up, xn, u, H)
      for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i]
      matvec(w.down, g, proj, c.intermediateSize)
      for (let i = 0; i < H; i++) h[i] += proj[i]
    }
    this.cache.tokens.push(token)
    if (!wantLogits) return null
    rmsNorm(h, this.w.norm, c.rmsNormEps, xn)
    matvec(this.w.lmHead, xn, this.logitsRow, H)
    this.logits.set(this.logitsRow)
    return this.logits
  }

  /** Next-token logits after `context` (reusing the cached common prefix). The returned array
   *  is the draft's scratch buffer: valid until the next call. */
  logitsAfter(context: readonly number[]): Float32Array {
    if (context.length === 0) throw new RangeError('draft: the context is empty')
    const held = this.cache.tokens
    let keep = 0
    const max = Math.min(held.length, context.length - 1)
    while (keep < max && held[keep] === context[keep]) keep++
    held.length = keep // roll back: keys/values past `keep` are overwritten as they are recomputed
    let logits: Float32Array | null = null
    for (let i = keep; i < context.length; i++)
      logits = this.step(context[i], i === context.length - 1)
    return logits!
  }

  propose(context: readonly number[], k: number, sampling: DraftSampling): Promise<DraftProposal> {
    try {
      return Promise.resolve(this.proposeNow(context, k, sampling))
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  /** propose(), synchronously: the forward is plain CPU work with nothing to wait for. */
  proposeNow(context: readonly number[], k: number, sampling: DraftSampling): DraftProposal {
    if (!Number.isSafeInteger(k) || k < 0)
      throw new RangeError(`draft: k must be a non-negative integer, got ${k}`)
    const tokens: number[] = []
    const q: Array<Float32Array | null> = []
    if (k === 0) return { tokens, q }
    const greedy = !(sampling.temperature > 0)
    let logits = this.logitsAfter(context)
    for (let i = 0; i < k; i++) {
      let id: number
      if (greedy) {
        id = argmax(logits)
        q.push(null)
      } else {
        const dist = tokenDistribution(logits, sampling)
        id = sampleFrom(dist, sampling.random)!
        q.push(Float32Array.from(dist))
      }
      tokens.push(id)
      if (i < k - 1) logits = this.step(id, true)!
    }
    return { tokens, q }
  }

  close(): Promise<void> {
    this.cache = this.newCache(1)
    return Promise.resolve()
  }
}

/** Loads the model draft in `dir` (config.json + model.safetensors, LlamaForCausalLM layout). */
export async function loadModelDraft(dir: string): Promise<ModelDraft> {
  return new ModelDraft(await readDraftWeights(dir))
}

/** Weights already read, by directory: a gateway opens a draft per request (each with its own KV
 *  cache) and they all share one read-only copy. Keyed by the files' sizes and mtimes too, so a
 *  draft replaced on disk is read again. */
const weightsCache = new Map<string, { key: string; weights: Promise<DraftWeights> }>()

async function sharedWeights(dir: string): Promise<DraftWeights> {
  let key = ''
  try {
    for (const f of (await readdir(dir)).sort()) {
      if (f !== 'config.json' && !f.endsWith('.safetensors') && !f.endsWith('.json')) continue
      const st = await stat(join(dir, f))
      key += `${f}:${st.size}:${st.mtimeMs};`
    }
  } catch (err) {
    throw new DraftError(`draft ${dir}: cannot list: ${(err as Error).message}`)
  }
  const hit = weightsCache.get(dir)
  if (hit?.key === key) return await hit.weights
  const weights = readDraftWeights(dir)
  weightsCache.set(dir, { key, weights })
  weights.catch(() => {
    if (weightsCache.get(dir)?.weights === weights) weightsCache.delete(dir)
  })
  return await weights
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}

export interface FindDraftOptions {
  /** The target's vocabulary size: a draft with another vocabulary is refused (DraftError). */
  vocabSize?: number
}

/** The model draft a bundle or HF model directory carries in `draft/`, or null when it has
 *  none. A draft that is there but broken is an error, not a silent fallback. */
export async function findDraft(
  bundleOrModelDir: string,
  opts: FindDraftOptions = {}
): Promise<ModelDraft | null> {
  const dir = resolve(bundleOrModelDir, DRAFT_DIR)
  if (!(await isDir(dir))) return null
  const draft = new ModelDraft(await sharedWeights(dir))
  if (opts.vocabSize != null && draft.config.vocabSize !== opts.vocabSize)
    throw new DraftError(
      `draft ${dir}: vocabulary of ${draft.config.vocabSize} tokens, the target has ${opts.vocabSize}: a draft must share the target's tokenizer`
    )
  return draft
}
