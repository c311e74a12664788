// One expert worker thread (see threaded.ts): loads its share of the hosted experts, then runs
// them on request, one at a time, posting each output back as a transferred buffer.
import { parentPort, workerData } from 'node:worker_threads'
import { loadBundle } from '../bundle/index.js'
import { loadExpertRuntime, type ExpertRuntime } from './expert.js'
import { expertKey } from '../experts.js'
import type { FromWorker, ToWorker, WorkerInit } from './threaded.js'

const port = parentPort
if (port == null) throw new Error('expert-worker.ts runs as a worker thread')
const init = workerData as WorkerInit
const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => {
  port.postMessage(m, transfer)
}

let runtime: ExpertRuntime | null = null
try {
  const bundle = await loadBundle(init.bundleDir, {
    verify: init.verify === false ? 'none' : 'lazy'
  })
  const mine = new Set(init.pairs.map(([l, e]) => expertKey(l, e)))
  runtime = await loadExpertRuntime(bundle, init.shardIds, {
    device: init.device,
    intraOpNumThreads: init.intraOpNumThreads,
    allowSpinning: init.allowSpinning,
    verify: init.verify,
    int4Kernel: init.int4Kernel,
    only: (l, e) => mine.has(expertKey(l, e)),
    onProgress: () => {
      post({ type: 'progress' })
    },
    logger: {
      warn: (obj, msg) => {
        post({ type: 'log', level: 'warn', obj, msg })
      },
      debug: (obj, msg) => {
        post({ type: 'log', level: 'debug', obj, msg })
      }
    }
  })
  post({
    type: 'ready',
    device: runtime.device,
    engine: runtime.engine,
    experts: runtime.experts()
  })
} catch (err) {
  post({ type: 'failed', message: (err as Error).message })
  process.exit(1)
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'close') {
    void runtime?.close().finally(() => {
      post({ type: 'closed' })
      process.exit(0)
    })
    return
  }
  runtime!.runExpert(m.layer, m.expert, m.x, m.rows).then(
    (y) => {
      // ORT's output owns its buffer; transfer it (a view into a larger buffer is copied first)
      const out = y.byteOffset === 0 && y.byteLength === y.buffer.byteLength ? y : y.slice()
      post({ type: 'result', id: m.id, y: out }, [out.buffer as ArrayBuffer])
    },
    (err: Error) => {
      post({ type: 'error', id: m.id, name: err.name, message: err.message })
    }
  )
})
