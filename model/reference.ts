// A plain float64 TypeScript forward pass of MixtralForCausalLM — no ORT, no KV cache. Used only
// by tests, as the ground truth the ONNX dense graphs + experts are compared against. It follows
// transformers' modeling_mixtral: RMSNorm, RoPE (rotate_half), GQA (repeat_kv), causal +
// sliding-window mask (key k visible from query q iff q - W < k <= q), SwiGLU experts, routing =
// softmax over the gate logits, top-k, renormalise the k weights (MixtralSparseMoeBlock).
import { readMixtralConfig, type MixtralConfig } from './config.js'
import { CheckpointReader } from './safetensors.js'
import type { ExpertExecutor } from './experts.js'
import { topMargin } from './sampling.js'

interface LayerWeights {
  inNorm: Float64Array
  q: Float64Array
  k: Float64Array
  v: Float64Array
  o: Float64Array
  postNorm: Float64Array
  gate: Float64Array
  experts: Array<{ w1: Float64Array; w2: Float64Array; w3: Float64Array }>
}

export interface ReferenceModel {
  config: MixtralConfig
  embed: Float64Array
  layers: LayerWeights[]
  norm: Float64Array
  lmHead: Float64Array
}

export interface ReferenceOptions {
  /** (layer, expert) pairs treated as unavailable: their tokens go to the next-best experts, and
   *  the weights are renormalised over the experts actually used (as model/generate.ts does). */
  excluded?: Array<{ layer: number; expert: number }>
}

export interface ReferenceResult {
  /** T × vocab logits, row-major. */
  logits: Float64Array
  /** Smallest gap, over all layers and positions, between the k-th and (k+1)-th largest gate
   *  probability among the available experts (Infinity when every available expert is used). A
   *  gap below the numeric tolerance means a different but correct implementation may route
   *  differently. */
  minGateGap: number
}

export async function loadReferenceModel(dir: string): Promise<ReferenceModel> {
  const config = await readMixtralConfig(dir)
  const r = await CheckpointReader.open(dir)
  try {
    const c = config
    const H = c.hiddenSize
    const qd = c.numHeads * c.headDim
    const kvd = c.numKvHeads * c.headDim
    const read = async (name: string, shape: number[]): Promise<Float64Array> =>
      Float64Array.from(await r.readFloat32(name, shape))
    const layers: LayerWeights[] = []
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`
      const experts = []
      for (let e = 0; e < c.numExperts; e++) {
        const ep = `${p}block_sparse_moe.experts.${e}.`
        experts.push({
          w1: await read(`${ep}w1.weight`, [c.intermediateSize, H]),
          w2: await read(`${ep}w2.weight`, [H, c.intermediateSize]),
          w3: await read(`${ep}w3.weight`, [c.intermediateSize, H])
        })
      }
      layers.push({
        inNorm: await read(`${p}input_layernorm.weight`, [H]),
        q: await read(`${p}self_attn.q_proj.weight`, [qd, H]),
        k: await read(`${p}self_attn.k_proj.weight`, [kvd, H]),
        v: await read(`${p}self_attn.v_proj.weight`, [kvd, H]),
        o: await read(`${p}self_attn.o_proj.weight`, [H, qd]),
        postNorm: await read(`${p}post_attention_layernorm.weight`, [H]),
        gate: await read(`${p}block_sparse_moe.gate.weight`, [c.numExperts, H]),
        experts
      })
    }
    const embed = await read('model.embed_tokens.weight', [c.vocabSize, H])
    const lmHead =
      c.tieWordEmbeddings && !r.has('lm_head.weight')
        ? embed
        : await read('lm_head.weight', [c.vocabSize, H])
    return { config, embed, layers, norm: await read('model.norm.weight', [H]), lmHead }
  } finally {
    await r.close()
  }
}

/** y[t, o] = Σ_i x[t, i] · W[o, i] (W row-major [out, in], as nn.Linear stores it). */
function linear(
  x: Float64Array,
  rows: number,
  w: Float64Array,
  inDim: number,
  outDim: number
): Float64Array {
  const y = new Float64Array(rows * outDim)
  for (let t = 0; t < rows; t++) {
    const xo = t * inDim
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim
      let s = 0
      for (let i = 0; i < inDim; i++) s += x[xo + i] * w[wo + i]
      y[t * outDim + o] = s
    }
  }
  return y
}

function rmsNorm(
  x: Float64Array,
  rows: number,
  dim: number,
  w: Float64Array,
  eps: number
): Float64Array {
  const y = new Float64Array(rows * dim)
  for (let t = 0; t < rows; t++) {
    let ss = 0
    for (let i = 0; i < dim; i++) ss += x[t * dim + i] ** 2
    const inv = 1 / Math.sqrt(ss / dim + eps)
    for (let i = 0; i < dim; i++) y[t * dim + i] = w[i] * x[t * dim + i] * inv
  }
  return y
}

/** In place, heads laid out [T, heads, D]; HF rotate_half: cat(-x2, x1). */
function rope(
  x: Float64Array,
  rows: number,
  heads: number,
  D: number,
  positions: number[],
  theta: number
): void {
  const half = D / 2
  for (let t = 0; t < rows; t++) {
    for (let i = 0; i < half; i++) {
      const ang = positions[t] / theta ** ((2 * i) / D)
      const c = Math.cos(ang)
      const s = Math.sin(ang)
      for (let h = 0; h < heads; h++) {
        const b = (t * heads + h) * D
        const x1 = x[b + i]
        const x2 = x[b + i + half]
        x[b + i] = x1 * c - x2 * s
        x[b + i + half] = x2 * c + x1 * s
      }
    }
  }
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v))
}

/** Indices sorted by descending value (ties: lower index first, deterministic). */
export function rankDescending(v: ArrayLike<number>): number[] {
  return Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[b] - v[a] || a - b)
}

/** Full-sequence forward pass; positions 0..T-1. */
export function referenceForward(
  m: ReferenceModel,
  ids: number[],
  opts: ReferenceOptions = {}
): ReferenceResult {
  const c = m.config
  const T = ids.length
  const H = c.hiddenSize
  const D = c.headDim
  const Nq = c.numHeads
  const Nkv = c.numKvHeads
  const group = Nq / Nkv
  const I = c.intermediateSize
  const positions = ids.map((_, i) => i)
  const excluded = new Set((opts.excluded ?? []).map(({ layer, expert }) => `${layer}:${expert}`))
  let minGateGap = Infinity

  const h = new Float64Array(T * H)
  ids.forEach((id, t) => {
    h.set(m.embed.subarray(id * H, (id + 1) * H), t * H)
  })

  for (let L = 0; L < c.numLayers; L++) {
    const w = m.layers[L]
    const xn = rmsNorm(h, T, H, w.inNorm, c.rmsNormEps)
    const q = linear(xn, T, w.q, H, Nq * D)
    const k = linear(xn, T, w.k, H, Nkv * D)
    const v = linear(xn, T, w.v, H, Nkv * D)
    rope(q, T, Nq, D, positions, c.ropeTheta)
    rope(k, T, Nkv, D, positions, c.ropeTheta)
    const attn = new Float64Array(T * Nq * D)
    const scale = 1 / Math.sqrt(D)
    const scores = new Float64Array(T)
    for (let hd = 0; hd < Nq; hd++) {
      const kv = Math.floor(hd / group)
      for (let t = 0; t < T; t++) {
        let max = -Infinity
        for (let s = 0; s < T; s++) {
          const visible = s <= t && (c.slidingWindow == null || t - s < c.slidingWindow)
          if (!visible) {
            scores[s] = -Infinity
            continue
          }
          let dot = 0
          for (let d = 0; d < D; d++) dot += q[(t * Nq + hd) * D + d] * k[(s * Nkv + kv) * D + d]
          scores[s] = dot * scale
          if (scores[s] > max) max = scores[s]
        }
        let sum = 0
        for (let s = 0; s < T; s++) {
          scores[s] = Math.exp(scores[s] - max)
          sum += scores[s]
        }
        for (let s = 0; s < T; s++) {
          const p = scores[s] / sum
          if (p === 0) continue
          for (let d = 0; d < D; d++) attn[(t * Nq + hd) * D + d] += p * v[(s * Nkv + kv) * D + d]
        }
      }
    }
    const o = linear(attn, T, w.o, Nq * D, H)
    for (let i = 0; i < h.length; i++) h[i] += o[i]

    const xm = rmsNorm(h, T, H, w.postNorm, c.rmsNormEps)
    const gl = linear(xm, T, w.gate, H, c.numExperts)
    for (let t = 0; t < T; t++) {
      const logits = gl.subarray(t * c.numExperts, (t + 1) * c.numExperts)
      const probs = softmax64(logits)
      const ranked = rankDescending(probs).filter((e) => !excluded.has(`${L}:${e}`))
      if (ranked.length === 0) throw new Error(`reference: every expert of layer ${L} is excluded`)
      const used = ranked.slice(0, c.topK)
      if (ranked.length > c.topK)
        minGateGap = Math.min(minGateGap, probs[ranked[c.topK - 1]] - probs[ranked[c.topK]])
      let norm = 0
      for (const e of used) norm += probs[e]
      const x = xm.subarray(t * H, (t + 1) * H)
      for (const e of used) {
        const ex = w.experts[e]
        const a = linear(x, 1, ex.w1, H, I)
        const b = linear(x, 1, ex.w3, H, I)
        for (let i = 0; i < I; i++) a[i] = silu(a[i]) * b[i]
        const y = linear(a, 1, ex.w2, I, H)
        const g = probs[e] / norm
        for (let i = 0; i < H; i++) h[t * H + i] += g * y[i]
      }
    }
  }
  const hn = rmsNorm(h, T, H, m.norm, c.rmsNormEps)
  return { logits: linear(hn, T, m.lmHead, H, c.vocabSize), minGateGap }
}

export function softmax64(x: ArrayLike<number>): Float64Array {
  let max = -Infinity
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i]
  const y = new Float64Array(x.length)
  let sum = 0
  for (let i = 0; i < x.length; i++) {
    y[i] = Math.exp(x[i] - max)
    sum += y[i]
  }
  for (let i = 0; i < x.length; i++) y[i] /= sum
  return y
}

export interface ReferenceStep {
  id: number
  /** Logits of the last position (vocab). */
  logits: Float64Array
  /** Top-1 minus top-2 logit. */
  margin: number
  /** See ReferenceResult.minGateGap (over the whole sequence of this step). */
  minGateGap: number
}

/** Greedy generation, recomputing the whole sequence every step (fine for tiny models). Stops
 *  after `maxTokens` or at `eosTokenId` (included in the output). */
export function referenceGreedy(
  m: ReferenceModel,
  promptIds: number[],
  maxTokens: number,
  opts: ReferenceOptions & { eosTokenId?: number | null } = {}
): ReferenceStep[] {
  const V = m.config.vocabSize
  const seq = [...promptIds]
  const steps: ReferenceStep[] = []
  for (let n = 0; n < maxTokens; n++) {
    const { logits: all, minGateGap } = referenceForward(m, seq, opts)
    const logits = all.slice((seq.length - 1) * V, seq.length * V)
    const id = rankDescending(logits)[0]
    steps.push({ id, logits, margin: topMargin(logits), minGateGap })
    seq.push(id)
    if (opts.eosTokenId != null && id === opts.eosTokenId) break
  }
  return steps
}

/** An ExpertExecutor computing experts in float64 from the reference weights (result in fp32):
 *  lets the dense runtime + generate loop be tested independently of the expert runtime. */
export function referenceExpertExecutor(m: ReferenceModel): ExpertExecutor {
  const H = m.config.hiddenSize
  const I = m.config.intermediateSize
  return {
    async runExpert(layer, expert, x, rows) {
      const ex = m.layers[layer].experts[expert]
      const xd = Float64Array.from(x)
      const a = linear(xd, rows, ex.w1, H, I)
      const b = linear(xd, rows, ex.w3, H, I)
      for (let i = 0; i < a.length; i++) a[i] = silu(a[i]) * b[i]
      return Float32Array.from(linear(a, rows, ex.w2, I, H))
    }
  }
}
