// The router's dense graphs: embeddings, one attention(+gate) graph per layer, final norm + LM head.
// Weights are stored in the checkpoint's own dtype (bf16/f16/f32) and Cast to fp32 in the graph;
// ORT folds the Cast at load, so compute is fp32 (TOOLCHAIN.md: "fp16/bf16 weights + Cast").
//
// Layer graph I/O (one sequence, no batch dimension; T new tokens, P cached, S = P + T):
//   in:  hidden [T, H] f32, position_ids [T] i64, attn_bias [T, S] f32 (0 = visible, -inf = masked),
//        past_k / past_v [kvHeads, P, headDim] f32 (P may be 0)
//   out: hidden_out [T, H] (residual + attention), moe_in [T, H] (post-attention RMSNorm),
//        router_logits [T, numExperts], present_k / present_v [kvHeads, S, headDim]
// The mask comes in as a bias so that the caller owns the cache layout (causal + sliding window
// are computed from the cached key positions; see runtime.ts).
import type { MixtralConfig } from '../config.js'
import { DT, GraphBuilder, type DataType } from './graph.js'

/** A weight as stored in the checkpoint. */
export interface RawWeight {
  dtype: 'BF16' | 'F16' | 'F32'
  shape: number[]
  bytes: Uint8Array
}

const ONNX_TYPE: Record<RawWeight['dtype'], DataType> = {
  BF16: DT.BFLOAT16,
  F16: DT.FLOAT16,
  F32: DT.FLOAT
}

/** Adds the weight as an initializer and returns the name of its fp32 view. */
function weight(g: GraphBuilder, name: string, w: RawWeight): string {
  g.initializer(name, ONNX_TYPE[w.dtype], w.shape, w.bytes)
  return w.dtype === 'F32' ? name : g.o('Cast', [name], { to: DT.FLOAT })
}

function rmsNorm(g: GraphBuilder, x: string, w: string, eps: number, out?: string): string {
  const sq = g.o('Mul', [x, x])
  const ms = g.o('ReduceMean', [sq, g.constInt64([-1])], { keepdims: 1 })
  const rs = g.o('Sqrt', [g.o('Add', [ms, g.constFloat([eps], [])])])
  return g.o('Mul', [g.o('Div', [x, rs]), w], {}, out)
}

function linear(g: GraphBuilder, x: string, w: string, out?: string): string {
  return g.o('Gemm', [x, w], { transB: 1 }, out)
}

/** HF rotate_half RoPE: x·cos + cat(-x2, x1)·sin, x [heads, T, D], cos/sin [T, D]. */
function rope(g: GraphBuilder, x: string, cos: string, sin: string, half: number): string {
  const [x1, x2] = g.op('Split', [x, g.constInt64([half, half])], { axis: -1 }, 2)
  const rot = g.o('Concat', [g.o('Neg', [x2]), x1], { axis: -1 })
  return g.o('Add', [g.o('Mul', [x, cos]), g.o('Mul', [rot, sin])])
}

export function buildEmbedGraph(c: MixtralConfig, embed: RawWeight): Uint8Array {
  const g = new GraphBuilder('pov_dense_embed')
  const ids = g.input('input_ids', DT.INT64, ['T'])
  const w = ONNX_TYPE[embed.dtype]
  g.initializer('embed_tokens', w, embed.shape, embed.bytes)
  // Gather first, then Cast the T rows: the table itself stays in its stored dtype.
  const rows = g.o('Gather', ['embed_tokens', ids], { axis: 0 })
  if (w === DT.FLOAT) g.o('Identity', [rows], {}, 'hidden')
  else g.o('Cast', [rows], { to: DT.FLOAT }, 'hidden')
  g.output('hidden', DT.FLOAT, ['T', c.hiddenSize])
  return g.encode()
}

export interface LayerWeightsRaw {
  inputNorm: RawWeight
  q: RawWeight
  k: RawWeight
  v: RawWeight
  o: RawWeight
  postNorm: RawWeight
  gate: RawWeight
}

export function buildLayerGraph(c: MixtralConfig, layer: number, w: LayerWeightsRaw): Uint8Array {
  const g = new GraphBuilder(`pov_dense_layer_${layer}`)
  const H = c.hiddenSize
  const D = c.headDim
  const Nq = c.numHeads
  const Nkv = c.numKvHeads
  if (D % 2 !== 0) throw new Error(`head_dim ${D} must be even for RoPE`)
  const half = D / 2
  const hidden = g.input('hidden', DT.FLOAT, ['T', H])
  const pos = g.input('position_ids', DT.INT64, ['T'])
  const bias = g.input('attn_bias', DT.FLOAT, ['T', 'S'])
  const pastK = g.input('past_k', DT.FLOAT, [Nkv, 'P', D])
  const pastV = g.input('past_v', DT.FLOAT, [Nkv, 'P', D])

  const xn = rmsNorm(g, hidden, weight(g, 'input_layernorm', w.inputNorm), c.rmsNormEps)
  const heads = (x: string, n: number): string =>
    g.o('Transpose', [g.o('Reshape', [x, g.constInt64([-1, n, D])])], { perm: [1, 0, 2] })
  const q = heads(linear(g, xn, weight(g, 'q_proj', w.q)), Nq)
  const k = heads(linear(g, xn, weight(g, 'k_proj', w.k)), Nkv)
  const v = heads(linear(g, xn, weight(g, 'v_proj', w.v)), Nkv)

  // cos/sin [T, D] from the position ids, inv_freq as transformers computes it.
  const invFreq = Array.from({ length: half }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / D))
  const posF = g.o('Unsqueeze', [g.o('Cast', [pos], { to: DT.FLOAT }), g.constInt64([1])])
  const freqs = g.o('Mul', [posF, g.constFloat(invFreq, [1, half])])
  const emb = g.o('Concat', [freqs, freqs], { axis: -1 })
  const cos = g.o('Cos', [emb])
  const sin = g.o('Sin', [emb])
  const qr = rope(g, q, cos, sin, half)
  const kr = rope(g, k, cos, sin, half)

  const presentK = g.o('Concat', [pastK, kr], { axis: 1 }, 'present_k')
  const presentV = g.o('Concat', [pastV, v], { axis: 1 }, 'present_v')

  // GQA without repeat_kv: query head h uses kv head floor(h / group), so [Nq, T, D] viewed as
  // [Nkv, group·T, D] lines every query row up with its kv head.
  const qs = g.o('Reshape', [
    g.o('Mul', [qr, g.constFloat([1 / Math.sqrt(D)], [])]),
    g.constInt64([Nkv, -1, D])
  ])
  const scores = g.o('MatMul', [qs, g.o('Transpose', [presentK], { perm: [0, 2, 1] })])
  const masked = g.o('Add', [g.o('Reshape', [scores, g.constInt64([Nq, -1, 0])]), bias])
  const probs = g.o('Reshape', [g.o('Softmax', [masked], { axis: -1 }), g.constInt64([Nkv, -1, 0])])
  const ctx = g.o('Reshape', [g.o('MatMul', [probs, presentV]), g.constInt64([Nq, -1, D])])
  const merged = g.o('Reshape', [
    g.o('Transpose', [ctx], { perm: [1, 0, 2] }),
    g.constInt64([0, -1])
  ])
  const attnOut = linear(g, merged, weight(g, 'o_proj', w.o))
  const h1 = g.o('Add', [hidden, attnOut], {}, 'hidden_out')

  const moeIn = rmsNorm(
    g,
    h1,
    weight(g, 'post_attention_layernorm', w.postNorm),
    c.rmsNormEps,
    'moe_in'
  )
  linear(g, moeIn, weight(g, 'gate', w.gate), 'router_logits')

  g.output('hidden_out', DT.FLOAT, ['T', H])
  g.output('moe_in', DT.FLOAT, ['T', H])
  g.output('router_logits', DT.FLOAT, ['T', c.numExperts])
  g.output('present_k', DT.FLOAT, [Nkv, 'S', D])
  g.output('present_v', DT.FLOAT, [Nkv, 'S', D])
  return g.encode()
}

export function buildHeadGraph(c: MixtralConfig, norm: RawWeight, lmHead: RawWeight): Uint8Array {
  const g = new GraphBuilder('pov_dense_head')
  const hidden = g.input('hidden', DT.FLOAT, ['T', c.hiddenSize])
  const hn = rmsNorm(g, hidden, weight(g, 'norm', norm), c.rmsNormEps)
  linear(g, hn, weight(g, 'lm_head', lmHead), 'logits')
  g.output('logits', DT.FLOAT, ['T', c.vocabSize])
  return g.encode()
}
