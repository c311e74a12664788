// Speculative decoding at temperature 0: whatever the draft proposes (right, wrong, partly
// right, the n-gram draft) and whatever k, the tokens are those of plain decoding, checked
// against the float64 reference with the near-tie guard of generate.test.ts (every step's
// top1-top2 margin well above the logits tolerance, so batched-vs-single-row rounding cannot
// flip a token and a mismatch is a real one). Also: the verify pass is one expert call per
// (layer, expert) carrying every row, the KV cache is rolled back, and the timings add up.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TinyOptions } from '../../../model/tiny.js'
import type { DenseRuntime } from '../../../model/dense/index.js'
import {
  generateAll,
  type ExpertExecutor,
  type GenerateOptions,
  type MoeEvent,
  type RoundEvent
} from '../../../model/generate.js'
import {
  referenceExpertExecutor,
  referenceGreedy,
  type ReferenceModel,
  type ReferenceStep
} from '../../../model/reference.js'
import { tinyDenseAndReference } from './tiny-dense.js'
import { NgramDraft } from '../../../model/draft/ngram.js'
import type { Draft } from '../../../model/draft.js'
import { DraftLength } from '../../../model/speculative.js'

const TOL = 1e-4
const MARGIN = 10 * TOL
const PROMPT = [1, 10, 20, 30, 40, 50]
const N = 24

const root = await mkdtemp(join(tmpdir(), 'pov-speculative-'))
const opened: DenseRuntime[] = []
after(async () => {
  await Promise.all(
    opened.map(async (d) => {
      await d.close()
    })
  )
  await rm(root, { recursive: true, force: true })
})

let n = 0
async function fixture(opts: TinyOptions): Promise<{ dense: DenseRuntime; ref: ReferenceModel }> {
  const { dense, ref } = await tinyDenseAndReference(join(root, `m${n++}`), opts)
  opened.push(dense)
  return { dense, ref }
}

/** A draft that knows the greedy continuation and gets the tokens at `wrongAt` (indices into
 *  the generated tokens) wrong: acceptance stops exactly there. */
function scripted(want: number[], wrongAt: (i: number) => boolean, vocab: number): Draft {
  return {
    name: 'scripted',
    async propose(context, k) {
      const from = context.length - PROMPT.length
      const tokens: number[] = []
      for (let i = from; i < Math.min(want.length, from + k); i++)
        tokens.push(wrongAt(i) ? (want[i] + 1) % vocab : want[i])
      return { tokens, q: tokens.map(() => null) }
    }
  }
}

function guard(want: ReferenceStep[]): void {
  want.forEach((w, i) => {
    assert.ok(w.margin > MARGIN, `step ${i}: reference margin ${w.margin} is a near-tie`)
    assert.ok(w.minGateGap > TOL, `step ${i}: gate gap ${w.minGateGap} is a near-tie`)
  })
}

/** A fixture and its greedy continuation by the reference (checked for near-ties): `ids`. */
async function greedyCase(opts: TinyOptions): Promise<{
  f: { dense: DenseRuntime; ref: ReferenceModel }
  V: number
  want: ReferenceStep[]
  ids: number[]
}> {
  const f = await fixture(opts)
  const want = referenceGreedy(f.ref, PROMPT, N)
  guard(want)
  return { f, V: f.dense.config.vocabSize, want, ids: want.map((w) => w.id) }
}

/** generateAll's options for N tokens after PROMPT, greedy, not stopping at EOS. */
function greedyRun(dense: DenseRuntime, experts: ExpertExecutor): GenerateOptions {
  return { dense, experts, promptIds: PROMPT, maxTokens: N, eosTokenId: null }
}

describe('speculative decoding at temperature 0 = plain decoding', () => {
  for (const opts of [
    { seed: 1 },
    { seed: 3, slidingWindow: 4 },
    { seed: 5, heads: 4, kvHeads: 1, experts: 6, topK: 3, dtype: 'bf16' }
  ] as TinyOptions[]) {
    test(`tiny ${JSON.stringify(opts)}: every draft, every k`, async () => {
      const { f, V, want, ids } = await greedyCase(opts)
      const experts = referenceExpertExecutor(f.ref)
      const drafts: Array<[string, () => Draft]> = [
        ['ngram', () => new NgramDraft()],
        ['ngram n=1', () => new NgramDraft({ minNgram: 1 })],
        ['always right', () => scripted(ids, () => false, V)],
        ['always wrong', () => scripted(ids, () => true, V)],
        ['wrong every 3rd', () => scripted(ids, (i) => i % 3 === 0, V)]
      ]
      for (const [name, make] of drafts) {
        for (const k of [1, 3, 7, undefined]) {
          const what = `${name}, k ${k ?? 'adaptive'}`
          const events: MoeEvent[] = []
          const rounds: RoundEvent[] = []
          const res = await generateAll({
            ...greedyRun(f.dense, experts),
            returnLogits: true,
            speculative: { draft: make(), draftTokens: k },
            onMoe: (e) => events.push(e),
            onRound: (r) => rounds.push(r)
          })
          assert.deepEqual(res.tokens, ids, what)
          res.steps.forEach((s, i) => {
            let d = 0
            for (let j = 0; j < V; j++) d = Math.max(d, Math.abs(s.logits![j] - want[i].logits[j]))
            assert.ok(d < TOL, `${what}, step ${i}: logits differ from the reference by ${d}`)
            assert.equal(s.index, i)
          })
          // one pass per round, each an expert call per (layer, expert) carrying all its rows
          const t = res.timings
          assert.equal(t.rounds, rounds.length, what)
          assert.equal(events.length, f.dense.config.numLayers * (1 + t.rounds), what)
          for (const e of events) {
            const experts = e.calls.map((x) => x.expert)
            assert.equal(new Set(experts).size, experts.length, `${what}: one call per expert`)
            assert.equal(
              e.calls.reduce((s, x) => s + x.rows, 0),
              e.tokens * f.dense.config.topK
            )
          }
          assert.equal(
            rounds.reduce((s, r) => s + r.emitted, 0),
            N - 1,
            what
          )
          assert.equal(
            t.acceptedTokens,
            rounds.reduce((s, r) => s + r.accepted, 0)
          )
          assert.equal(
            t.draftedTokens,
            rounds.reduce((s, r) => s + r.proposed, 0)
          )
          assert.equal(t.rounds + t.acceptedTokens, N - 1, `${what}: each round = 1 + accepted`)
          if (name === 'always right' && k != null)
            assert.equal(t.rounds, Math.ceil((N - 1) / (k + 1)), `${what}: rounds`)
          if (name === 'always wrong') assert.equal(t.acceptedTokens, 0, what)
          if (name === 'wrong every 3rd' && k === 7)
            assert.ok(t.acceptedTokens > 0 && t.acceptedTokens < t.draftedTokens, what)
        }
      }
    })
  }

  test('eos inside the accepted drafts stops there; maxTokens is never exceeded', async () => {
    const { f, V, ids } = await greedyCase({ seed: 1 })
    const experts = referenceExpertExecutor(f.ref)
    const eos = ids[9]
    const stop = ids.indexOf(eos)
    for (const k of [2, 5]) {
      const res = await generateAll({
        dense: f.dense,
        experts,
        promptIds: PROMPT,
        maxTokens: N,
        eosTokenId: eos,
        speculative: { draft: scripted(ids, () => false, V), draftTokens: k }
      })
      assert.deepEqual(res.tokens, ids.slice(0, stop + 1))
      assert.equal(res.stopReason, 'eos')
      for (const max of [1, 2, 5]) {
        const r = await generateAll({
          dense: f.dense,
          experts,
          promptIds: PROMPT,
          maxTokens: max,
          eosTokenId: null,
          speculative: { draft: scripted(ids, () => false, V), draftTokens: k }
        })
        assert.deepEqual(r.tokens, ids.slice(0, max))
      }
    }
  })

  test('a DraftLength given as `length` carries adaptive k from one generation to the next', async () => {
    const { f, V, ids } = await greedyCase({ seed: 1 })
    const local = referenceExpertExecutor(f.ref)
    // calls that wait 15 ms, as over a network: a pass costs about the same whatever its rows, so
    // what adaptive k chooses does not hang on how fast this machine computes a row right now
    const experts: ExpertExecutor = {
      runExpert: async (layer, expert, x, rows) => {
        await new Promise((r) => setTimeout(r, 15))
        return await local.runExpert(layer, expert, x, rows)
      }
    }
    const once = async (length?: DraftLength): Promise<RoundEvent[]> => {
      const rounds: RoundEvent[] = []
      const res = await generateAll({
        ...greedyRun(f.dense, experts),
        speculative: { draft: scripted(ids, () => false, V), length },
        onRound: (r) => rounds.push(r)
      })
      assert.deepEqual(res.tokens, ids)
      return rounds
    }
    const kept = new DraftLength()
    const first = await once(kept)
    const second = await once(kept)
    const fresh = await once()
    // a fresh generation starts at the prior (k = 1); the kept one where the last one ended
    assert.equal(first[0].asked, 1)
    assert.equal(fresh[0].asked, 1)
    assert.ok(second[0].asked > 1, `second generation's first k ${second[0].asked}`)
    assert.ok(kept.acceptance > 0.9)
  })

  test('a draft proposing out-of-vocabulary ids or too many tokens: a clear error', async () => {
    const f = await fixture({ seed: 1 })
    const experts = referenceExpertExecutor(f.ref)
    const bad = (tokens: number[]): Draft => ({
      name: 'bad',
      async propose() {
        return { tokens, q: tokens.map(() => null) }
      }
    })
    const run = async (d: Draft): Promise<unknown> =>
      await generateAll({
        dense: f.dense,
        experts,
        promptIds: PROMPT,
        maxTokens: 4,
        speculative: { draft: d, draftTokens: 2 }
      })
    await assert.rejects(run(bad([1, 100000])), /draft bad: token 100000 is outside/)
    await assert.rejects(run(bad([1, 2, 3])), /draft bad: proposed 3 tokens, at most 2/)
  })
})

describe('adaptive k (DraftLength)', () => {
  const run = (
    l: DraftLength,
    rounds: number,
    accept: (k: number) => number,
    ms: (rows: number) => number
  ): number[] => {
    const ks: number[] = []
    for (let i = 0; i < rounds; i++) {
      const k = l.next()
      ks.push(k)
      const a = Math.min(k, accept(k))
      l.record({ asked: k, proposed: k, accepted: a, verifyMs: ms(k + 1), draftMs: 0 })
    }
    return ks
  }

  test('a draft that is always wrong: k drops to 0, with a probe every few rounds', () => {
    const ks = run(
      new DraftLength(),
      80,
      () => 0,
      () => 50
    )
    const tail = ks.slice(20)
    const probes = tail.filter((k) => k > 0).length
    assert.ok(probes > 0 && probes <= tail.length / 6, `probes ${probes} of ${tail.length}`)
    assert.ok(tail.every((k) => k <= 1))
  })

  test('a draft that is always right: k grows to where the cost bound stops it', () => {
    const l = new DraftLength(undefined, { max: 8, maxCostRatio: 1.5 })
    const ks = run(
      l,
      60,
      (k) => k,
      () => 50
    )
    assert.ok(l.acceptance > 0.9)
    assert.ok(ks.slice(-20).filter((k) => k >= 6).length >= 15, `k ${ks.slice(-20).join(',')}`)
  })

  test('rows that cost as much as a round trip: k backs off even with a good draft', () => {
    // acceptance 0.6 per token; a round costs 10 ms + 40 ms per row (compute-bound nodes)
    let seed = 1
    const rnd = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647
    const accept = (k: number): number => {
      let a = 0
      while (a < k && rnd() < 0.6) a++
      return a
    }
    const cheap = run(new DraftLength(), 200, accept, () => 50).slice(100)
    const dear = run(new DraftLength(), 200, accept, (rows) => 10 + 40 * rows).slice(100)
    const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length
    assert.ok(mean(dear) < mean(cheap), `dear ${mean(dear)} vs cheap ${mean(cheap)}`)
    assert.ok(mean(dear) < 0.5, `dear rows: mean k ${mean(dear)}`)
  })

  test('a fixed k stays fixed; a bad one is refused', () => {
    const ks = run(
      new DraftLength(3),
      10,
      () => 0,
      () => 50
    )
    assert.deepEqual(ks, Array(10).fill(3))
    assert.throws(() => new DraftLength(-1), /non-negative/)
  })
})
