// `pov generate`: load the bundle, the dense runtime and an expert executor, stream tokens.
import { loadBundle } from '../../model/bundle/load.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { generate, type GenerationSummary } from '../../model/generate.js'
import { openDraft, type Draft } from '../../model/draft/index.js'
import { loadTokenizer, type PovTokenizer } from '../../model/tokenizer.js'
import { UserError } from '../errors.js'
import { openExecutor, type OpenedExecutor } from './executor.js'
import { loadDraftLength, saveDraftLength, type DraftLengthKey } from './draft-length.js'
import type { DraftLength } from '../../model/speculative.js'
import type { Bundle } from '../../model/bundle/load.js'
import type { GenerateArgs } from './options.js'

export interface GenerateIo {
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
  /** Progress lines on stderr (TTY, not --json). */
  progress: boolean
  /** Debug log lines (what happened to the kept adaptive-k measurements). */
  debug?: (line: string) => void
}

/** Incremental detokenisation: decode everything so far and print the new suffix, holding back a
 *  trailing U+FFFD (a multi-byte character split across tokens). */
class TextStream {
  private printed = ''
  constructor(
    private readonly tok: PovTokenizer,
    private readonly out: GenerateIo['stdout']
  ) {}
  push(ids: number[], final = false): void {
    let text = this.tok.decode(ids)
    if (!final) text = text.replace(/\uFFFD+$/, '')
    if (!text.startsWith(this.printed)) return // a later token rewrote the tail: wait for the end
    this.out.write(text.slice(this.printed.length))
    this.printed = text
  }
}

/**
 * `runGenerate` on the terminal (`pov generate`, `pov infer`): tokens to stdout, progress to
 * stderr when it is a TTY and the output is not --json; Ctrl-C aborts the generation.
 */
export async function runGenerateInTerminal(
  args: GenerateArgs,
  debug?: (line: string) => void,
  open?: (bundle: Bundle) => Promise<OpenedExecutor>
): Promise<GenerationSummary & { text: string }> {
  const ac = new AbortController()
  const onSigint = (): void => {
    ac.abort(new Error('interrupted'))
  }
  process.once('SIGINT', onSigint)
  try {
    return await runGenerate(
      args,
      {
        stdout: process.stdout,
        stderr: process.stderr,
        progress: process.stderr.isTTY === true && !args.json,
        debug
      },
      ac.signal,
      open
    )
  } finally {
    process.off('SIGINT', onSigint)
  }
}

/**
 * `open` replaces the executor chosen by `args.executor` (pov infer passes the paying router);
 * its `report` is printed after the tokens (and included as `payment` in --json).
 */
export async function runGenerate(
  args: GenerateArgs,
  io: GenerateIo,
  signal?: AbortSignal,
  open?: (bundle: Bundle) => Promise<OpenedExecutor>
): Promise<GenerationSummary & { text: string }> {
  const say = (s: string): void => {
    if (io.progress) io.stderr.write(`${s}\n`)
  }
  const bundle = await loadBundle(args.model, { verify: 'lazy' })
  const tokenizer = await loadTokenizer(bundle.dir)
  const promptIds = 'ids' in args.prompt ? args.prompt.ids : tokenizer.encode(args.prompt.text)
  const V = bundle.config.vocabSize
  const bad = promptIds.find((id) => id >= V)
  if (bad !== undefined)
    throw new UserError(
      `prompt token id ${bad} is outside the vocabulary of ${bundle.modelId} (vocab_size ${V})`
    )
  if (promptIds.length === 0) throw new UserError('the prompt is empty')

  say(`pov generate: model ${bundle.modelId}, ${promptIds.length} prompt tokens, loading…`)
  // the dense runs alternate with expert runs (other ORT sessions here, or waits on the network):
  // an idle-spinning pool only takes cores from the one working (single process on a 2-vCPU AMD EPYC VM, 2026-12:
  // decode 23 tok/s spinning, 36-41 not) or from nodes sharing the machine
  const dense = await loadDenseRuntime(bundle, { device: args.device, allowSpinning: false })
  try {
    const ex =
      open != null
        ? await open(bundle)
        : await openExecutor(args.executor, bundle, { device: args.device })
    const draft: Draft | null = args.speculative.enabled ? await openDraft(bundle.dir) : null
    // adaptive k goes on from the last run's measurements (a fixed k measures nothing)
    const keep = args.speculative.dataDir
    const lengthKey: DraftLengthKey = {
      modelId: bundle.modelId,
      sampled: (args.temperature ?? 0) > 0
    }
    let length: DraftLength | undefined
    if (draft != null && args.speculative.draftTokens == null && keep != null)
      length = await loadDraftLength(keep, lengthKey, io.debug)
    try {
      say(
        `dense on ${dense.device}, experts ${ex.describe}${draft != null ? `, speculative decoding (draft ${draft.name}, k ${args.speculative.draftTokens ?? 'adaptive'})` : ''}`
      )
      const stream = args.json ? null : new TextStream(tokenizer, io.stdout)
      const tokens: number[] = []
      let logits: Float32Array | undefined
      const it = generate({
        dense,
        experts: ex.executor,
        promptIds,
        maxTokens: args.maxTokens,
        temperature: args.temperature,
        topP: args.topP,
        seed: args.seed,
        eosTokenId: args.ignoreEos ? null : bundle.config.eosTokenId,
        returnLogits: args.logits,
        signal,
        ...(draft != null
          ? { speculative: { draft, draftTokens: args.speculative.draftTokens, length } }
          : {})
      })
      let r
      try {
        r = await it.next()
        while (r.done !== true) {
          tokens.push(r.value.id)
          if (r.value.logits != null) logits = r.value.logits
          stream?.push(tokens)
          r = await it.next()
        }
      } catch (err) {
        // what was generated (and paid for) stays on screen: the tokens, then the error on its
        // own line, then the cost summary
        stream?.push(tokens, true)
        const why = err instanceof Error ? err.message : String(err)
        const message = `generation stopped after ${tokens.length} token(s): ${why}`
        if (args.json) {
          const out: Record<string, unknown> = {
            modelId: bundle.modelId,
            promptIds,
            tokens,
            text: tokenizer.decode(tokens),
            stopReason: 'error',
            error: message
          }
          if (ex.report != null) out.payment = ex.report().json
          io.stdout.write(
            JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n'
          )
        } else {
          if (tokens.length > 0) io.stdout.write('\n')
          io.stderr.write(`pov: ${message}\n`)
          if (ex.report != null) io.stdout.write(ex.report().text + '\n')
        }
        throw new UserError(message, 1, { reported: true })
      }
      stream?.push(tokens, true)
      const summary = r.value
      const text = tokenizer.decode(summary.tokens)
      if (args.json) {
        const out: Record<string, unknown> = {
          modelId: bundle.modelId,
          promptIds,
          tokens: summary.tokens,
          text,
          degraded: summary.degraded,
          stopReason: summary.stopReason,
          draft: draft?.name ?? null,
          timings: summary.timings
        }
        if (args.logits) out.logits = logits != null ? Array.from(logits) : null
        if (ex.report != null) out.payment = ex.report().json
        if (ex.verification != null) out.verification = ex.verification().json
        io.stdout.write(
          JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n'
        )
      } else {
        io.stdout.write('\n')
        const t = summary.timings
        io.stderr.write(
          `${t.generatedTokens} tokens (${summary.stopReason}); prefill ${t.prefillMs.toFixed(1)} ms (${t.prefillTokensPerSecond.toFixed(1)} tok/s), decode ${t.decodeTokensPerSecond.toFixed(1)} tok/s${draft != null ? ` (${t.rounds} rounds, ${t.acceptedTokens}/${t.draftedTokens} drafted tokens accepted)` : ''}${summary.degraded ? '; DEGRADED: some experts were unavailable and substituted' : ''}\n`
        )
        if (ex.report != null) io.stdout.write(ex.report().text + '\n')
        if (ex.verification != null) io.stderr.write(ex.verification().text + '\n')
      }
      return { ...summary, text }
    } finally {
      // what was measured before a failure is measured all the same
      if (length != null && keep != null) await saveDraftLength(keep, lengthKey, length, io.debug)
      await draft?.close?.()
      await ex.close()
    }
  } finally {
    await dense.close()
  }
}
