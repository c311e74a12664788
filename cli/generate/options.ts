// The generation flags: `pov generate` and `pov infer` share the sampling, device and wire flags
// (addSamplingOptions, parseGenerateArgs, parseWireArgs). Parsing and validation only; defaults of
// the library stay in the library.
import { Option, type Command } from 'commander'
import { DEVICES, type Device } from '../../model/experts.js'
import { UserError } from '../errors.js'
import { busyPollOption, collectList, parseBusyPollUs } from '../options.js'
import {
  addVerifyOptions,
  parseVerifyArgs,
  type VerifyCliOptions,
  type VerifySpec
} from '../verify.js'

export interface GenerateCliOptions extends VerifyCliOptions {
  model: string
  local?: boolean
  peers?: string[]
  wireDtype?: string
  busyPollUs?: string
  prompt?: string
  promptIds?: string
  maxTokens: string
  temperature?: string
  topP?: string
  seed?: string
  device: string
  ignoreEos?: boolean
  json?: boolean
  logits?: boolean
  /** --speculative / --no-speculative; undefined: neither given. */
  speculative?: boolean
  draftTokens?: string
  /** --data-dir (`pov generate`; `pov infer`'s common option). */
  dataDir?: string
}

/** Speculative decoding (model/speculative.ts) as the flags asked for it. */
export interface SpeculativeArgs {
  enabled: boolean
  /** Fixed tokens drafted per round; undefined: adaptive. */
  draftTokens?: number
  /** Adaptive k's measurements are read from and written to this state directory's
   *  speculative/ (cli/generate/draft-length.ts); undefined: every run starts from the prior. */
  dataDir?: string
}

export interface GenerateArgs {
  model: string
  /** Where experts run; exactly one executor kind (see executor.ts). */
  executor:
    | { kind: 'local' }
    | {
        kind: 'peers'
        peers: string[]
        wireDType: 'fp32' | 'fp16'
        busyPollUs?: number
        /** Spot re-execution (router/spot-check.ts); none: every answer is trusted. */
        verify?: VerifySpec
      }
  prompt: { text: string } | { ids: number[] }
  maxTokens: number
  temperature?: number
  topP?: number
  seed?: number
  ignoreEos: boolean
  device: Device
  json: boolean
  logits: boolean
  speculative: SpeculativeArgs
}

/** The flags `pov generate` and `pov infer` share (the prompt text and --json are their own). */
export type SamplingCliOptions = Pick<
  GenerateCliOptions,
  | 'wireDtype'
  | 'busyPollUs'
  | 'promptIds'
  | 'maxTokens'
  | 'temperature'
  | 'topP'
  | 'seed'
  | 'device'
  | 'ignoreEos'
  | 'logits'
  | 'speculative'
  | 'draftTokens'
>

/** Sampling, device and wire flags, shared by `pov generate` and `pov infer`. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--wire-dtype <dtype>', 'tensor encoding on the wire to remote experts')
        .choices(['fp32', 'fp16'])
        .default('fp32')
    )
    .addOption(busyPollOption())
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, e.g. 1,2,3')
    .option('--max-tokens <n>', 'tokens to generate at most', '32')
    .option('--temperature <t>', 'sampling temperature; 0 = greedy (default)')
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]')
    .option('--seed <s>', 'PRNG seed for sampling')
    .option('--ignore-eos', 'do not stop at the end-of-sequence token')
    .addOption(
      new Option('--device <device>', 'where the dense part (and local experts) run')
        .choices([...DEVICES])
        .default('cpu')
        .env('POV_DEVICE')
    )
    .option('--logits', "with --json: include the last position's logits")
    .addOption(speculativeOption())
    .addOption(noSpeculativeOption())
    .addOption(draftTokensOption())
}

/** `--speculative`: also `pov serve`'s. */
export function speculativeOption(): Option {
  return new Option(
    '--speculative',
    "speculative decoding: a local draft proposes tokens, the experts check several in one round (the bundle's draft, else n-gram lookup); default with --peers, in pov infer and pov serve"
  )
}

export function noSpeculativeOption(): Option {
  return new Option('--no-speculative', 'one token per round of expert calls')
}

export function draftTokensOption(): Option {
  return new Option(
    '--draft-tokens <k>',
    'tokens drafted per round (default: adaptive, from the measured acceptance and round time)'
  )
}

/** --speculative, --no-speculative, --draft-tokens; `byDefault`: on when neither is given. */
export function parseSpeculativeArgs(
  o: Pick<GenerateCliOptions, 'speculative' | 'draftTokens'>,
  byDefault: boolean
): SpeculativeArgs {
  const enabled = o.speculative ?? byDefault
  const out: SpeculativeArgs = { enabled }
  if (o.draftTokens != null) {
    if (o.speculative === false)
      throw new UserError('--draft-tokens goes with speculative decoding, not --no-speculative')
    const k = num(
      o.draftTokens,
      '--draft-tokens',
      (n) => Number.isSafeInteger(n) && n >= 0 && n <= 64,
      'an integer from 0 to 64'
    )!
    out.enabled = true
    out.draftTokens = k
  }
  return out
}

export function addGenerateOptions(cmd: Command): Command {
  return addSamplingOptions(
    addVerifyOptions(cmd)
      .requiredOption('--model <bundle>', 'model bundle directory (from `pov model convert`)')
      .option('--local', 'run every expert in this process (loads all shards of the bundle)')
      .option(
        '--peers <multiaddrs...>',
        'experts on these nodes (multiaddrs with /p2p/<PeerId>, repeat or comma-separate); the dense part runs here',
        collectList
      )
      .option(
        '--prompt <text>',
        "prompt text (tokenized with the bundle's tokenizer.json, BOS added)"
      )
  ).option('--json', 'print one JSON object at the end instead of streaming text')
}

/** --wire-dtype and --busy-poll-us: how the router talks to remote experts. */
export function parseWireArgs(o: Pick<GenerateCliOptions, 'wireDtype' | 'busyPollUs'>): {
  wireDType: 'fp32' | 'fp16'
  busyPollUs?: number
} {
  return {
    wireDType: o.wireDtype === 'fp16' ? 'fp16' : 'fp32',
    ...(o.busyPollUs != null ? { busyPollUs: parseBusyPollUs(o.busyPollUs) } : {})
  }
}

function num(
  v: string | undefined,
  flag: string,
  check: (n: number) => boolean,
  what: string
): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || !check(n))
    throw new UserError(`invalid ${flag} "${v}": expected ${what}`)
  return n
}

export function parseGenerateArgs(o: GenerateCliOptions): GenerateArgs {
  const remote = o.peers != null && o.peers.length > 0
  if ((o.local === true) === remote)
    throw new UserError(
      'say where the experts run: --local (all experts in this process) or --peers MULTIADDR,… (remote nodes)'
    )
  if ((o.prompt == null) === (o.promptIds == null))
    throw new UserError('give exactly one of --prompt TEXT or --prompt-ids 1,2,3')
  let prompt: GenerateArgs['prompt']
  if (o.promptIds != null) {
    const ids = o.promptIds
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number)
    if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n < 0))
      throw new UserError(
        `invalid --prompt-ids "${o.promptIds}": expected comma-separated token ids, e.g. 1,2,3`
      )
    prompt = { ids }
  } else {
    prompt = { text: o.prompt! }
  }
  const args: GenerateArgs = {
    model: o.model,
    executor: remote
      ? { kind: 'peers', peers: o.peers!, ...parseWireArgs(o), verify: parseVerifyArgs(o) }
      : { kind: 'local' },
    prompt,
    maxTokens: num(
      o.maxTokens,
      '--max-tokens',
      (n) => Number.isSafeInteger(n) && n >= 0,
      'a non-negative integer'
    )!,
    ignoreEos: o.ignoreEos === true,
    device: o.device as Device,
    json: o.json === true,
    logits: o.logits === true,
    // --local is the single-process reference: plain unless asked
    speculative: parseSpeculativeArgs(o, remote)
  }
  if (o.dataDir != null) args.speculative.dataDir = o.dataDir
  const t = num(o.temperature, '--temperature', (n) => n >= 0, 'a number >= 0')
  if (t !== undefined) args.temperature = t
  const p = num(o.topP, '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]')
  if (p !== undefined) args.topP = p
  const s = num(o.seed, '--seed', (n) => Number.isSafeInteger(n), 'an integer')
  if (s !== undefined) args.seed = s
  if (args.logits && !args.json) throw new UserError('--logits needs --json')
  return args
}
