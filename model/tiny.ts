// A tiny random Mixtral checkpoint in the exact Hugging Face layout (config.json, safetensors
// with the real tensor names, optional sharding + index, tokenizer.json), for tests and demos.
// Deterministic: every tensor is drawn from its own PRNG stream seeded by (seed, tensor name),
// so values do not depend on dtype, sharding, or the order tensors are written in.
//
// Scales (why not HF's normal*0.02 everywhere): with 0.02 the experts and attention add almost
// nothing to the residual stream and top-1/top-2 logits nearly tie (see "Near-ties" in
// docs/architecture.md). Here each projection uses std 1/sqrt(fan_in) so every block contributes O(1), the
// gate uses 2/sqrt(D) (gate logits std ~2: clear top-k choices), lm_head 4/sqrt(D) (logit std ~4).
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { parseMixtralConfig, toHfConfigJson, type MixtralConfig } from './config.js'
import {
  encodeSafetensors,
  INDEX_FILE,
  SINGLE_FILE,
  type SafeDtype,
  type TensorToWrite
} from './safetensors.js'
import { buildTinyTokenizerJson } from './tokenizer.js'

export interface TinyOptions {
  seed?: number
  layers?: number
  hidden?: number
  intermediate?: number
  experts?: number
  topK?: number
  heads?: number
  kvHeads?: number
  vocab?: number
  dtype?: 'bf16' | 'f16' | 'f32'
  /** >1 writes model-0000k-of-0000n.safetensors + model.safetensors.index.json */
  shards?: number
  slidingWindow?: number | null
}

export const tinyDefaults = {
  seed: 0,
  layers: 2,
  hidden: 64,
  intermediate: 128,
  experts: 8,
  topK: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 512,
  dtype: 'f32',
  shards: 1,
  slidingWindow: null
} as const satisfies Required<TinyOptions>

const DTYPES: Record<string, SafeDtype> = { bf16: 'BF16', f16: 'F16', f32: 'F32' }

/** The MixtralConfig a tiny checkpoint with these options has. */
export function tinyConfig(opts: TinyOptions = {}): MixtralConfig {
  const o = { ...tinyDefaults, ...opts }
  const headDim = Math.floor(o.hidden / o.heads)
  return parseMixtralConfig(
    toHfConfigJson({
      hiddenSize: o.hidden,
      intermediateSize: o.intermediate,
      numLayers: o.layers,
      numHeads: o.heads,
      numKvHeads: o.kvHeads,
      headDim,
      numExperts: o.experts,
      topK: o.topK,
      vocabSize: o.vocab,
      rmsNormEps: 1e-5,
      ropeTheta: 1e6,
      slidingWindow: o.slidingWindow,
      maxPositionEmbeddings: 4096,
      bosTokenId: 1,
      eosTokenId: 2,
      tieWordEmbeddings: false,
      torchDtype: { bf16: 'bfloat16', f16: 'float16', f32: 'float32' }[o.dtype]
    })
  )
}

/** xoshiro128** seeded from sha256(seed, name); normals by Box-Muller. */
class Rng {
  private s: Uint32Array
  constructor(seed: number, name: string) {
    const h = createHash('sha256').update(`${seed}:${name}`).digest()
    this.s = new Uint32Array([
      h.readUInt32LE(0),
      h.readUInt32LE(4),
      h.readUInt32LE(8),
      h.readUInt32LE(12) | 1
    ])
  }

  next(): number {
    const s = this.s
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0
    const t = s[1] << 9
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 11)
    return (r + 0.5) / 4294967296
  }

  normals(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n)
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(this.next()))
      const th = 2 * Math.PI * this.next()
      out[i] = mean + std * r * Math.cos(th)
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(th)
    }
    return out
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

/** Every tensor of the tiny model, in HF order, with its values. */
export function tinyTensors(c: MixtralConfig, seed: number): TensorToWrite[] {
  const D = c.hiddenSize
  const F = c.intermediateSize
  const qDim = c.numHeads * c.headDim
  const kvDim = c.numKvHeads * c.headDim
  const out: TensorToWrite[] = []
  const t = (name: string, shape: number[], std: number, mean = 0): void => {
    out.push({
      name,
      shape,
      data: new Rng(seed, name).normals(
        shape.reduce((a, b) => a * b, 1),
        std,
        mean
      )
    })
  }
  t('model.embed_tokens.weight', [c.vocabSize, D], 1)
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`
    t(`${p}.input_layernorm.weight`, [D], 0.1, 1)
    t(`${p}.self_attn.q_proj.weight`, [qDim, D], 1 / Math.sqrt(D))
    t(`${p}.self_attn.k_proj.weight`, [kvDim, D], 1 / Math.sqrt(D))
    t(`${p}.self_attn.v_proj.weight`, [kvDim, D], 1 / Math.sqrt(D))
    t(`${p}.self_attn.o_proj.weight`, [D, qDim], 1 / Math.sqrt(qDim))
    t(`${p}.post_attention_layernorm.weight`, [D], 0.1, 1)
    t(`${p}.block_sparse_moe.gate.weight`, [c.numExperts, D], 2 / Math.sqrt(D))
    for (let j = 0; j < c.numExperts; j++) {
      const e = `${p}.block_sparse_moe.experts.${j}`
      t(`${e}.w1.weight`, [F, D], 1 / Math.sqrt(D))
      t(`${e}.w2.weight`, [D, F], 1 / Math.sqrt(F))
      t(`${e}.w3.weight`, [F, D], 1 / Math.sqrt(D))
    }
  }
  t('model.norm.weight', [D], 0.1, 1)
  if (!c.tieWordEmbeddings) t('lm_head.weight', [c.vocabSize, D], 4 / Math.sqrt(D))
  return out
}

/** Writes a tiny random MixtralForCausalLM checkpoint into `dir` (created if needed). */
export async function writeTinyCheckpoint(dir: string, opts: TinyOptions = {}): Promise<void> {
  const o = { ...tinyDefaults, ...opts }
  const dtype = DTYPES[o.dtype]
  if (dtype == null) throw new Error(`unknown dtype "${o.dtype}" (bf16|f16|f32)`)
  if (!Number.isSafeInteger(o.shards) || o.shards < 1)
    throw new Error(`shards must be a positive integer, got ${o.shards}`)
  const config = tinyConfig(o)
  const tensors = tinyTensors(config, o.seed)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'config.json'), JSON.stringify(toHfConfigJson(config), null, 2) + '\n')
  const { tokenizer, config: tokCfg } = buildTinyTokenizerJson(config.vocabSize)
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer))
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokCfg, null, 2) + '\n')
  await writeFile(
    join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId }, null, 2) +
      '\n'
  )
  if (o.shards === 1) {
    await writeFile(join(dir, SINGLE_FILE), encodeSafetensors(tensors, dtype))
    return
  }
  const n = Math.min(o.shards, tensors.length)
  const per = Math.ceil(tensors.length / n)
  const weightMap: Record<string, string> = {}
  let total = 0
  for (let k = 0; k < n; k++) {
    const part = tensors.slice(k * per, (k + 1) * per)
    const file = `model-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`
    const bytes = encodeSafetensors(part, dtype)
    await writeFile(join(dir, file), bytes)
    for (const t of part) {
      weightMap[t.name] = file
      total += t.data.length * (dtype === 'F32' ? 4 : 2)
    }
  }
  await writeFile(
    join(dir, INDEX_FILE),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n'
  )
}
