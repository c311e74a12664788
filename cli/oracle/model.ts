// The model an oracle command answers with: the bundle (its dense part here), its tokenizer, and
// experts `--local` (all in this process) or on `--peers` — the executors of `pov generate`.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Option, type Command } from 'commander'
import { loadBundle } from '../../model/bundle/load.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { DEVICES, type Device } from '../../model/experts.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import type { OracleModel, OracleRun } from '../../router/oracle.js'
import type { RequestView } from '../../chain/oracle.js'
import { openExecutor } from '../generate/executor.js'
import { collectList } from '../options.js'
import { UserError } from '../errors.js'

export interface ModelCliOptions {
  bundle: string
  local?: boolean
  peers?: string[]
  device: string
}

export function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--bundle <dir>', 'bundle of the requested model (the dense part runs here)')
    .option('--local', 'run every expert in this process')
    .option(
      '--peers <multiaddrs...>',
      'experts on these nodes (multiaddrs with /p2p/<PeerId>, repeat or comma-separate)',
      collectList
    )
    .addOption(
      new Option('--device <device>', 'where the dense part (and local experts) run')
        .choices([...DEVICES])
        .default('cpu')
        .env('POV_DEVICE')
    )
}

/** Opens the bundle, its dense runtime and the experts; `close` releases all of them. */
export async function openOracleModel(
  o: ModelCliOptions
): Promise<OracleModel & { close: () => Promise<void> }> {
  const remote = o.peers != null && o.peers.length > 0
  if ((o.local === true) === remote)
    throw new UserError('say where the experts run: --local or --peers MULTIADDR,…')
  const device = o.device as Device
  const bundle = await loadBundle(o.bundle, { verify: 'lazy' })
  const tokenizer = await loadTokenizer(bundle.dir)
  const dense = await loadDenseRuntime(bundle, { device, allowSpinning: false })
  try {
    const ex = await openExecutor(
      remote ? { kind: 'peers', peers: o.peers!, wireDType: 'fp32' } : { kind: 'local' },
      bundle,
      { device }
    )
    return {
      modelId: bundle.modelId,
      dense,
      experts: ex.executor,
      tokenizer,
      eosTokenId: bundle.config.eosTokenId,
      vocabSize: bundle.config.vocabSize,
      describe: ex.describe,
      close: async () => {
        await ex.close()
        await dense.close()
      }
    }
  } catch (err) {
    await dense.close()
    throw err
  }
}

/** Writes a run's evidence file under `<data-dir>/oracle/<chainId>/`; returns its file:// URI. */
export async function saveEvidence(
  dataDir: string,
  chainId: number,
  v: Pick<RequestView, 'id'>,
  run: OracleRun
): Promise<string> {
  const dir = join(dataDir, 'oracle', String(chainId))
  await mkdir(dir, { recursive: true })
  const file = join(dir, `request-${v.id}-${run.result.evidenceHash.slice(2, 10)}.json`)
  await writeFile(file, run.evidence)
  return pathToFileURL(file).href
}
