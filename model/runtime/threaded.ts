// An ExpertRuntime whose ORT sessions live in worker threads. onnxruntime-node runs a session
// synchronously on the calling thread (its run() only defers the call with setImmediate), so in
// the node's main thread every expert run would stall the event loop: other peers' frames,
// pings and signatures wait, and two experts of one layer on one node run one after the other.
// Here each worker owns a share of the hosted (layer, expert) pairs; the main thread only copies
// the input in and receives the output buffer back (transferred, not copied).
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { loadBundle } from '../bundle/index.js'
import {
  checkExpertInput,
  ExpertInputError,
  ExpertNotHostedError,
  type ExpertRuntime,
  type ExpertRuntimeOptions
} from './expert.js'
import { expertKey, expertOfKey, type Device } from '../experts.js'

export interface ThreadedRuntimeOptions extends Omit<ExpertRuntimeOptions, 'only'> {
  /** Worker threads; hosted experts of one layer are spread across them. @default 1 */
  workers?: number
}

/** Sent to a worker at start (see expert-worker.ts). */
export interface WorkerInit {
  bundleDir: string
  shardIds: number[]
  /** The (layer, expert) pairs of those shards this worker loads (assigned by the main thread). */
  pairs: Array<[number, number]>
  device?: Device
  intraOpNumThreads?: number
  allowSpinning?: boolean
  verify?: boolean
  int4Kernel?: ExpertRuntimeOptions['int4Kernel']
}

export type ToWorker =
  | { type: 'run'; id: number; layer: number; expert: number; x: Float32Array; rows: number }
  | { type: 'close' }

export type FromWorker =
  | { type: 'ready'; device: Device; engine: string; experts: Array<[number, number]> }
  /** One more expert session created. */
  | { type: 'progress' }
  | { type: 'result'; id: number; y: Float32Array }
  | { type: 'error'; id: number; name: string; message: string }
  | { type: 'failed'; message: string }
  | { type: 'log'; level: 'warn' | 'debug'; obj: object | string; msg?: string }
  | { type: 'closed' }

/**
 * Which worker owns (layer, expert): the hosted experts of each layer are dealt round-robin, so
 * the k experts of one layer that a node hosts run in parallel when there are k workers.
 */
export function assignWorker(hostedOfLayer: number[], expert: number, workers: number): number {
  const rank = [...hostedOfLayer].sort((a, b) => a - b).indexOf(expert)
  return (rank < 0 ? expert : rank) % workers
}

interface Pending {
  resolve: (y: Float32Array) => void
  reject: (err: Error) => void
}

class WorkerHandle {
  readonly pending = new Map<number, Pending>()
  private nextId = 0
  failure: Error | null = null

  constructor(readonly worker: Worker) {}

  run(layer: number, expert: number, x: Float32Array, rows: number): Promise<Float32Array> {
    if (this.failure != null) return Promise.reject(this.failure)
    const id = this.nextId++
    // a fresh buffer we can transfer: `x` is usually a view into a received frame, which the
    // caller still needs (it hashes the input for the response signature)
    const copy = x.slice()
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage(
        { type: 'run', id, layer, expert, x: copy, rows } satisfies ToWorker,
        [copy.buffer]
      )
    })
  }

  fail(err: Error): void {
    if (this.failure == null) this.failure = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}

export async function loadThreadedExpertRuntime(
  bundleDir: string,
  shardIds: number[],
  opts: ThreadedRuntimeOptions = {}
): Promise<ExpertRuntime> {
  const n = Math.max(1, Math.min(opts.workers ?? 1, availableParallelism() * 2))
  const bundle = await loadBundle(bundleDir, { verify: 'none' })
  const D = bundle.config.hiddenSize
  // which worker loads which pair: the experts each layer hosts, dealt round-robin
  const hosted = new Map<number, number[]>()
  for (const id of shardIds) {
    for (const [l, e] of bundle.manifest.shards.find((s) => s.id === id)?.experts ?? []) {
      const list = hosted.get(l) ?? []
      if (!list.includes(e)) list.push(e)
      hosted.set(l, list)
    }
  }
  const share = Array.from({ length: n }, () => [] as Array<[number, number]>)
  for (const [l, list] of hosted) for (const e of list) share[assignWorker(list, e, n)].push([l, e])
  const total = share.reduce((a, s) => a + s.length, 0)
  let loaded = 0
  const handles: WorkerHandle[] = []
  const owner = new Map<number, WorkerHandle>()
  let device: Device = opts.device ?? 'cpu'
  let engine = 'onnxruntime'
  let closed = false

  const start = (index: number): Promise<WorkerHandle> =>
    new Promise((resolve, reject) => {
      const init: WorkerInit = {
        bundleDir,
        shardIds,
        pairs: share[index],
        device: opts.device,
        intraOpNumThreads: opts.intraOpNumThreads,
        allowSpinning: opts.allowSpinning,
        verify: opts.verify,
        int4Kernel: opts.int4Kernel
      }
      const worker = new Worker(new URL('./expert-worker.js', import.meta.url), {
        workerData: init
      })
      const h = new WorkerHandle(worker)
      let ready = false
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            ready = true
            device = m.device
            engine = m.engine
            for (const [l, e] of m.experts) owner.set(expertKey(l, e), h)
            resolve(h)
            break
          case 'result': {
            const p = h.pending.get(m.id)
            h.pending.delete(m.id)
            p?.resolve(m.y)
            break
          }
          case 'error': {
            const p = h.pending.get(m.id)
            h.pending.delete(m.id)
            const Cls =
              m.name === 'ExpertInputError'
                ? ExpertInputError
                : m.name === 'ExpertNotHostedError'
                  ? ExpertNotHostedError
                  : Error
            p?.reject(new Cls(m.message))
            break
          }
          case 'failed': {
            const err = new Error(`expert worker ${index} failed to load: ${m.message}`)
            h.fail(err)
            reject(err)
            break
          }
          case 'progress':
            opts.onProgress?.(++loaded, total)
            break
          case 'log':
            opts.logger?.[m.level]?.(m.obj, m.msg)
            break
          case 'closed':
            break
        }
      })
      worker.on('error', (err) => {
        h.fail(new Error(`expert worker ${index} crashed: ${err.message}`))
        if (!ready) reject(err)
      })
      worker.on('exit', (code) => {
        if (!closed) h.fail(new Error(`expert worker ${index} exited (code ${code})`))
        if (!ready) reject(new Error(`expert worker ${index} exited (code ${code}) before loading`))
      })
    })

  try {
    handles.push(...(await Promise.all(Array.from({ length: n }, async (_, i) => await start(i)))))
  } catch (err) {
    closed = true
    await Promise.all(handles.map(async (h) => await h.worker.terminate()))
    throw err
  }
  const pairs = [...owner.keys()].sort((a, b) => a - b).map(expertOfKey)

  return {
    get device() {
      return device
    },
    get engine() {
      return engine
    },
    hidden: D,
    modelId: bundle.modelId,
    has: (l, e) => owner.has(expertKey(l, e)),
    experts: () => pairs.map(([l, e]) => [l, e]),
    async runExpert(layer, expert, x, rows, o) {
      if (closed) throw new Error('expert runtime is closed')
      const h = owner.get(expertKey(layer, expert))
      if (h == null)
        throw new ExpertNotHostedError(
          `expert ${expert} of layer ${layer} is not hosted here (hosted: shards ${shardIds.join(', ')})`
        )
      checkExpertInput(x, rows, D)
      o?.signal?.throwIfAborted()
      const y = await h.run(layer, expert, x, rows)
      o?.signal?.throwIfAborted()
      return y
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.all(
        handles.map(async (h) => {
          h.fail(new Error('expert runtime is closed'))
          const done = new Promise<void>((resolve) => {
            h.worker.once('exit', () => {
              resolve()
            })
          })
          h.worker.postMessage({ type: 'close' } satisfies ToWorker)
          // a worker stuck in a long run is not waited for
          const timer = setTimeout(() => {
            void h.worker.terminate()
          }, 5000)
          await done
          clearTimeout(timer)
        })
      )
    }
  }
}
