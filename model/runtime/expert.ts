// ExpertRuntime: the local ORT executor for the experts of some shards of a bundle. Implements
// model/experts.ts's ExpertBackend (runExpert, has) and is what a node's expert service calls.
import type { Bundle } from '../bundle/load.js'
import { expertArtifactPath } from '../bundle/manifest.js'
import { INT4_KERNELS, type Device, type ExpertBackend, type Int4KernelChoice } from '../experts.js'
import { int4Kernel, type Int4Expert } from './int4/index.js'
import { createSession, ort, type MiniLogger, type SessionOptions } from './ort.js'

export class ExpertNotHostedError extends Error {
  override name = 'ExpertNotHostedError'
}

export class ExpertInputError extends Error {
  override name = 'ExpertInputError'
}

export interface ExpertRuntimeOptions {
  device?: Device
  logger?: MiniLogger
  intraOpNumThreads?: number
  /** Passed through to ORT (e.g. graphOptimizationLevel: bench:tie compares float orders). */
  ortOptions?: SessionOptions['ortOptions']
  /** See SessionOptions.allowSpinning. */
  allowSpinning?: boolean
  /** Verify the sha256 of the artifacts (and the weights they use) before loading. Default true. */
  verify?: boolean
  /** Load only the (layer, expert) pairs of those shards this accepts (a worker's part). */
  only?: (layer: number, expert: number) => boolean
  /** Called after each expert's session is created (minutes for a real Mixtral: show progress). */
  onProgress?: (loaded: number, total: number) => void
  /**
   * int4 bundles on CPU: 'pov' (default) runs pov's own kernel, which reads the weights at the
   * memory's speed and keeps them resident once; where it is not built (no g++ at install) the
   * runtime warns and uses 'ort' (onnxruntime's MatMulNBits). GPU devices always use ORT.
   * Unset: the POV_INT4_KERNEL environment variable, then 'pov' (every command that runs experts
   * locally — pov eval, generate --local, the referee — follows it).
   */
  int4Kernel?: Int4KernelChoice
}

/** The int4 kernel asked for: the option, else POV_INT4_KERNEL, else 'pov'. */
export function int4KernelChoice(opt?: Int4KernelChoice): Int4KernelChoice {
  if (opt != null) return opt
  const env = process.env.POV_INT4_KERNEL
  if (env == null || env === '') return 'pov'
  if (!(INT4_KERNELS as readonly string[]).includes(env))
    throw new Error(`POV_INT4_KERNEL=${env}: expected one of ${INT4_KERNELS.join(', ')}`)
  return env as Int4KernelChoice
}

export interface ExpertRuntime extends ExpertBackend {
  experts: () => Array<[number, number]>
  readonly device: Device
  readonly hidden: number
  readonly modelId: string
  /** What runs the experts: "onnxruntime", or "pov int4 kernel (avx512vnni, 2 threads)". */
  readonly engine: string
  close: () => Promise<void>
}

const key = (l: number, e: number): string => `${l}:${e}`

/** The input checks every ExpertRuntime makes before running (same errors in and out of workers). */
export function checkExpertInput(x: Float32Array, rows: number, hidden: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1)
    throw new ExpertInputError(`rows must be a positive integer, got ${rows}`)
  if (x.length !== rows * hidden)
    throw new ExpertInputError(
      `input has ${x.length} values, expected rows × hidden = ${rows} × ${hidden} = ${rows * hidden}`
    )
}

export async function loadExpertRuntime(
  bundle: Bundle,
  shardIds: number[],
  opts: ExpertRuntimeOptions = {}
): Promise<ExpertRuntime> {
  const { manifest, config } = bundle
  const pairs: Array<[number, number]> = []
  const seen = new Set<string>()
  for (const id of shardIds) {
    const shard = manifest.shards.find((s) => s.id === id)
    if (shard == null)
      throw new ExpertNotHostedError(
        `bundle ${bundle.modelId} has no shard ${id} (shards: 0..${manifest.shards.length - 1})`
      )
    for (const [l, e] of shard.experts) {
      if (!seen.has(key(l, e)) && (opts.only?.(l, e) ?? true)) {
        seen.add(key(l, e))
        pairs.push([l, e])
      }
    }
  }
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  const paths = pairs.map(
    ([l, e]) =>
      manifest.artifacts.find((a) => a.kind === 'expert' && a.layer === l && a.expert === e)
        ?.path ?? expertArtifactPath(l, e)
  )
  if (opts.verify !== false) await bundle.verify(paths)
  const sessions = new Map<string, ort.InferenceSession>()
  const natives = new Map<string, Int4Expert>()
  let device: Device = opts.device ?? 'cpu'
  let engine = 'onnxruntime'
  const native =
    manifest.quant === 'int4' && device === 'cpu' && int4KernelChoice(opts.int4Kernel) === 'pov'
  const kernel = native ? int4Kernel() : undefined
  if (kernel != null && 'unavailable' in kernel) {
    const msg = `pov's int4 kernel is unavailable (${kernel.unavailable}); int4 experts run with onnxruntime's MatMulNBits, slower and with a second copy of the weights in memory`
    if (opts.logger != null) opts.logger.warn({ reason: kernel.unavailable }, msg)
    else process.emitWarning(msg)
  }
  try {
    if (kernel != null && 'kernel' in kernel) {
      const k = kernel.kernel
      if (opts.intraOpNumThreads != null) k.setThreads(opts.intraOpNumThreads)
      engine = `pov int4 kernel (${k.isa}, ${k.threads} threads)`
      for (let i = 0; i < pairs.length; i++) {
        const [l, e] = pairs[i]
        const ex = await k.loadExpert(bundle.resolve(paths[i]), bundle.dir)
        if (ex.hidden !== config.hiddenSize)
          throw new ExpertInputError(
            `${paths[i]}: hidden size ${ex.hidden}, the bundle's config says ${config.hiddenSize}`
          )
        natives.set(key(l, e), ex)
        opts.onProgress?.(i + 1, pairs.length)
      }
    }
    // onnxruntime: every other case (int4 without the kernel, other quants, GPU devices)
    for (let i = 0; i < pairs.length && natives.size === 0; i++) {
      const [l, e] = pairs[i]
      // After one fallback, don't retry the GPU provider (and warn) for every expert.
      const s = await createSession(bundle.resolve(paths[i]), {
        device,
        logger: opts.logger,
        intraOpNumThreads: opts.intraOpNumThreads,
        allowSpinning: opts.allowSpinning,
        ortOptions: opts.ortOptions
      })
      device = s.device
      sessions.set(key(l, e), s.session)
      opts.onProgress?.(i + 1, pairs.length)
    }
  } catch (err) {
    for (const n of natives.values()) n.free()
    await Promise.all(
      [...sessions.values()].map(async (s) => {
        await s.release()
      })
    )
    throw err
  }
  const D = config.hiddenSize
  const input = manifest.expertIo.input
  const output = manifest.expertIo.output
  const runSession = async (
    s: ort.InferenceSession,
    x: Float32Array,
    rows: number
  ): Promise<Float32Array> => {
    const out = await s.run({ [input]: new ort.Tensor('float32', x, [rows, D]) })
    const y = out[output]
    const data = y.data as Float32Array
    y.dispose?.()
    return data
  }
  let closed = false

  return {
    device,
    hidden: D,
    modelId: bundle.modelId,
    engine,
    has: (l, e) => sessions.has(key(l, e)) || natives.has(key(l, e)),
    experts: () => pairs.map(([l, e]) => [l, e]),
    async runExpert(layer, expert, x, rows, o) {
      if (closed) throw new Error('expert runtime is closed')
      const n = natives.get(key(layer, expert))
      const s = n == null ? sessions.get(key(layer, expert)) : undefined
      if (n == null && s == null)
        throw new ExpertNotHostedError(
          `expert ${expert} of layer ${layer} is not hosted here (hosted: shards ${shardIds.join(', ')})`
        )
      checkExpertInput(x, rows, D)
      o?.signal?.throwIfAborted()
      const y = n != null ? await n.run(x, rows) : await runSession(s!, x, rows)
      o?.signal?.throwIfAborted()
      return y
    },
    async close() {
      if (closed) return
      closed = true
      for (const n of natives.values()) n.free()
      natives.clear()
      await Promise.all(
        [...sessions.values()].map(async (s) => {
          await s.release()
        })
      )
      sessions.clear()
    }
  }
}
