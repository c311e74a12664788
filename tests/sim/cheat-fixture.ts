// The fixture of the cheating-node tests: a tiny model bundle, a second bundle with other weights
// (what a node serving "another model under the approved id" runs), the honest expert runtime,
// the cheat's runtime, and the --local reference generation with its smallest top-1/top-2 margin
// (so a test can say whether token equality means anything).
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime, type DenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime, type ExpertRuntime } from '../../model/runtime/index.js'
import { generate, type ExpertExecutor, type SpeculativeOptions } from '../../model/generate.js'
import type { ExpertBackend } from '../../node/runtime.js'

export interface CheatFixture {
  bundle: Bundle
  /** The bundle whose experts the cheat runs (same shapes, seed 1, no dense part). */
  other: Bundle
  dense: DenseRuntime
  honestRt: ExpertRuntime
  otherRt: ExpertRuntime
  /** The temperature-0 tokens of the single-process run on the honest experts. */
  local: number[]
  /** Smallest top-1/top-2 logit margin over `local`. */
  minMargin: number
  /** Greedy generation of the fixture's prompt through `experts` (speculative, when given). */
  run: (experts: ExpertExecutor, speculative?: SpeculativeOptions) => Promise<number[]>
  /** A node backend answering with the other model's experts under the honest shard list. */
  otherWeights: () => ExpertBackend
  close: () => Promise<void>
}

/** Writes both checkpoints and bundles under `dir` (the caller removes `dir`). */
export async function cheatFixture(
  dir: string,
  opts: { prompt: number[]; maxTokens: number }
): Promise<CheatFixture> {
  await writeTinyCheckpoint(join(dir, 'hf'), { seed: 0 })
  await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'))
  await writeTinyCheckpoint(join(dir, 'hf-other'), { seed: 1 })
  await convertCheckpoint(join(dir, 'hf-other'), join(dir, 'other'), { dense: false })
  const bundle = await loadBundle(join(dir, 'bundle'))
  const other = await loadBundle(join(dir, 'other'))
  const dense = await loadDenseRuntime(bundle, { device: 'cpu' })
  const all = bundle.manifest.shards.map((s) => s.id)
  const honestRt = await loadExpertRuntime(bundle, all, { intraOpNumThreads: 1 })
  const otherRt = await loadExpertRuntime(other, all, { intraOpNumThreads: 1, verify: false })

  let minMargin = Infinity
  const run = async (
    experts: ExpertExecutor,
    speculative?: SpeculativeOptions
  ): Promise<number[]> => {
    const ids: number[] = []
    for await (const t of generate({
      dense,
      experts,
      promptIds: opts.prompt,
      maxTokens: opts.maxTokens,
      eosTokenId: null,
      ...(speculative != null ? { speculative } : {})
    })) {
      ids.push(t.id)
      if (experts === honestRt) minMargin = Math.min(minMargin, t.margin)
    }
    return ids
  }
  const local = await run(honestRt)
  return {
    bundle,
    other,
    dense,
    honestRt,
    otherRt,
    local,
    minMargin,
    run,
    otherWeights: () => ({
      has: (l, e) => honestRt.has(l, e),
      runExpert: async (l, e, x, rows) => await otherRt.runExpert(l, e, x, rows)
    }),
    close: async () => {
      await honestRt.close()
      await otherRt.close()
      await dense.close()
    }
  }
}
