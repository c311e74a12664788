// Micro-batching: concurrent calls for the same (layer, expert) — from any stream or peer —
// that arrive in the same window or while a run for that expert is in flight are concatenated
// into ONE runtime run and split afterwards. A lone call runs on its own buffer (no copy).
import { expertKey } from '../model/experts.js'

export type RunFn = (
  layer: number,
  expert: number,
  x: Float32Array,
  rows: number
) => Promise<Float32Array>

export interface BatcherOptions {
  hidden: number
  /**
   * How long the first call for an idle expert waits for company, in ms. 0 = until the current
   * event-loop turn ends (calls decoded from one socket read batch; no added latency for decode).
   * @default 0
   */
  windowMs?: number
  /** Rows per run at most; the rest go into the next run. @default 4096 */
  maxBatchRows?: number
  onBatch?: (rows: number, calls: number) => void
}

interface Pending {
  x: Float32Array
  rows: number
  resolve: (y: Float32Array) => void
  reject: (err: Error) => void
}
interface Slot {
  queue: Pending[]
  running: boolean
  scheduled: boolean
}

export class MicroBatcher {
  private readonly slots = new Map<number, Slot>()
  private readonly windowMs: number
  private readonly maxBatchRows: number

  constructor(
    private readonly run: RunFn,
    private readonly opts: BatcherOptions
  ) {
    this.windowMs = opts.windowMs ?? 0
    this.maxBatchRows = opts.maxBatchRows ?? 4096
  }

  async submit(
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number
  ): Promise<Float32Array> {
    const key = expertKey(layer, expert)
    let slot = this.slots.get(key)
    if (slot == null) {
      slot = { queue: [], running: false, scheduled: false }
      this.slots.set(key, slot)
    }
    const s = slot
    const p = new Promise<Float32Array>((resolve, reject) => {
      s.queue.push({ x, rows, resolve, reject })
    })
    if (!s.running && !s.scheduled) {
      s.scheduled = true
      const go = (): void => {
        s.scheduled = false
        void this.flush(layer, expert, key, s)
      }
      if (this.windowMs > 0) setTimeout(go, this.windowMs)
      else setImmediate(go)
    }
    return await p
  }

  private async flush(layer: number, expert: number, key: number, slot: Slot): Promise<void> {
    while (slot.queue.length > 0) {
      let rows = 0
      let n = 0
      while (n < slot.queue.length && (n === 0 || rows + slot.queue[n].rows <= this.maxBatchRows))
        rows += slot.queue[n++].rows
      const batch = slot.queue.splice(0, n)
      slot.running = true
      try {
        let x: Float32Array
        if (batch.length === 1) x = batch[0].x
        else {
          x = new Float32Array(rows * this.opts.hidden)
          let off = 0
          for (const p of batch) {
            x.set(p.x, off)
            off += p.x.length
          }
        }
        this.opts.onBatch?.(rows, batch.length)
        const y = await this.run(layer, expert, x, rows)
        if (y.length !== rows * this.opts.hidden)
          throw new Error(`runtime returned ${y.length} values for ${rows} rows`)
        let off = 0
        for (const p of batch) {
          const len = p.rows * this.opts.hidden
          p.resolve(batch.length === 1 ? y : y.subarray(off, off + len))
          off += len
        }
      } catch (err) {
        for (const p of batch) p.reject(err as Error)
      } finally {
        slot.running = false
      }
    }
    if (!slot.running && !slot.scheduled && slot.queue.length === 0) this.slots.delete(key)
  }
}
