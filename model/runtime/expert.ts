// ExpertRuntime: the local ORT executor for the experts of some shards of a bundle. Implements
// model/experts.ts's ExpertBackend (runExpert, has) and is what a node's expert service calls.
import type { Bundle } from '../bundle/load.js'
import { expertArtifactPath } from '../bundle/manifest.js'
import type { Device, ExpertBackend } from '../experts.js'
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
}

export interface ExpertRuntime extends ExpertBackend {
  experts: () => Array<[number, number]>
  readonly device: Device
  readonly hidden: number
  readonly modelId: string
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
  let device: Device = opts.device ?? 'cpu'
  try {
    for (let i = 0; i < pairs.length; i++) {
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
  let closed = false

  return {
    device,
    hidden: D,
    modelId: bundle.modelId,
    has: (l, e) => sessions.has(key(l, e)),
    experts: () => pairs.map(([l, e]) => [l, e]),
    async runExpert(layer, expert, x, rows, o) {
      if (closed) throw new Error('expert runtime is closed')
      const s = sessions.get(key(layer, expert))
      if (s == null)
        throw new ExpertNotHostedError(
          `expert ${expert} of layer ${layer} is not hosted here (hosted: shards ${shardIds.join(', ')})`
        )
      checkExpertInput(x, rows, D)
      o?.signal?.throwIfAborted()
      const out = await s.run({ [input]: new ort.Tensor('float32', x, [rows, D]) })
      o?.signal?.throwIfAborted()
      const y = out[output]
      const data = y.data as Float32Array
      y.dispose?.()
      return data
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.all(
        [...sessions.values()].map(async (s) => {
          await s.release()
        })
      )
      sessions.clear()
    }
  }
}
