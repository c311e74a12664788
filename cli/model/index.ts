// `pov model …`: init-tiny (a random test checkpoint in HF format), convert (HF -> bundle),
// inspect (print a bundle's manifest summary; --verify hashes every artifact).
import { Option, type Command } from 'commander'
import cliProgress, { type SingleBar } from 'cli-progress'
import { writeTinyCheckpoint, tinyDefaults, type TinyOptions } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type ProgressEvent } from '../../model/bundle/index.js'
import { findDraft } from '../../model/draft/model-draft.js'
import { readMixtralConfig } from '../../model/config.js'
import { INT4_BLOCK, INT4_BLOCKS } from '../../model/onnx/expert.js'
import { UserError } from '../errors.js'

function int(name: string, min = 1): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min)
      throw new UserError(`--${name} must be an integer >= ${min}, got "${v}"`)
    return n
  }
}

function out(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(obj) + '\n' : text + '\n')
}

/** A progress reporter: a bar per stage on a TTY, nothing in --json mode or when piped. */
function progressBar(enabled: boolean): {
  onProgress: (e: ProgressEvent) => void
  stop: () => void
} {
  if (!enabled) return { onProgress: () => {}, stop: () => {} }
  let bar: SingleBar | null = null
  let stage = ''
  const stop = (): void => {
    bar?.stop()
    bar = null
  }
  return {
    stop,
    onProgress: (e) => {
      if (e.stage !== stage || bar == null) {
        stop()
        stage = e.stage
        const unit = e.stage === 'hash' ? 'bytes' : 'files'
        bar = new cliProgress.SingleBar(
          {
            format: `${e.stage.padEnd(8)} [{bar}] {percentage}% | {value}/{total} ${unit} | eta {eta}s`,
            hideCursor: true,
            stream: process.stderr
          },
          cliProgress.Presets.shades_classic
        )
        bar.start(e.total, e.done)
      }
      bar.setTotal(e.total)
      bar.update(e.done)
    }
  }
}

export function register(program: Command): void {
  const model = program.command('model').description('model checkpoints and bundles')

  model
    .command('init-tiny')
    .description(
      'write a tiny random Mixtral checkpoint in Hugging Face format (deterministic per seed)'
    )
    .argument('<dir>', 'output directory')
    .option('--seed <n>', 'PRNG seed', int('seed', 0), tinyDefaults.seed)
    .option('--layers <n>', 'decoder layers', int('layers'), tinyDefaults.layers)
    .option('--hidden <n>', 'hidden size (d_model)', int('hidden'), tinyDefaults.hidden)
    .option(
      '--intermediate <n>',
      'expert FFN size (d_ff)',
      int('intermediate'),
      tinyDefaults.intermediate
    )
    .option('--experts <n>', 'experts per layer', int('experts'), tinyDefaults.experts)
    .option('--top-k <n>', 'experts per token', int('top-k'), tinyDefaults.topK)
    .option('--heads <n>', 'attention heads', int('heads'), tinyDefaults.heads)
    .option('--kv-heads <n>', 'key/value heads', int('kv-heads'), tinyDefaults.kvHeads)
    .option('--vocab <n>', 'vocabulary size (>= 259)', int('vocab'), tinyDefaults.vocab)
    .option(
      '--sliding-window <n>',
      'attention sliding window (default: none)',
      int('sliding-window')
    )
    .addOption(
      new Option('--dtype <dtype>', 'weight dtype')
        .choices(['bf16', 'f16', 'f32'])
        .default(tinyDefaults.dtype)
    )
    .option(
      '--shards <n>',
      'number of safetensors files (>1 writes an index)',
      int('shards'),
      tinyDefaults.shards
    )
    .option('--json', 'machine-readable output')
    .action(
      async (dir: string, o: TinyOptions & { topK: number; kvHeads: number; json?: boolean }) => {
        const opts: TinyOptions = {
          seed: o.seed,
          layers: o.layers,
          hidden: o.hidden,
          intermediate: o.intermediate,
          experts: o.experts,
          topK: o.topK,
          heads: o.heads,
          kvHeads: o.kvHeads,
          vocab: o.vocab,
          dtype: o.dtype,
          shards: o.shards,
          slidingWindow: o.slidingWindow ?? null
        }
        try {
          await writeTinyCheckpoint(dir, opts)
        } catch (err) {
          throw new UserError(`init-tiny: ${(err as Error).message}`)
        }
        const config = await readMixtralConfig(dir)
        out(
          o.json === true,
          { dir, config },
          `wrote a tiny Mixtral checkpoint to ${dir} (${config.numLayers} layers, d_model ${config.hiddenSize}, ${config.numExperts} experts top-${config.topK}, vocab ${config.vocabSize}, ${opts.dtype}, seed ${opts.seed})`
        )
      }
    )

  model
    .command('convert')
    .description('convert a Hugging Face MixtralForCausalLM checkpoint into a pov model bundle')
    .argument('<hf-dir>', 'checkpoint directory (config.json, *.safetensors, tokenizer.json)')
    .argument('<bundle-dir>', 'output bundle directory (new or empty)')
    .addOption(
      new Option('--quant <q>', 'expert weight quantisation')
        .choices(['none', 'int8', 'int4'])
        .default('none')
    )
    .addOption(
      new Option(
        '--int4-block <n>',
        `int4 block size along K (default ${INT4_BLOCK}, which fits a Mixtral 8x7B shard in 4 GB; 32 is the best quality, docs/quality.md)`
      ).choices(INT4_BLOCKS.map(String))
    )
    .option('--force', 'replace an existing bundle in <bundle-dir>')
    .option('--copy', 'copy the checkpoint files into the bundle instead of hard-linking them')
    .option('--experts-only', 'skip the dense (router) graphs')
    .option(
      '--draft <dir>',
      'speculative-decoding draft to carry into the bundle (default: <hf-dir>/draft when present)'
    )
    .option('--no-draft', 'carry no draft')
    .option('--json', 'machine-readable output, no progress bar')
    .action(
      async (
        hfDir: string,
        bundleDir: string,
        o: {
          quant: 'none' | 'int8' | 'int4'
          int4Block?: string
          force?: boolean
          copy?: boolean
          expertsOnly?: boolean
          draft?: string | false
          json?: boolean
        }
      ) => {
        const bar = progressBar(o.json !== true && process.stderr.isTTY === true)
        const t0 = performance.now()
        let manifest
        try {
          manifest = await convertCheckpoint(hfDir, bundleDir, {
            quant: o.quant,
            int4Block: o.int4Block == null ? undefined : Number(o.int4Block),
            force: o.force,
            link: o.copy === true ? 'copy' : 'hardlink',
            onProgress: bar.onProgress,
            dense: o.expertsOnly !== true,
            draft: o.draft
          })
        } catch (err) {
          const e = err as Error
          if (['CheckpointError', 'ConfigError', 'ConvertError'].includes(e.name))
            throw new UserError(`convert: ${e.message}`)
          throw err
        } finally {
          bar.stop()
        }
        const seconds = (performance.now() - t0) / 1000
        const bytes = manifest.artifacts.reduce((a, b) => a + b.size, 0)
        const draft = await findDraft(bundleDir)
        out(
          o.json === true,
          {
            bundleDir,
            modelId: manifest.modelId,
            quant: manifest.quant,
            dtype: manifest.dtype,
            artifacts: manifest.artifacts.length,
            shards: manifest.shards.length,
            config: {
              numLayers: manifest.config.numLayers,
              numExperts: manifest.config.numExperts
            },
            bytes,
            draft: draft?.name ?? null,
            seconds
          },
          `bundle ${bundleDir}\n  model id  ${manifest.modelId}\n  dtype     ${manifest.dtype}, quant ${manifest.quant}\n  artifacts ${manifest.artifacts.length} (${(bytes / 2 ** 20).toFixed(1)} MiB), ${manifest.shards.length} shards\n  draft     ${draft == null ? 'none' : `${draft.name} (draft/, not part of the model id)`}\n  took      ${seconds.toFixed(1)} s`
        )
      }
    )

  model
    .command('inspect')
    .description("print a bundle's model id, config and shards")
    .argument('<bundle-dir>')
    .option('--verify', 'hash every artifact against the manifest')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { verify?: boolean; json?: boolean }) => {
      let b
      try {
        b = await loadBundle(dir, { verify: o.verify === true ? 'eager' : 'none' })
      } catch (err) {
        throw new UserError(`inspect: ${(err as Error).message}`)
      }
      const m = b.manifest
      const c = b.config
      out(
        o.json === true,
        {
          modelId: b.modelId,
          verified: o.verify === true,
          config: c,
          dtype: m.dtype,
          quant: m.quant,
          shards: m.shards.map((s) => ({ id: s.id, experts: s.experts.length })),
          artifacts: m.artifacts.length
        },
        `model id  ${b.modelId}${o.verify === true ? '  (all artifacts verified)' : ''}\n` +
          `config    ${c.numLayers} layers, d_model ${c.hiddenSize}, d_ff ${c.intermediateSize}, ${c.numExperts} experts top-${c.topK}, heads ${c.numHeads}/${c.numKvHeads}, vocab ${c.vocabSize}\n` +
          `weights   ${m.dtype}, quant ${m.quant}\n` +
          `shards    ${m.shards.map((s) => `${s.id}:${s.experts.length}`).join(' ')}  (id:experts)`
      )
    })
}
