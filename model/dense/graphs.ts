// The router's dense graphs: embeddings, one attention(+gate) graph per layer, final norm + LM head.
// Weights are stored in the checkpoint's own dtype (bf16/f16/f32) and Cast to fp32 in the graph;
// ORT folds the Cast at load, so compute is fp32 (docs/toolchain.md).
//
// Layer graph I/O (one sequence, no batch dimension; T new tokens, P cached, S = P + T):
//   in:  hidden [T, H] f32, position_ids [T] i64, attn_bias [T, S] f32 (0 = visible, -inf = masked),
//        past_k / past_v [kvHeads, P, headDim] f32 (P may be 0)
//   out: hidden_out [T, H] (residual + attention), moe_in [T, H] (post-attention RMSNorm),
//        router_logits [T, numExperts], present_k / present_v [kvHeads, S, headDim]
// The mask comes in as a bias so that the caller owns the cache layout (causal + sliding window
// are computed from the cached key positions; see runtime.ts).
import type { MixtralConfig } from '../config.js'
import { DT, GraphBuilder, ONNX_TYPE_OF } from '../onnx/builder.js'

/** ReduceMean takes its axes as an input (not an attribute) from opset 18 on. */
export const DENSE_OPSET = 18

/** A weight as stored in the checkpoint. */
export interface RawWeight {
  dtype: 'BF16' | 'F16' | 'F32'
  shape: number[]
  bytes: Uint8Array
}

/** Adds the weight as an initializer and returns the name of its fp32 view. */
function weight(g: GraphBuilder, name: string, w: RawWeight): string {
  g.initializer(name, ONNX_TYPE_OF[w.dtype], w.shape, w.bytes)
  return w.dtype === 'F32' ? name : g.op('Cast', [name], { to: DT.FLOAT })
}

function rmsNorm(g: GraphBuilder, x: string, w: string, eps: number, out?: string): string {
  const sq = g.op('Mul', [x, x])
  const ms = g.op('ReduceMean', [sq, g.constInt64('ci', [-1])], { keepdims: 1 })
  const rs = g.op('Sqrt', [g.op('Add', [ms, g.constFloat('cf', [eps], [])])])
  return g.op('Mul', [g.op('Div', [x, rs]), w], {}, { output: out })
}

function linear(g: GraphBuilder, x: string, w: string, out?: string): string {
  return g.op('Gemm', [x, w], { transB: 1 }, { output: out })
}

/** HF rotate_half RoPE: x·cos + cat(-x2, x1)·sin, x [heads, T, D], cos/sin [T, D]. */
function rope(g: GraphBuilder, x: string, cos: string, sin: string, half: number): string {
  const [x1, x2] = g.node(
    'Split',
    [x, g.constInt64('ci', [half, half])],
    { axis: -1 },
    { numOutputs: 2 }
  )
  const rot = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 })
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rot, sin])])
}

export function buildEmbedGraph(c: MixtralConfig, embed: RawWeight): Uint8Array {
  const g = new GraphBuilder('pov_dense_embed', { opset: DENSE_OPSET })
  const ids = g.input('input_ids', DT.INT64, ['T'])
  const w = ONNX_TYPE_OF[embed.dtype]
  g.initializer('embed_tokens', w, embed.shape, embed.bytes)
  // Gather first, then Cast the T rows: the table itself stays in its stored dtype.
  const rows = g.op('Gather', ['embed_tokens', ids], { axis: 0 })
  if (w === DT.FLOAT) g.op('Identity', [rows], {}, { output: 'hidden' })
  else g.op('Cast', [rows], { to: DT.FLOAT }, { output: 'hidden' })
  g.output('hidden', DT.FLOAT, ['T', c.hiddenSize])
  return g.toModel()
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
  const g = new GraphBuilder(`pov_dense_layer_${layer}`, { opset: DENSE_OPSET })
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
    g.op('Transpose', [g.op('Reshape', [x, g.constInt64('ci', [-1, n, D])])], { perm: [1, 0, 2] })
  const q = heads(linear(g, xn, weight(g, 'q_proj', w.q)), Nq)
  const k = heads(linear(g, xn, weight(g, 'k_proj', w.k)), Nkv)
  const v = heads(linear(g, xn, weight(g, 'v_proj', w.v)), Nkv)

  // cos/sin [T, D] from the position ids, inv_freq as transformers computes it.
  const invFreq = Array.from({ length: half }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / D))
  const posF = g.op('Unsqueeze', [g.op('Cast', [pos], { to: DT.FLOAT }), g.constInt64('ci', [1])])
  const freqs = g.op('Mul', [posF, g.constFloat('inv_freq', invFreq, [1, half])])
  const emb = g.op('Concat', [freqs, freqs], { axis: -1 })
  const cos = g.op('Cos', [emb])
  const sin = g.op('Sin', [emb])
  const qr = rope(g, q, cos, sin, half)
  const kr = rope(g, k, cos, sin, half)

  const presentK = g.op('Concat', [pastK, kr], { axis: 1 }, { output: 'present_k' })
  const presentV = g.op('Concat', [pastV, v], { axis: 1 }, { output: 'present_v' })

  // GQA without repeat_kv: query head h uses kv head floor(h / group), so [Nq, T, D] viewed as
  // [Nkv, group·T, D] lines every query row up with its kv head.
  const qs = g.op('Reshape', [
    g.op('Mul', [qr, g.constFloat('cf', [1 / Math.sqrt(D)], [])]),
    g.constInt64('ci', [Nkv, -1, D])
  ])
  const scores = g.op('MatMul', [qs, g.op('Transpose', [presentK], { perm: [0, 2, 1] })])
  const masked = g.op('Add', [g.op('Reshape', [scores, g.constInt64('ci', [Nq, -1, 0])]), bias])
  const probs = g.op('Reshape', [
    g.op('Softmax', [masked], { axis: -1 }),
    g.constInt64('ci', [Nkv, -1, 0])
  ])
  const ctx = g.op('Reshape', [g.op('MatMul', [probs, presentV]), g.constInt64('ci', [Nq, -1, D])])
  const merged = g.op('Reshape', [
    g.op('Transpose', [ctx], { perm: [1, 0, 2] }),
    g.constInt64('ci', [0, -1])
  ])
  const attnOut = linear(g, merged, weight(g, 'o_proj', w.o))
  const h1 = g.op('Add', [hidden, attnOut], {}, { output: 'hidden_out' })

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
  return g.toModel()
}

export function buildHeadGraph(c: MixtralConfig, norm: RawWeight, lmHead: RawWeight): Uint8Array {
  const g = new GraphBuilder('pov_dense_head', { opset: DENSE_OPSET })
  const hidden = g.input('hidden', DT.FLOAT, ['T', c.hiddenSize])
  const hn = rmsNorm(g, hidden, weight(g, 'norm', norm), c.rmsNormEps)
  linear(g, hn, weight(g, 'lm_head', lmHead), 'logits')
  g.output('logits', DT.FLOAT, ['T', c.vocabSize])
  return g.toModel()
}
