// Draft benchmark: how often the committed draft of models/tiny-en (models/tiny-en/draft) guesses
// what the target itself produces, on held-out prompts, with the real target (the bundle's dense
// graphs + local experts, the `pov generate --local` path); the n-gram draft (no training) and
// the combination openDraft gives a bundle with a draft (model/draft/combined.ts) are measured
// the same way beside it.
//
//   greedy  the target's greedy continuation is computed once; speculative rounds are replayed
//           on it: the draft proposes k tokens after the accepted context, the longest prefix
//           equal to the target's tokens is accepted, the target adds its own next token. (At
//           temperature 0 this is exactly what speculative decoding does.) Acceptance = accepted
//           drafted tokens / drafted tokens; also mean accepted and mean tokens per round.
//   T = 1   real speculative sampling: the target scores context + k drafted tokens in one
//           pass; each drafted token is accepted with probability min(1, p/q), a rejection
//           resamples from max(0, p - q), a full acceptance adds a token drawn from p.
//   cost    milliseconds of draft compute per drafted token (its own KV cache, roll-back
//           included; wall clock, and CPU time, which a loaded machine does not inflate), and
//           per round.
//
//   npm run bench:draft [-- --prompts N] [--tokens N] [--ks 2,3,4,5,6] [--model HF_DIR]
// Last line: one JSON object with every figure.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { convertCheckpoint, loadBundle } from '../../model/bundle/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import { forwardAll, generateAll, type ScoreOptions } from '../../model/generate.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { sampleFrom, seededRandom, tokenDistribution } from '../../model/sampling.js'
import { CombinedDraft, NgramDraft, findDraft, loadModelDraft } from '../../model/draft/index.js'
import type { Draft } from '../../model/draft.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const ROOT = resolve(import.meta.dirname, '../..')
const MODEL = arg('model') ?? join(ROOT, 'models', 'tiny-en')
const PROMPTS = Number(arg('prompts') ?? 8)
const TOKENS = Number(arg('tokens') ?? 48)
const KS = (arg('ks') ?? '2,3,4,5,6').split(',').map(Number)

interface RoundStats {
  rounds: number
  drafted: number
  accepted: number
  generated: number
  draftMs: number
  /** CPU time of the draft (user + system), which the machine's load does not inflate. */
  draftCpuMs: number
}

function summary(s: RoundStats): Record<string, number> {
  const per = (a: number, b: number): number => (b > 0 ? a / b : 0)
  return {
    acceptance: per(s.accepted, s.drafted),
    drafted: s.drafted,
    meanAccepted: s.accepted / s.rounds,
    meanTokensPerRound: s.generated / s.rounds,
    draftMsPerToken: per(s.draftMs, s.drafted),
    draftCpuMsPerToken: per(s.draftCpuMs, s.drafted),
    draftMsPerRound: s.draftMs / s.rounds
  }
}

const empty = (): RoundStats => ({
  rounds: 0,
  drafted: 0,
  accepted: 0,
  generated: 0,
  draftMs: 0,
  draftCpuMs: 0
})

async function timedPropose(
  draft: Draft,
  ctx: number[],
  k: number,
  temperature: number,
  random: () => number,
  s: RoundStats
): Promise<{ tokens: number[]; q: Array<Float32Array | null> }> {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const p = await draft.propose(ctx, k, { temperature, topP: 1, random })
  const c1 = process.cpuUsage(c0)
  s.draftMs += performance.now() - t0
  s.draftCpuMs += (c1.user + c1.system) / 1000
  s.drafted += p.tokens.length
  return p
}

/** Replays greedy speculative rounds over the target's own greedy continuation `gen`. */
async function greedyRounds(
  draft: Draft,
  prompt: number[],
  gen: number[],
  k: number,
  s: RoundStats
): Promise<void> {
  let i = 0
  while (i < gen.length) {
    const kk = Math.min(k, gen.length - i - 1)
    const ctx = [...prompt, ...gen.slice(0, i)]
    const p = await timedPropose(draft, ctx, kk, 0, Math.random, s)
    let a = 0
    while (a < p.tokens.length && p.tokens[a] === gen[i + a]) a++
    s.accepted += a
    s.rounds++
    s.generated += a + 1
    i += a + 1
  }
}

/** Speculative sampling at temperature 1 with the real target, `tokens` generated tokens. */
async function sampledRounds(
  draft: Draft,
  target: ScoreOptions,
  vocab: number,
  prompt: number[],
  tokens: number,
  k: number,
  seed: number,
  s: RoundStats
): Promise<void> {
  const random = seededRandom(seed)
  const opts = { temperature: 1, topP: 1 }
  const gen: number[] = []
  while (gen.length < tokens) {
    const kk = Math.min(k, tokens - gen.length - 1)
    const ctx = [...prompt, ...gen]
    const prop = await timedPropose(draft, ctx, kk, 1, random, s)
    const { logits } = await forwardAll(target, [...ctx, ...prop.tokens])
    const row = (j: number): Float64Array =>
      tokenDistribution(
        logits.subarray((ctx.length - 1 + j) * vocab, (ctx.length + j) * vocab),
        opts
      )
    let j = 0
    let next = -1
    for (; j < prop.tokens.length; j++) {
      const p = row(j)
      const x = prop.tokens[j]
      // null: a deterministic draft, q one-hot at x
      const q = prop.q[j] ?? Float32Array.from({ length: vocab }, (_, v) => (v === x ? 1 : 0))
      if (random() < Math.min(1, p[x] / q[x])) continue
      const residual = new Float64Array(vocab)
      for (let v = 0; v < vocab; v++) residual[v] = Math.max(0, p[v] - q[v])
      next = sampleFrom(residual, random)!
      break
    }
    if (next < 0) next = sampleFrom(row(prop.tokens.length), random)!
    gen.push(...prop.tokens.slice(0, j), next)
    s.accepted += j
    s.rounds++
    s.generated += j + 1
  }
}

interface DraftResult {
  name: string
  greedyAgreement: number
  greedy: Map<number, RoundStats>
  t1: Map<number, RoundStats>
}

async function measure(
  draft: Draft,
  target: ScoreOptions,
  vocab: number,
  prompts: number[][],
  targetGreedy: number[][]
): Promise<DraftResult> {
  const r: DraftResult = {
    name: draft.name,
    greedyAgreement: 0,
    greedy: new Map(KS.map((k) => [k, empty()])),
    t1: new Map(KS.map((k) => [k, empty()]))
  }
  let agree = 0
  let positions = 0
  for (const [n, prompt] of prompts.entries()) {
    const gen = targetGreedy[n]
    // One-token agreement at every position of the target's greedy continuation.
    for (let i = 0; i < gen.length; i++) {
      const p = await draft.propose([...prompt, ...gen.slice(0, i)], 1, {
        temperature: 0,
        topP: 1,
        random: Math.random
      })
      if (p.tokens[0] === gen[i]) agree++
      positions++
    }
    for (const k of KS) await greedyRounds(draft, prompt, gen, k, r.greedy.get(k)!)
    for (const k of KS)
      await sampledRounds(draft, target, vocab, prompt, TOKENS, k, 1000 * k + n, r.t1.get(k)!)
  }
  r.greedyAgreement = agree / positions
  return r
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'pov-bench-draft-'))
  try {
    await convertCheckpoint(MODEL, join(root, 'bundle'))
    const bundle = await loadBundle(join(root, 'bundle'))
    const draft = await findDraft(bundle.dir, { vocabSize: bundle.config.vocabSize })
    if (draft == null) throw new Error(`${MODEL} carries no draft (draft/)`)
    const dense = await loadDenseRuntime(bundle)
    const experts = await loadExpertRuntime(
      bundle,
      bundle.manifest.shards.map((s) => s.id),
      { intraOpNumThreads: 1 }
    )
    const tok = await loadTokenizer(bundle.dir)
    const held = await readFile(join(MODEL, 'heldout.txt'), 'utf8')
    const prompts = held
      .split('\n')
      .filter((p) => p.split(/\s+/).length > 12)
      .slice(0, PROMPTS)
      .map((p) => tok.encode(p.split(/\s+/).slice(0, 8).join(' ')))
    const load0 = loadavg()[0]
    const t0 = performance.now()
    const target: ScoreOptions = { dense, experts }
    const targetGreedy: number[][] = []
    for (const prompt of prompts) {
      const res = await generateAll({
        dense,
        experts,
        promptIds: prompt,
        maxTokens: TOKENS,
        eosTokenId: null
      })
      targetGreedy.push(res.tokens)
    }
    const results: DraftResult[] = []
    for (const d of [
      draft,
      new NgramDraft(),
      new CombinedDraft(await loadModelDraft(join(bundle.dir, 'draft')))
    ])
      results.push(await measure(d, target, bundle.config.vocabSize, prompts, targetGreedy))
    await experts.close()
    await dense.close()
    await draft.close()
    const wallS = (performance.now() - t0) / 1000
    const load1 = loadavg()[0]

    const fmt = (v: number, d = 2): string => v.toFixed(d)
    console.log(
      `drafts vs ${MODEL}: ${prompts.length} held-out prompts × ${TOKENS} tokens; ${draft.name}: ${draft.config.numLayers} layers, hidden ${draft.config.hiddenSize}`
    )
    console.log('')
    console.log(
      '| draft | mode | k | acceptance | accepted/round | tokens/round | draft ms/token (wall) | draft CPU ms/token | draft ms/round |'
    )
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    const json: Record<string, unknown> = { prompts: prompts.length, tokensPerPrompt: TOKENS }
    for (const r of results) {
      const j: Record<string, unknown> = { greedyAgreement: r.greedyAgreement }
      for (const [mode, m] of [
        ['greedy', r.greedy],
        ['t1', r.t1]
      ] as const) {
        const byK: Record<string, unknown> = {}
        for (const k of KS) {
          const s = summary(m.get(k)!)
          byK[k] = s
          console.log(
            `| ${r.name} | ${mode === 'greedy' ? 'T = 0' : 'T = 1'} | ${k} | ${fmt(s.acceptance, 3)} | ${fmt(s.meanAccepted)} | ${fmt(s.meanTokensPerRound)} | ${fmt(s.draftMsPerToken, 3)} | ${fmt(s.draftCpuMsPerToken, 3)} | ${fmt(s.draftMsPerRound, 3)} |`
          )
        }
        j[mode] = byK
      }
      json[r.name] = j
    }
    console.log('')
    for (const r of results)
      console.log(
        `${r.name}: greedy one-token agreement (its argmax = the target's) ${fmt(r.greedyAgreement, 3)}`
      )
    Object.assign(json, { wallS, loadavg1Start: load0, loadavg1End: load1 })
    console.log(
      `load average (1 min): ${fmt(load0)} at start, ${fmt(load1)} at end; ${fmt(wallS, 1)} s`
    )
    console.log(JSON.stringify(json))
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

await main()
