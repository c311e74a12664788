// THE place where `pov generate` chooses how experts are reached. Everything else in the command
// talks to an ExpertExecutor (model/experts.ts) and does not care which one it got.
import type { Bundle } from '../../model/bundle/load.js'
import type { Device, ExpertExecutor } from '../../model/experts.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import type { MiniLogger } from '../../model/runtime/ort.js'
import type { GenerateArgs } from './options.js'
import type { RouterOptions } from '../../router/router.js'
import { UserError } from '../errors.js'

export interface OpenedExecutor {
  executor: ExpertExecutor
  /** Human-readable, for the start-up line. */
  describe: string
  close: () => Promise<void>
  /** A summary printed after generation (pov infer: the cost per node). */
  report?: () => { text: string; json: unknown }
  /** Spot-check summary (router/spot-check.ts), printed after the tokens. */
  verification?: () => { text: string; json: unknown }
}

export async function openExecutor(
  spec: GenerateArgs['executor'],
  bundle: Bundle,
  opts: {
    device: Device
    logger?: MiniLogger
    /** Observers of remote expert calls (the oracle's evidence recorder). */
    calls?: Pick<NonNullable<RouterOptions['calls']>, 'onCall'>
  }
): Promise<OpenedExecutor> {
  switch (spec.kind) {
    case 'local': {
      // Every shard of the bundle, in this process.
      const shardIds = bundle.manifest.shards.map((s) => s.id)
      // no spinning: the experts' pools alternate with the dense part's (see handler.ts)
      const rt = await loadExpertRuntime(bundle, shardIds, {
        device: opts.device,
        logger: opts.logger,
        intraOpNumThreads: 0,
        allowSpinning: false
      })
      return {
        executor: rt,
        describe: `local (${shardIds.length} shards on ${rt.device})`,
        close: async () => {
          await rt.close()
        }
      }
    }
    case 'peers': {
      // Experts on remote nodes (router/): asks each peer what it serves, then one long-lived
      // stream per peer; failover to replicas, ExpertUnavailableError when none is left.
      const { Router, NoPeerAnsweredError } = await import('../../router/index.js')
      const { SpotChecker } = await import('../../router/spot-check.js')
      const { verifyParts } = await import('../verify.js')
      const verify =
        spec.verify != null
          ? await verifyParts(spec.verify, bundle, (l) => opts.logger?.warn(l))
          : null
      const spotCheck =
        verify != null ? new SpotChecker({ ...verify.options, modelId: bundle.modelId }) : undefined
      const router = await Router.init({
        opts: {
          spotCheck,
          peers: spec.peers,
          modelId: bundle.modelId,
          hidden: bundle.config.hiddenSize,
          wireDType: spec.wireDType,
          busyPollUs: spec.busyPollUs,
          calls: opts.calls
        }
      }).catch(async (err: unknown) => {
        await verify?.close()
        if (err instanceof NoPeerAnsweredError)
          throw new UserError(
            `${err.message} — check the --peers addresses and that those nodes run this bundle`
          )
        throw err
      })
      const missing = router.missing(bundle.config.numLayers, bundle.config.numExperts)
      if (missing.length > 0)
        opts.logger?.warn(
          `no peer serves ${missing.length} (layer, expert) pairs; tokens routed there will be degraded`
        )
      return {
        executor: router.executor,
        describe: `remote (${router.routes.table.peers.size} peers, ${spec.wireDType} on the wire, ${spec.verify?.rate ?? 0} of calls spot-checked)`,
        close: async () => {
          await router.close()
          await verify?.close()
        },
        ...(verify != null && spotCheck != null
          ? { verification: () => verify.summary(spotCheck) }
          : {})
      }
    }
  }
}
