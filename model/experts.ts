// Expert addressing, shared by the node, the router and the local runtimes: the numeric key of a
// (layer, expert) pair, the executor interface every expert runner implements, and the device
// names. Imports nothing (no onnxruntime), so the CLI can use it without loading ORT.

/** Where ONNX Runtime runs a session. GPU devices fall back to CPU with a warning. */
export type Device = 'cpu' | 'cuda' | 'webgpu'
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'webgpu']

/** What runs int4 experts on CPU: pov's own kernel (model/runtime/int4) or ORT's MatMulNBits. */
export type Int4KernelChoice = 'pov' | 'ort'
export const INT4_KERNELS: readonly Int4KernelChoice[] = ['pov', 'ort']

/** Upper bound (exclusive) of an expert index inside a key; Mixtral-style models have 8. */
const EXPERT_SPAN = 65536

/** One number per (layer, expert), for Sets and Maps: `layer * 65536 + expert`. */
export function expertKey(layer: number, expert: number): number {
  return layer * EXPERT_SPAN + expert
}

/** The (layer, expert) pair of a key made by `expertKey`. */
export function expertOfKey(key: number): [layer: number, expert: number] {
  return [Math.floor(key / EXPERT_SPAN), key % EXPERT_SPAN]
}

/** Thrown by an executor when nobody can serve (layer, expert). Matched by `name` as well as by
 *  class, so an executor from another copy of this module is recognised too. */
export class ExpertUnavailableError extends Error {
  override name = 'ExpertUnavailableError'
  constructor(
    readonly layer: number,
    readonly expert: number,
    message?: string,
    options?: { cause?: unknown }
  ) {
    super(message ?? `expert ${expert} of layer ${layer} is unavailable`, options)
  }
}

/** Runs one expert of one layer over a batch of rows (local ORT, worker threads, or remote). */
export interface ExpertExecutor {
  /** x: rows × hidden, row-major fp32. Returns rows × hidden. Throws ExpertUnavailableError when
   *  no replica can serve (layer, expert); any other error aborts the generation. */
  runExpert: (
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number,
    opts?: { signal?: AbortSignal }
  ) => Promise<Float32Array>
}

/** An executor that knows which experts it holds (what a node's expert service serves). */
export interface ExpertBackend extends ExpertExecutor {
  has: (layer: number, expert: number) => boolean
}
