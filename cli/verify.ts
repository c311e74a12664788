// Spot-check flags shared by `pov generate --peers` and `pov infer`, and the SpotChecker they
// build (router/spot-check.ts): rate, the router's own experts as a referee, where convictions
// and evidence files are kept.
import { join } from 'node:path'
import type { Command } from 'commander'
import type { Bundle } from '../model/bundle/load.js'
import type { ExpertExecutor } from '../model/generate.js'
import {
  DEFAULT_VERIFY_RATE,
  type SpotChecker,
  type SpotCheckOptions
} from '../router/spot-check.js'
import { Reputation } from '../router/reputation.js'
import { DEFAULT_DATA_DIR } from './options.js'
import { UserError } from './errors.js'

export interface VerifyCliOptions {
  verifyRate?: string
  verifyLocal?: boolean
  reputationFile?: string
  evidenceDir?: string
}

export interface VerifySpec {
  rate: number
  /** Load the bundle's experts here as a referee. */
  local: boolean
  reputationFile: string
  evidenceDir: string
}

export function addVerifyOptions(cmd: Command): Command {
  return cmd
    .option(
      '--verify-rate <p>',
      `fraction of expert calls re-run on another operator's replica (or the router's own run) and compared, 0..1 (default ${DEFAULT_VERIFY_RATE}); 1: no answer is used before a second operator or the router confirms it`
    )
    .option(
      '--verify-local',
      'load every expert of the bundle here at start (default: the router loads just the one expert a mismatch needs, when it needs it)'
    )
    .option(
      '--reputation-file <file>',
      'where nodes convicted of wrong answers are kept (default: <data-dir>/router/reputation.json)'
    )
    .option(
      '--evidence-dir <dir>',
      'where fault evidence files are written (default: <data-dir>/evidence)'
    )
}

export function parseVerifyArgs(o: VerifyCliOptions, dataDir = DEFAULT_DATA_DIR): VerifySpec {
  let rate = DEFAULT_VERIFY_RATE
  if (o.verifyRate != null) {
    rate = Number(o.verifyRate)
    if (o.verifyRate.trim() === '' || !(rate >= 0 && rate <= 1))
      throw new UserError(
        `invalid --verify-rate "${o.verifyRate}": expected a fraction from 0 to 1, e.g. 0.02`
      )
  }
  return {
    rate,
    local: o.verifyLocal === true,
    reputationFile: o.reputationFile ?? join(dataDir, 'router', 'reputation.json'),
    evidenceDir: o.evidenceDir ?? join(dataDir, 'evidence')
  }
}

type BaseOptions = Omit<SpotCheckOptions, 'modelId' | 'operatorOf' | 'bindingOf'>

export interface VerifyParts {
  /** SpotChecker options without the network's operator / binding lookups. */
  options: BaseOptions
  summary: (checker: SpotChecker) => { text: string; json: unknown }
  close: () => Promise<void>
}

/** Reputation file, evidence directory and (with `spec.local`) every expert of the bundle as referee. */
export async function verifyParts(
  spec: VerifySpec,
  bundle: Bundle,
  log?: (line: string) => void
): Promise<VerifyParts> {
  let reputation: Reputation
  try {
    reputation = new Reputation(spec.reputationFile)
  } catch (err) {
    throw new UserError((err as Error).message)
  }
  // the referee of a mismatch (router/spot-check.ts): every expert loaded now with
  // --verify-local, else only the (layer, expert) a check needs, when it needs it
  let local: ExpertExecutor & { close: () => Promise<void> }
  if (spec.local) {
    const { loadExpertRuntime } = await import('../model/runtime/expert.js')
    local = await loadExpertRuntime(
      bundle,
      bundle.manifest.shards.map((s) => s.id),
      { intraOpNumThreads: 1, allowSpinning: false }
    )
  } else {
    const { OnDemandExperts } = await import('../router/referee.js')
    local = new OnDemandExperts(bundle, {
      onLoad: (e) => {
        log?.(
          `spot check: loaded expert ${e.expert} of layer ${e.layer} from the bundle to referee a mismatch (${e.ms.toFixed(0)} ms)`
        )
      }
    })
  }
  const faults: Array<{ peer: string; operator?: string; evidence?: string }> = []
  return {
    options: {
      rate: spec.rate,
      reputation,
      evidenceDir: spec.evidenceDir,
      local,
      onFault: (f) => {
        faults.push({ peer: f.peer, operator: f.operator, evidence: f.evidencePath })
        log?.(
          `node ${f.peer}${f.operator != null ? ` (operator ${f.operator})` : ''} answered expert ${f.expert} of layer ${f.layer} wrongly (distance ${f.distance.toExponential(2)}): no longer used; evidence ${f.evidencePath ?? f.evidenceHash}`
        )
      }
    },
    summary: (checker) => {
      const c = checker.counts
      return {
        json: { rate: spec.rate, ...c, faults },
        text: `spot checks (rate ${spec.rate}): ${c.agreed} agreed, ${c.convicted} convicted, ${c.undecided} undecided, ${c.unchecked} without a second replica${faults.map((f) => `\n  convicted ${f.peer}${f.operator != null ? ` (${f.operator})` : ''}: ${f.evidence ?? ''}`).join('')}`
      }
    },
    close: async () => {
      await local.close()
    }
  }
}
