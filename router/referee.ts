// The router's own run of an expert, as a spot check's referee (router/spot-check.ts): one
// (layer, expert) is loaded from the bundle the first time a check needs it — not the whole
// model, which is what nodes are for — and kept for the next check of that expert, up to
// `maxLoaded` experts (least recently used ones are released).
import type { Bundle } from '../model/bundle/load.js'
import type { ExpertExecutor } from '../model/experts.js'
import { loadExpertRuntime, type ExpertRuntime } from '../model/runtime/expert.js'

export interface OnDemandExpertsOptions {
  /** Experts kept loaded at once. @default 16 */
  maxLoaded?: number
  /** Observes each load (for the log line and the bench). */
  onLoad?: (e: { layer: number; expert: number; ms: number }) => void
}

export class OnDemandExperts implements ExpertExecutor {
  /** (layer, expert) → its runtime being loaded or loaded; Map order = least recently used first. */
  private readonly loaded = new Map<string, Promise<ExpertRuntime>>()
  private readonly maxLoaded: number
  /** Loads so far (a second check of the same expert loads nothing). */
  loads = 0
  private closed = false

  constructor(
    private readonly bundle: Bundle,
    private readonly opts: OnDemandExpertsOptions = {}
  ) {
    this.maxLoaded = Math.max(1, opts.maxLoaded ?? 16)
  }

  /** Experts loaded now. */
  get size(): number {
    return this.loaded.size
  }

  async runExpert(
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number,
    o?: { signal?: AbortSignal }
  ): Promise<Float32Array> {
    if (this.closed) throw new Error('the referee is closed')
    const k = `${layer}:${expert}`
    let rt = this.loaded.get(k)
    if (rt != null) this.loaded.delete(k)
    else {
      rt = this.load(layer, expert)
      // a failed load is not remembered: the next check tries again
      rt.catch(() => {
        if (this.loaded.get(k) === rt) this.loaded.delete(k)
      })
    }
    this.loaded.set(k, rt)
    this.evict()
    return await (await rt).runExpert(layer, expert, x, rows, o)
  }

  private async load(layer: number, expert: number): Promise<ExpertRuntime> {
    const shard = this.bundle.manifest.shards.find((s) =>
      s.experts.some(([l, e]) => l === layer && e === expert)
    )
    if (shard == null)
      throw new Error(`bundle ${this.bundle.modelId} has no expert ${expert} of layer ${layer}`)
    const t0 = performance.now()
    this.loads++
    // one thread, no spinning: a referee runs now and then beside the dense part
    const rt = await loadExpertRuntime(this.bundle, [shard.id], {
      only: (l, e) => l === layer && e === expert,
      intraOpNumThreads: 1,
      allowSpinning: false
    })
    this.opts.onLoad?.({ layer, expert, ms: performance.now() - t0 })
    return rt
  }

  private evict(): void {
    while (this.loaded.size > this.maxLoaded) {
      const [k, rt] = this.loaded.entries().next().value as [string, Promise<ExpertRuntime>]
      this.loaded.delete(k)
      // a run still in flight on it keeps its session until it ends (ORT releases after)
      void rt.then(async (r) => await r.close()).catch(() => {})
    }
  }

  async close(): Promise<void> {
    this.closed = true
    const all = [...this.loaded.values()]
    this.loaded.clear()
    await Promise.all(all.map(async (p) => await (await p.catch(() => null))?.close()))
  }
}
