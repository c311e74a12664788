// `pov eval`: perplexity of a bundle over a text file, experts local or on --peers. The loop is
// model/eval.ts; this file parses flags, opens the executor `pov generate` would, draws the bar.
import { readFile } from 'node:fs/promises'
import { Option, type Command } from 'commander'
import cliProgress from 'cli-progress'
import { loadBundle } from '../../model/bundle/load.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { perplexity, type PerplexityResult } from '../../model/eval.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { DEVICES, type Device } from '../../model/runtime/ort.js'
import { UserError } from '../errors.js'
import { collectList } from '../options.js'
import { openExecutor } from '../generate/executor.js'
import type { GenerateArgs } from '../generate/options.js'

/** Tokens scored per forward pass: the pass is this plus <s>, which is the tiny model's training
 *  length (tools/train-tiny scores held-out text the same way). */
export const DEFAULT_EVAL_WINDOW = 127

interface EvalCliOptions {
  model: string
  text: string
  local?: boolean
  peers?: string[]
  wireDtype: 'fp32' | 'fp16'
  window: string
  maxTokens?: string
  device: string
  json?: boolean
}

export interface EvalArgs {
  model: string
  text: string
  executor: GenerateArgs['executor']
  window: number
  maxTokens?: number
  device: Device
  json: boolean
}

function posInt(v: string, flag: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 1)
    throw new UserError(`invalid ${flag} "${v}": expected a positive integer`)
  return n
}

export function parseEvalArgs(o: EvalCliOptions): EvalArgs {
  const remote = o.peers != null && o.peers.length > 0
  if ((o.local === true) === remote)
    throw new UserError(
      'say where the experts run: --local (all experts in this process) or --peers MULTIADDR,… (remote nodes)'
    )
  return {
    model: o.model,
    text: o.text,
    executor: remote
      ? { kind: 'peers', peers: o.peers!, wireDType: o.wireDtype }
      : { kind: 'local' },
    window: posInt(o.window, '--window'),
    ...(o.maxTokens != null ? { maxTokens: posInt(o.maxTokens, '--max-tokens') } : {}),
    device: o.device as Device,
    json: o.json === true
  }
}

export interface EvalIo {
  stdout: { write: (s: string) => unknown }
  /** Where the progress bar goes; null: no bar. */
  progress: NodeJS.WritableStream | null
}

export async function runEval(
  a: EvalArgs,
  io: EvalIo,
  signal?: AbortSignal
): Promise<PerplexityResult & { modelId: string }> {
  let text: string
  try {
    text = await readFile(a.text, 'utf8')
  } catch (err) {
    throw new UserError(`cannot read --text ${a.text}: ${(err as Error).message}`)
  }
  const bundle = await loadBundle(a.model, { verify: 'lazy' })
  const tokenizer = await loadTokenizer(bundle.dir)
  let ids = tokenizer.encode(text, { addSpecialTokens: false })
  if (a.maxTokens != null) ids = ids.slice(0, a.maxTokens)
  if (ids.length === 0) throw new UserError(`${a.text} has no tokens to score`)
  const dense = await loadDenseRuntime(bundle, { device: a.device, allowSpinning: false })
  try {
    const ex = await openExecutor(a.executor, bundle, { device: a.device })
    const bar =
      io.progress != null
        ? new cliProgress.SingleBar(
            {
              format: `eval [{bar}] {percentage}% | {value}/{total} tokens | eta {eta}s`,
              hideCursor: true,
              stream: io.progress
            },
            cliProgress.Presets.shades_classic
          )
        : null
    bar?.start(ids.length, 0)
    try {
      const r = await perplexity({
        dense,
        experts: ex.executor,
        ids,
        window: a.window,
        bosTokenId: bundle.config.bosTokenId,
        signal,
        onProgress: (done) => bar?.update(done)
      })
      bar?.stop()
      const out = { modelId: bundle.modelId, ...r }
      io.stdout.write(
        a.json
          ? JSON.stringify({ ...out, experts: ex.describe, window: a.window }) + '\n'
          : `perplexity ${r.perplexity.toFixed(4)} (${r.nll.toFixed(5)} nats/token) over ${r.tokens} tokens in ${r.windows} windows of ${a.window}; experts ${ex.describe}${r.degraded ? '; DEGRADED: some experts were unavailable and substituted' : ''}\n`
      )
      return out
    } finally {
      bar?.stop()
      await ex.close()
    }
  } finally {
    await dense.close()
  }
}

/** Registers `pov eval`. */
export function register(program: Command): void {
  program
    .command('eval')
    .description('perplexity of a model bundle over a text file (experts --local or on --peers)')
    .requiredOption('--model <bundle>', 'model bundle directory (from `pov model convert`)')
    .requiredOption('--text <file>', 'UTF-8 text to score (tokenized without BOS)')
    .option('--local', 'run every expert in this process (loads all shards of the bundle)')
    .option(
      '--peers <multiaddrs...>',
      'experts on these nodes (multiaddrs with /p2p/<PeerId>, repeat or comma-separate)',
      collectList
    )
    .addOption(
      new Option('--wire-dtype <dtype>', 'with --peers: tensor encoding on the wire')
        .choices(['fp32', 'fp16'])
        .default('fp32')
    )
    .option('--window <n>', 'tokens scored per forward pass', String(DEFAULT_EVAL_WINDOW))
    .option('--max-tokens <n>', 'score only the first n tokens of the text')
    .addOption(
      new Option('--device <device>', 'where the dense part (and local experts) run')
        .choices([...DEVICES])
        .default('cpu')
        .env('POV_DEVICE')
    )
    .option('--json', 'print one JSON object instead of a line of text')
    .action(async (o: EvalCliOptions) => {
      const args = parseEvalArgs(o)
      const ac = new AbortController()
      const onSigint = (): void => {
        ac.abort(new Error('interrupted'))
      }
      process.once('SIGINT', onSigint)
      try {
        await runEval(
          args,
          {
            stdout: process.stdout,
            progress: process.stderr.isTTY === true && !args.json ? process.stderr : null
          },
          ac.signal
        )
      } finally {
        process.off('SIGINT', onSigint)
      }
    })
}
