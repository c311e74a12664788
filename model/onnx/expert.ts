// The expert FFN as an ONNX graph: y = w2(silu(w1 x) * w3 x); x [rows, hidden] fp32 → y fp32.
// Weights are PyTorch Linear layouts: w1, w3 [inter, hidden]; w2 [hidden, inter].
//  - quant 'none': the weights stay in their checkpoint dtype as external data (zero copy);
//    bf16/f16 get a Cast to fp32, which ORT constant-folds at session creation (so compute is
//    fp32 and memory is fp32 — ORT has no bf16 GEMM on CPU). Gemm(transB=1) uses W as stored.
//  - 'int8': DynamicQuantizeMatMul (activations quantised per call, weights per column).
//  - 'int4': MatMulNBits, 4-bit blocks (INT4_BLOCKS), accuracy_level 4 (int8 activations); the
//    packed weights are external data in a file beside the graph (int4ExpertData), each tensor at
//    a page-aligned offset: ORT maps that file, prepacks B from the mapping and drops it, so B is
//    resident once (the prepacked copy) instead of twice (docs/quality.md, the edge case).
import { DT, GraphBuilder, MS_DOMAIN, type DataType, type ExternalRef } from './builder.js'
import { quantizeInt4Blocks, quantizeInt8PerColumn } from './quant.js'

export type Quant = 'none' | 'int8' | 'int4'

export interface ExpertDims {
  hidden: number
  inter: number
}

/** A weight for the 'none' graph: external bytes in `dtype`, or inline fp32 values. */
export type WeightSource =
  { dtype: DataType; ref: ExternalRef } | { dtype: typeof DT.FLOAT; data: Float32Array }

export const EXPERT_INPUT = 'x'
export const EXPERT_OUTPUT = 'y'
/**
 * MatMulNBits block size. 128 (GPTQ's and AWQ's usual group size): the only one of INT4_BLOCKS
 * that fits a Mixtral 8x7B shard in 4 GB, the fastest at every batch, +0.1 % perplexity over 32
 * on tiny-en (docs/quality.md, the edge case). A bundle's block is part of its model id.
 */
export const INT4_BLOCK = 128
/** The block sizes `pov model convert --int4-block` offers (larger: fewer scale bytes per weight). */
export const INT4_BLOCKS = [32, 64, 128] as const
export type Int4Block = (typeof INT4_BLOCKS)[number]
/** External data sections start on this boundary, so each tensor maps onto whole pages. */
export const INT4_DATA_ALIGN = 4096
/** accuracy_level 4 = int8 compute for the activations: several times faster on CPU than fp32. */
export const INT4_ACCURACY_LEVEL = 4

function weightFp32(g: GraphBuilder, name: string, dims: number[], w: WeightSource): string {
  if ('data' in w) return g.initializer(name, DT.FLOAT, dims, w.data)
  const raw = g.externalInitializer(
    w.dtype === DT.FLOAT ? name : `${name}_${DT[w.dtype].toLowerCase()}`,
    w.dtype,
    dims,
    w.ref
  )
  return w.dtype === DT.FLOAT ? raw : g.cast(raw, DT.FLOAT, `${name}_f32`)
}

/** fp32/f16/bf16 expert graph (quant 'none'). */
export function buildExpertModel(
  d: ExpertDims,
  w: { w1: WeightSource; w2: WeightSource; w3: WeightSource },
  meta: Record<string, string> = {}
): Uint8Array {
  const g = new GraphBuilder('expert')
  const x = g.input(EXPERT_INPUT, DT.FLOAT, ['rows', d.hidden])
  const w1 = weightFp32(g, 'w1', [d.inter, d.hidden], w.w1)
  const w3 = weightFp32(g, 'w3', [d.inter, d.hidden], w.w3)
  const w2 = weightFp32(g, 'w2', [d.hidden, d.inter], w.w2)
  const a = g.gemm(x, w1, { transB: true, name: 'w1' })
  const b = g.gemm(x, w3, { transB: true, name: 'w3' })
  const h = g.mul(g.silu(a), b, 'gated')
  const y = g.gemm(h, w2, { transB: true, name: 'w2' })
  g.output(y, DT.FLOAT, ['rows', d.hidden], EXPERT_OUTPUT)
  return g.toModel({ metadata: meta })
}

function linearInt8(
  g: GraphBuilder,
  name: string,
  x: string,
  w: Float32Array,
  n: number,
  k: number
): string {
  const { q, scale } = quantizeInt8PerColumn(w, n, k)
  const qb = g.initializer(`${name}_q`, DT.INT8, [k, n], q)
  const sc = g.initializer(`${name}_scale`, DT.FLOAT, [n], scale)
  return g.op('DynamicQuantizeMatMul', [x, qb, sc], {}, { name, domain: MS_DOMAIN })
}

/** One MatMulNBits weight, already packed: B [N, kBlocks, block/2], scales, zero points. */
export interface Int4Linear {
  b: Uint8Array
  scales: Float32Array
  zeroPoints: Uint8Array
}

/** External data of an int4 expert graph: sections at INT4_DATA_ALIGN-aligned offsets. */
export interface Int4ExpertData {
  /** The file's bytes, in order (padding included); write them one after another. */
  chunks: Uint8Array[]
  bytes: number
}

function linearInt4(
  g: GraphBuilder,
  name: string,
  x: string,
  w: Int4Linear,
  n: number,
  k: number,
  block: number,
  data: Int4ExpertData,
  location: string,
  accuracyLevel: number
): string {
  const kBlocks = Math.ceil(k / block)
  const want = { b: n * kBlocks * (block / 2), scales: n * kBlocks, zp: n * Math.ceil(kBlocks / 2) }
  if (w.b.length !== want.b || w.scales.length !== want.scales || w.zeroPoints.length !== want.zp)
    throw new Error(
      `${name}: int4 [${n}, ${k}] in blocks of ${block} needs ${want.b} B bytes, ${want.scales} scales, ${want.zp} zero-point bytes; got ${w.b.length}, ${w.scales.length}, ${w.zeroPoints.length}`
    )
  const ext = (
    suffix: string,
    dt: DataType,
    dims: number[],
    v: Uint8Array | Float32Array
  ): string => {
    const pad = (INT4_DATA_ALIGN - (data.bytes % INT4_DATA_ALIGN)) % INT4_DATA_ALIGN
    if (pad > 0) data.chunks.push(new Uint8Array(pad))
    data.bytes += pad
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    const ref = { location, offset: data.bytes, length: bytes.byteLength }
    data.chunks.push(bytes)
    data.bytes += bytes.byteLength
    return g.externalInitializer(`${name}_${suffix}`, dt, dims, ref)
  }
  const qb = ext('q4', DT.UINT8, [n, kBlocks, block / 2], w.b)
  const sc = ext('scales', DT.FLOAT, [n * kBlocks], w.scales)
  const zp = ext('zp', DT.UINT8, [w.zeroPoints.length], w.zeroPoints)
  return g.op(
    'MatMulNBits',
    [x, qb, sc, zp],
    { K: k, N: n, bits: 4, block_size: block, accuracy_level: accuracyLevel },
    { name, domain: MS_DOMAIN }
  )
}

/**
 * int4 expert graph from packed weights (quantised by quantizeInt4Blocks, or random bytes for a
 * memory bench). The weights go to `data`, to be written at `location` (relative to the graph's
 * directory, inside it); the graph only references them.
 */
export function buildInt4ExpertModel(
  d: ExpertDims,
  w: { w1: Int4Linear; w2: Int4Linear; w3: Int4Linear },
  opts: {
    block: number
    location: string
    meta?: Record<string, string>
    /** MatMulNBits accuracy_level (default INT4_ACCURACY_LEVEL; others for bench:compute). */
    accuracyLevel?: number
  }
): { model: Uint8Array; data: Int4ExpertData } {
  if (!(INT4_BLOCKS as readonly number[]).includes(opts.block))
    throw new Error(`int4 block size ${opts.block} is not one of ${INT4_BLOCKS.join(', ')}`)
  const data: Int4ExpertData = { chunks: [], bytes: 0 }
  const g = new GraphBuilder('expert')
  g.useDomain(MS_DOMAIN, 1)
  const x = g.input(EXPERT_INPUT, DT.FLOAT, ['rows', d.hidden])
  const lin = (name: string, input: string, lw: Int4Linear, n: number, k: number): string =>
    linearInt4(
      g,
      name,
      input,
      lw,
      n,
      k,
      opts.block,
      data,
      opts.location,
      opts.accuracyLevel ?? INT4_ACCURACY_LEVEL
    )
  const a = lin('w1', x, w.w1, d.inter, d.hidden)
  const b = lin('w3', x, w.w3, d.inter, d.hidden)
  const h = g.mul(g.silu(a), b, 'gated')
  const y = lin('w2', h, w.w2, d.hidden, d.inter)
  g.output(y, DT.FLOAT, ['rows', d.hidden], EXPERT_OUTPUT)
  return { model: g.toModel({ metadata: opts.meta ?? {} }), data }
}

/** int4 expert graph from fp32 weights: quantised in blocks of `block`, then as buildInt4ExpertModel. */
export function buildInt4ExpertFromFloats(
  d: ExpertDims,
  w: { w1: Float32Array; w2: Float32Array; w3: Float32Array },
  opts: { block: number; location: string; meta?: Record<string, string> }
): { model: Uint8Array; data: Int4ExpertData } {
  const q = (v: Float32Array, n: number, k: number): Int4Linear =>
    quantizeInt4Blocks(v, n, k, opts.block)
  return buildInt4ExpertModel(
    d,
    {
      w1: q(w.w1, d.inter, d.hidden),
      w2: q(w.w2, d.hidden, d.inter),
      w3: q(w.w3, d.inter, d.hidden)
    },
    opts
  )
}

/** int8 expert graph; weights are fp32 values (read from the checkpoint) and end up inline. */
export function buildInt8ExpertModel(
  d: ExpertDims,
  w: { w1: Float32Array; w2: Float32Array; w3: Float32Array },
  meta: Record<string, string> = {}
): Uint8Array {
  const g = new GraphBuilder('expert')
  g.useDomain(MS_DOMAIN, 1)
  const x = g.input(EXPERT_INPUT, DT.FLOAT, ['rows', d.hidden])
  const lin = linearInt8
  const a = lin(g, 'w1', x, w.w1, d.inter, d.hidden)
  const b = lin(g, 'w3', x, w.w3, d.inter, d.hidden)
  const h = g.mul(g.silu(a), b, 'gated')
  const y = lin(g, 'w2', h, w.w2, d.hidden, d.inter)
  g.output(y, DT.FLOAT, ['rows', d.hidden], EXPERT_OUTPUT)
  return g.toModel({ metadata: meta })
}

/** Float64 reference: y = w2(silu(w1 x) * w3 x), for tests. */
export function expertReference(
  d: ExpertDims,
  w: { w1: Float32Array; w2: Float32Array; w3: Float32Array },
  x: Float32Array,
  rows: number
): Float64Array {
  const { hidden: D, inter: F } = d
  const y = new Float64Array(rows * D)
  const h = new Float64Array(F)
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < F; f++) {
      let a = 0
      let b = 0
      for (let i = 0; i < D; i++) {
        const xv = x[r * D + i]
        a += w.w1[f * D + i] * xv
        b += w.w3[f * D + i] * xv
      }
      h[f] = (a / (1 + Math.exp(-a))) * b
    }
    for (let o = 0; o < D; o++) {
      let s = 0
      for (let f = 0; f < F; f++) s += w.w2[o * F + f] * h[f]
      y[r * D + o] = s
    }
  }
  return y
}
