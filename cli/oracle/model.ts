// The model an oracle command answers with: the bundle (its dense part here), its tokenizer, and
// experts `--paid` (registry nodes paid from this key's escrow deposit, as `pov infer` does),
// `--local` (all in this process) or on unpaid `--peers`. Every expert call is recorded for the
// evidence (router/oracle-evidence.ts): signed answers from nodes, unsigned ones from `--local`.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Option, type Command } from 'commander'
import { loadBundle, type Bundle } from '../../model/bundle/load.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { DEVICES, type Device } from '../../model/experts.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import type { OracleModel, OracleRun } from '../../router/oracle.js'
import { CallRecorder } from '../../router/oracle-evidence.js'
import type { RequestView } from '../../chain/oracle.js'
import { openExecutor } from '../generate/executor.js'
import { collectList } from '../options.js'
import { UserError } from '../errors.js'
import { loadSigner, parsePov, type ChainContext } from '../chain.js'
import type { CommonCliOptions } from '../options.js'

export interface ModelCliOptions {
  bundle: string
  local?: boolean
  paid?: boolean
  peers?: string[]
  maxPrice?: string
  device: string
}

/** The opened model; `prices` when paid: what the selected nodes charge per unit (POV wei). */
export type OpenedOracleModel = OracleModel & {
  close: () => Promise<void>
  /** The highest per-unit price among the paid nodes (null: experts are not paid). */
  maxPrice: bigint | null
  topK: number
  numLayers: number
}

export function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--bundle <dir>', 'bundle of the requested model (the dense part runs here)')
    .option(
      '--paid',
      'experts on registry nodes, each call paid from this key’s escrow deposit (`pov deposit`)'
    )
    .option('--max-price <pov>', 'with --paid: highest price per unit of work accepted')
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

/**
 * Opens the bundle, its dense runtime and the experts; `close` releases all of them. `chain`:
 * where `--paid` finds the registry and pays (the fulfiller's own key and deposit).
 */
export async function openOracleModel(
  o: ModelCliOptions & Partial<CommonCliOptions>,
  chain?: ChainContext
): Promise<OpenedOracleModel> {
  const remote = o.peers != null && o.peers.length > 0
  const modes = [o.local === true, remote, o.paid === true].filter(Boolean).length
  if (modes !== 1)
    throw new UserError('say where the experts run: one of --paid, --local or --peers MULTIADDR,…')
  if (o.maxPrice != null && o.paid !== true) throw new UserError('--max-price goes with --paid')
  const device = o.device as Device
  const bundle = await loadBundle(o.bundle, { verify: 'lazy' })
  const tokenizer = await loadTokenizer(bundle.dir)
  const dense = await loadDenseRuntime(bundle, { device, allowSpinning: false })
  const base = {
    modelId: bundle.modelId,
    dense,
    tokenizer,
    eosTokenId: bundle.config.eosTokenId,
    vocabSize: bundle.config.vocabSize,
    hidden: bundle.config.hiddenSize,
    topK: bundle.config.topK,
    numLayers: bundle.config.numLayers
  }
  try {
    if (o.paid === true) {
      const p = await openPaid(o, bundle, chain)
      return {
        ...base,
        ...p,
        close: async () => {
          await p.close()
          await dense.close()
        }
      }
    }
    const recorder = new CallRecorder()
    const ex = await openExecutor(
      remote ? { kind: 'peers', peers: o.peers!, wireDType: 'fp32' } : { kind: 'local' },
      bundle,
      { device, calls: { onCall: recorder.onRemote } }
    )
    return {
      ...base,
      experts: remote ? ex.executor : recorder.wrapLocal(ex.executor),
      recorder,
      maxPrice: null,
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

/** Registry nodes, paid per call from the signer's escrow deposit (router/paid.ts, like `pov infer`). */
async function openPaid(
  o: ModelCliOptions & Partial<CommonCliOptions>,
  bundle: Bundle,
  chain: ChainContext | undefined
): Promise<
  Pick<OpenedOracleModel, 'experts' | 'recorder' | 'spent' | 'maxPrice' | 'describe'> & {
    close: () => Promise<void>
  }
> {
  if (chain == null) throw new UserError('--paid needs the chain (--rpc, --deployment)')
  const { openPaidRouter, PaymentSetupError } = await import('../../router/paid.js')
  const signer = await loadSigner(o as CommonCliOptions, chain)
  let paid: Awaited<ReturnType<typeof openPaidRouter>> | undefined
  const recorder = new CallRecorder({
    operatorOf: (peer) => paid?.nodes.get(peer)?.operator,
    chargeOf: (peer, rows) => {
      const n = paid?.nodes.get(peer)
      return n == null ? undefined : n.price * BigInt(rows)
    }
  })
  try {
    paid = await openPaidRouter({
      contracts: chain.contracts,
      chainId: chain.chainId,
      registryAddress: chain.deployment.contracts.registry,
      signer,
      modelId: bundle.modelId,
      hidden: bundle.config.hiddenSize,
      shardCount: bundle.manifest.shards.length,
      shardExperts: bundle.manifest.shards.map((s) => s.experts),
      maxPrice: o.maxPrice != null ? parsePov(o.maxPrice, '--max-price') : undefined,
      // fp32 on the wire: the evidence's hashes are of the tensors a local run computes too
      wireDType: 'fp32',
      calls: { onCall: recorder.onRemote },
      ledgerPath: join(
        o.dataDir ?? '.',
        'payer',
        `${chain.chainId}-${chain.deployment.contracts.escrow}-${signer.address}.json`
      )
    })
  } catch (err) {
    if (err instanceof PaymentSetupError) throw new UserError(err.message)
    throw err
  }
  const p = paid
  const spent = (): bigint => p.costs().reduce((a, c) => a + c.amount + c.prepaid, 0n)
  return {
    experts: p.router.executor,
    recorder,
    spent,
    maxPrice: [...p.nodes.values()].reduce((a, n) => (n.price > a ? n.price : a), 0n),
    describe: `${p.nodes.size} paid nodes from the registry`,
    close: async () => {
      await p.close()
    }
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
