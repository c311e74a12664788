// DenseRuntime: the router's dense part (embeddings, attention + gate per layer, final norm + LM
// head) run by onnxruntime-node over the graphs that buildDenseArtifacts wrote into a bundle.
// One sequence at a time; KvCache holds the keys/values of every layer for that sequence.
import { join } from 'node:path'
import ort from 'onnxruntime-node'
import type { MixtralConfig } from '../config.js'
import { denseEmbedPath, denseHeadPath, denseLayerPath } from './build.js'
import { createDenseSession, type Device, type MiniLogger } from './session.js'
import type { SessionOptions } from '../runtime/ort.js'

export interface DenseRuntimeOptions {
  /** @default 'cpu' */
  device?: Device
  /** Receives the warning when the device falls back to CPU. */
  logger?: MiniLogger
  /**
   * Whether ORT's worker threads spin between runs (ORT default: true). A router spends most of
   * a step waiting for expert nodes; where nodes share its cores, spinning takes CPU from them.
   */
  allowSpinning?: boolean
  /** Threads per operator. @default 0 (ORT's default: the physical cores) */
  intraOpNumThreads?: number
  /** Passed through to ORT (e.g. graphOptimizationLevel: bench:tie compares float orders). */
  ortOptions?: SessionOptions['ortOptions']
}

/** What loadDenseRuntime needs from a loaded bundle (model/bundle's Bundle satisfies it). */
export interface DenseBundle {
  dir: string
  config: MixtralConfig
  /** When present (a lazily verified Bundle), called with the dense paths before loading them. */
  verify?: (paths: string[]) => Promise<void>
}

export interface AttentionResult {
  /** [T, H]: hidden after the attention residual add (the MoE output is added to this). */
  hidden: Float32Array
  /** [T, H]: post-attention RMSNorm of `hidden` — the experts' input. */
  moeIn: Float32Array
  /** [T, numExperts] */
  routerLogits: Float32Array
}

interface LayerCache {
  k: ort.Tensor
  v: ort.Tensor
  /** Absolute position of every cached key, in cache order. */
  positions: number[]
}

/** Keys/values of one sequence, per layer. Prefill appends T tokens, decode one at a time. */
export class KvCache {
  readonly layers: LayerCache[]

  constructor(readonly config: MixtralConfig) {
    const empty = (): ort.Tensor =>
      new ort.Tensor('float32', new Float32Array(0), [config.numKvHeads, 0, config.headDim])
    this.layers = Array.from({ length: config.numLayers }, () => ({
      k: empty(),
      v: empty(),
      positions: []
    }))
  }

  /** Number of keys held in layer 0 (with a sliding window, older keys are dropped). */
  get length(): number {
    return this.layers[0].positions.length
  }

  /** Drops every key at position >= `end` (they are the newest ones): the roll-back of
   *  speculative decoding past the rejected draft tokens. */
  truncate(end: number): void {
    for (const lc of this.layers) {
      let keep = lc.positions.length
      while (keep > 0 && lc.positions[keep - 1] >= end) keep--
      if (keep === lc.positions.length) continue
      const [nkv, S, D] = lc.k.dims
      const slice = (t: ort.Tensor): ort.Tensor => {
        const src = t.data as Float32Array
        const dst = new Float32Array(nkv * keep * D)
        for (let h = 0; h < nkv; h++)
          dst.set(src.subarray(h * S * D, (h * S + keep) * D), h * keep * D)
        return new ort.Tensor('float32', dst, [nkv, keep, D])
      }
      lc.k = slice(lc.k)
      lc.v = slice(lc.v)
      lc.positions = lc.positions.slice(0, keep)
    }
  }
}

export interface DenseRuntime {
  readonly config: MixtralConfig
  /** The device the sessions actually run on (after any fallback). */
  readonly device: Device
  newCache(): KvCache
  /** ids → [T, H] */
  embed(ids: number[]): Promise<Float32Array>
  /** Runs layer `layer` on T new tokens at `positions`, appending their keys/values to `cache`. */
  attention(
    layer: number,
    hidden: Float32Array,
    positions: number[],
    cache: KvCache
  ): Promise<AttentionResult>
  /** [rows, H] → [rows, vocab] (final RMSNorm + LM head). */
  finalLogits(hidden: Float32Array, rows: number): Promise<Float32Array>
  close(): Promise<void>
}

/** Additive mask [T, S]: query at position p sees cached/new key at position k iff
 *  k <= p and (no window or p - k < window) — transformers' causal + sliding-window rule. */
export function attentionBias(
  keyPositions: number[],
  queryPositions: number[],
  slidingWindow: number | null
): Float32Array {
  const S = keyPositions.length
  const bias = new Float32Array(queryPositions.length * S)
  queryPositions.forEach((p, t) => {
    for (let s = 0; s < S; s++) {
      const k = keyPositions[s]
      if (k > p || (slidingWindow != null && p - k >= slidingWindow)) bias[t * S + s] = -Infinity
    }
  })
  return bias
}

/** Drops keys no later query can see (position <= from - window, every later query being at
 *  `from` or after), so a long sequence keeps
 *  O(window) keys. Done only once the cache exceeds the window by a quarter, so the copy is
 *  amortised over many decode steps. */
function trimToWindow(lc: LayerCache, window: number, from: number): void {
  const S = lc.positions.length
  if (S <= window + Math.ceil(window / 4)) return
  let drop = 0
  while (drop < S && lc.positions[drop] <= from - window) drop++
  if (drop === 0) return
  const [nkv, , D] = lc.k.dims
  const keep = S - drop
  const slice = (t: ort.Tensor): ort.Tensor => {
    const src = t.data as Float32Array
    const dst = new Float32Array(nkv * keep * D)
    for (let h = 0; h < nkv; h++)
      dst.set(src.subarray((h * S + drop) * D, (h + 1) * S * D), h * keep * D)
    return new ort.Tensor('float32', dst, [nkv, keep, D])
  }
  lc.k = slice(lc.k)
  lc.v = slice(lc.v)
  lc.positions = lc.positions.slice(drop)
}

function floatData(t: ort.Tensor): Float32Array {
  return t.data as Float32Array
}

export async function loadDenseRuntime(
  bundle: DenseBundle,
  opts: DenseRuntimeOptions = {}
): Promise<DenseRuntime> {
  const c = bundle.config
  const H = c.hiddenSize
  const want = opts.device ?? 'cpu'
  const open = async (path: string): Promise<{ session: ort.InferenceSession; device: Device }> =>
    await createDenseSession(join(bundle.dir, path), want, opts.logger, opts.allowSpinning, {
      intraOpNumThreads: opts.intraOpNumThreads,
      ortOptions: opts.ortOptions
    })
  await bundle.verify?.([
    denseEmbedPath,
    ...Array.from({ length: c.numLayers }, (_, i) => denseLayerPath(i)),
    denseHeadPath
  ])
  const embedS = await open(denseEmbedPath)
  const layerS: ort.InferenceSession[] = []
  try {
    for (let i = 0; i < c.numLayers; i++) layerS.push((await open(denseLayerPath(i))).session)
  } catch (err) {
    await Promise.all(
      [embedS.session, ...layerS].map(async (s) => {
        await s.release()
      })
    )
    throw err
  }
  const headS = await open(denseHeadPath)
  const all = [embedS.session, ...layerS, headS.session]

  return {
    config: c,
    device: embedS.device,
    newCache: () => new KvCache(c),

    async embed(ids) {
      for (const id of ids) {
        if (!Number.isSafeInteger(id) || id < 0 || id >= c.vocabSize)
          throw new RangeError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`)
      }
      const out = await embedS.session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [ids.length])
      })
      return floatData(out.hidden)
    },

    async attention(layer, hidden, positions, cache) {
      const T = positions.length
      if (hidden.length !== T * H)
        throw new RangeError(`attention: hidden has ${hidden.length} values, expected ${T} × ${H}`)
      const lc = cache.layers[layer]
      const keyPositions = [...lc.positions, ...positions]
      const out = await layerS[layer].run({
        hidden: new ort.Tensor('float32', hidden, [T, H]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [T]),
        attn_bias: new ort.Tensor(
          'float32',
          attentionBias(keyPositions, positions, c.slidingWindow),
          [T, keyPositions.length]
        ),
        past_k: lc.k,
        past_v: lc.v
      })
      lc.k = out.present_k
      lc.v = out.present_v
      lc.positions = keyPositions
      // trimmed up to the pass's first position, not its last: speculative decoding may roll
      // the later ones back, and the queries after that still see keys the last one does not
      if (c.slidingWindow != null)
        trimToWindow(
          lc,
          c.slidingWindow,
          positions.reduce((a, b) => Math.min(a, b), Infinity)
        )
      return {
        hidden: floatData(out.hidden_out),
        moeIn: floatData(out.moe_in),
        routerLogits: floatData(out.router_logits)
      }
    },

    async finalLogits(hidden, rows) {
      if (hidden.length !== rows * H)
        throw new RangeError(
          `finalLogits: hidden has ${hidden.length} values, expected ${rows} × ${H}`
        )
      const out = await headS.session.run({ hidden: new ort.Tensor('float32', hidden, [rows, H]) })
      return floatData(out.logits)
    },

    async close() {
      await Promise.all(
        all.map(async (s) => {
          await s.release()
        })
      )
    }
  }
}
