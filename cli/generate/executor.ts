// THE place where `pov generate` chooses how experts are reached. Everything else in the command
// talks to an ExpertExecutor (model/generate.ts) and does not care which one it got.
import type { Bundle } from '../../model/bundle/load.js'
import type { ExpertExecutor } from '../../model/generate.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import type { Device, MiniLogger } from '../../model/runtime/ort.js'
import type { GenerateArgs } from './options.js'

export interface OpenedExecutor {
  executor: ExpertExecutor
  /** Human-readable, for the start-up line. */
  describe: string
  close: () => Promise<void>
}

export async function openExecutor (spec: GenerateArgs['executor'], bundle: Bundle, opts: { device: Device, logger?: MiniLogger }): Promise<OpenedExecutor> {
  switch (spec.kind) {
    case 'local': {
      // Every shard of the bundle, in this process.
      const shardIds = bundle.manifest.shards.map(s => s.id)
      const rt = await loadExpertRuntime(bundle, shardIds, { device: opts.device, logger: opts.logger, intraOpNumThreads: 0 })
      return { executor: rt, describe: `local (${shardIds.length} shards on ${rt.device})`, close: async () => { await rt.close() } }
    }
    // HOOK(--peers): the wire engineer adds `{ kind: 'peers', peers: string[] , … }` to
    // GenerateArgs['executor'] (parsed in options.ts) and a case here that builds the router's
    // remote executor (it must throw ExpertUnavailableError when no replica can serve an expert).
  }
}
