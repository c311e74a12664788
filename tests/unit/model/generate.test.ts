// The generation loop over the ONNX dense graphs vs the float64 reference: logits at every step
// within 1e-4, identical greedy tokens, with the top1-top2 margin (and the gate's k/k+1 gap) at
// every step well above that tolerance so a failure is a real one ("Near-ties" in docs/architecture.md).
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TinyOptions } from '../../../model/tiny.js'
import type { DenseRuntime } from '../../../model/dense/index.js'
import {
  ExpertUnavailableError,
  generate,
  generateAll,
  type ExpertExecutor,
  type MoeEvent
} from '../../../model/generate.js'
import {
  referenceExpertExecutor,
  referenceGreedy,
  type ReferenceModel,
  type ReferenceOptions
} from '../../../model/reference.js'

import { tinyDenseAndReference } from './tiny-dense.js'

const TOL = 1e-4
/** Margins must exceed the tolerance by this factor for token equality to be meaningful. */
const MARGIN = 10 * TOL

const root = await mkdtemp(join(tmpdir(), 'pov-generate-'))
const opened: DenseRuntime[] = []
after(async () => {
  await Promise.all(
    opened.map(async (d) => {
      await d.close()
    })
  )
  await rm(root, { recursive: true, force: true })
})

interface Fixture {
  dense: DenseRuntime
  ref: ReferenceModel
  experts: ExpertExecutor
}
let n = 0
async function fixture(opts: TinyOptions): Promise<Fixture> {
  const { dense, ref } = await tinyDenseAndReference(join(root, `m${n++}`), opts)
  opened.push(dense)
  return { dense, ref, experts: referenceExpertExecutor(ref) }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length)
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}

async function assertMatchesReference(
  f: Fixture,
  prompt: number[],
  maxTokens: number,
  opts: { experts?: ExpertExecutor; ref?: ReferenceOptions; degraded?: boolean } = {}
): Promise<void> {
  const events: MoeEvent[] = []
  const res = await generateAll({
    dense: f.dense,
    experts: opts.experts ?? f.experts,
    promptIds: prompt,
    maxTokens,
    eosTokenId: null,
    returnLogits: true,
    onMoe: (e) => events.push(e)
  })
  const want = referenceGreedy(f.ref, prompt, maxTokens, opts.ref)
  assert.equal(res.steps.length, maxTokens)
  for (let i = 0; i < maxTokens; i++) {
    const got = res.steps[i]
    const w = want[i]
    assert.ok(
      w.margin > MARGIN,
      `step ${i}: reference top1-top2 margin ${w.margin} is a near-tie; pick another prompt/seed`
    )
    assert.ok(
      w.minGateGap > TOL,
      `step ${i}: gate k/k+1 probability gap ${w.minGateGap} is a near-tie; pick another prompt/seed`
    )
    const d = maxAbsDiff(got.logits!, w.logits)
    assert.ok(d < TOL, `step ${i}: logits differ from the reference by ${d}`)
    assert.equal(got.id, w.id, `step ${i}: token`)
    assert.equal(got.phase, i === 0 ? 'prefill' : 'decode')
    assert.equal(got.degraded, opts.degraded ?? false, `step ${i}: degraded flag`)
    assert.ok(Math.abs(got.margin - w.margin) < 2 * TOL)
  }
  assert.deepEqual(
    res.tokens,
    want.map((s) => s.id)
  )
  assert.equal(res.degraded, opts.degraded ?? false)
  assert.equal(res.stopReason, 'max_tokens')
  assert.equal(res.timings.generatedTokens, maxTokens)
  assert.equal(res.timings.promptTokens, prompt.length)
  // Without failures: exactly one call per (layer, expert) per pass, topK rows per token.
  if (opts.degraded !== true) {
    const c = f.dense.config
    assert.equal(events.length, c.numLayers * maxTokens)
    for (const e of events) {
      const experts = e.calls.map((x) => x.expert)
      assert.equal(new Set(experts).size, experts.length, 'one call per (layer, expert)')
      assert.equal(
        e.calls.reduce((s, x) => s + x.rows, 0),
        e.tokens * c.topK
      )
    }
    assert.equal(events[0].tokens, prompt.length)
    assert.equal(events.at(-1)!.tokens, 1)
  }
}

const PROMPT = [1, 10, 20, 30, 40, 50]

describe('generate vs float64 reference (16 greedy tokens)', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    for (const shards of [1, 2]) {
      test(`${dtype}, ${shards === 1 ? 'single file' : 'sharded'}`, async () => {
        await assertMatchesReference(await fixture({ dtype, shards, seed: 1 }), PROMPT, 16)
      })
    }
  }

  test('sliding window shorter than the sequence', async () => {
    const f = await fixture({ seed: 3, slidingWindow: 4 })
    assert.equal(f.dense.config.slidingWindow, 4)
    await assertMatchesReference(f, PROMPT, 16)
  })

  test('non-default shape: 6 heads / 3 kv heads, head_dim 16, 3 layers, 4 experts top-1, vocab 300', async () => {
    await assertMatchesReference(
      await fixture({
        seed: 4,
        hidden: 96,
        heads: 6,
        kvHeads: 3,
        layers: 3,
        experts: 4,
        topK: 1,
        vocab: 300,
        intermediate: 64
      }),
      [1, 7, 99, 250],
      16
    )
  })

  test('multi-query attention (1 kv head), top-3 of 6 experts', async () => {
    await assertMatchesReference(
      await fixture({ seed: 5, heads: 4, kvHeads: 1, experts: 6, topK: 3 }),
      PROMPT,
      12
    )
  })
})

describe('expert fallback', () => {
  test('an unavailable expert: tokens go to the next-best expert, output degraded = reference without it', async () => {
    const f = await fixture({ seed: 1 })
    // Expert 0 of layer 1 is chosen by several prompt tokens (checked below via the events).
    const unavailable = { layer: 1, expert: 0 }
    let refused = 0
    const experts: ExpertExecutor = {
      async runExpert(layer, expert, x, rows, opts) {
        if (layer === unavailable.layer && expert === unavailable.expert) {
          refused++
          throw new ExpertUnavailableError(layer, expert)
        }
        return await f.experts.runExpert(layer, expert, x, rows, opts)
      }
    }
    await assertMatchesReference(f, PROMPT, 8, {
      experts,
      ref: { excluded: [unavailable] },
      degraded: true
    })
    assert.ok(refused > 0, 'the unavailable expert was asked at least once')
  })

  test('degraded is sticky from the first fallback; earlier tokens stay clean', async () => {
    const f = await fixture({ seed: 1 })
    let calls = 0
    let failFrom = Infinity
    const experts: ExpertExecutor = {
      async runExpert(layer, expert, x, rows) {
        calls++
        // From then on only expert 7 of layer 0 answers: every token there falls back to it.
        if (calls >= failFrom && layer === 0 && expert !== 7)
          throw new ExpertUnavailableError(layer, expert)
        return await f.experts.runExpert(layer, expert, x, rows)
      }
    }
    const steps = []
    for await (const t of generate({
      dense: f.dense,
      experts,
      promptIds: PROMPT,
      maxTokens: 6,
      eosTokenId: null
    })) {
      steps.push(t)
      if (t.index === 2) failFrom = calls + 1
    }
    assert.deepEqual(
      steps.map((s) => s.degraded),
      [false, false, false, true, true, true]
    )
  })

  test('every expert unavailable: a clear error', async () => {
    const f = await fixture({ seed: 1 })
    const experts: ExpertExecutor = {
      async runExpert(layer, expert) {
        throw new ExpertUnavailableError(layer, expert)
      }
    }
    await assert.rejects(
      generateAll({ dense: f.dense, experts, promptIds: PROMPT, maxTokens: 2 }),
      { name: 'NoExpertAvailableError' }
    )
  })

  test('any other executor error propagates and aborts the sibling calls', async () => {
    const f = await fixture({ seed: 1 })
    let aborted = 0
    let first = true
    const experts: ExpertExecutor = {
      async runExpert(layer, expert, x, rows, opts) {
        // The first call fails; the others wait until they are aborted.
        if (first) {
          first = false
          throw new Error('boom')
        }
        await new Promise<void>((resolve) => {
          if (opts?.signal?.aborted === true) {
            aborted++
            resolve()
            return
          }
          opts?.signal?.addEventListener(
            'abort',
            () => {
              aborted++
              resolve()
            },
            { once: true }
          )
          setTimeout(resolve, 2000).unref()
        })
        return await f.experts.runExpert(layer, expert, x, rows)
      }
    }
    await assert.rejects(
      generateAll({ dense: f.dense, experts, promptIds: PROMPT, maxTokens: 2 }),
      /boom/
    )
    assert.ok(aborted > 0, 'sibling calls saw the abort')
  })
})

describe('generate options', () => {
  test('stops at eos (included), and eosTokenId null disables it', async () => {
    const f = await fixture({ seed: 1 })
    const free = await generateAll({
      dense: f.dense,
      experts: f.experts,
      promptIds: PROMPT,
      maxTokens: 6,
      eosTokenId: null
    })
    const eos = free.tokens[2]
    const stopped = await generateAll({
      dense: f.dense,
      experts: f.experts,
      promptIds: PROMPT,
      maxTokens: 6,
      eosTokenId: eos
    })
    assert.deepEqual(stopped.tokens, free.tokens.slice(0, free.tokens.indexOf(eos) + 1))
    assert.equal(stopped.stopReason, 'eos')
  })

  test('seeded sampling is reproducible; top-p → 0 is greedy', async () => {
    const f = await fixture({ seed: 1 })
    const base = {
      dense: f.dense,
      experts: f.experts,
      promptIds: PROMPT,
      maxTokens: 10,
      eosTokenId: null
    }
    const a = await generateAll({ ...base, temperature: 1.5, seed: 7 })
    const b = await generateAll({ ...base, temperature: 1.5, seed: 7 })
    assert.deepEqual(a.tokens, b.tokens)
    const greedy = await generateAll(base)
    const nucleus = await generateAll({ ...base, temperature: 1, topP: 1e-9, seed: 3 })
    assert.deepEqual(nucleus.tokens, greedy.tokens)
    assert.ok(greedy.timings.decodeTokensPerSecond > 0 && greedy.timings.prefillMs > 0)
  })

  test('abort signal stops generation', async () => {
    const f = await fixture({ seed: 1 })
    const ac = new AbortController()
    const seen: number[] = []
    await assert.rejects(
      async () => {
        for await (const t of generate({
          dense: f.dense,
          experts: f.experts,
          promptIds: PROMPT,
          maxTokens: 10,
          signal: ac.signal,
          eosTokenId: null
        })) {
          seen.push(t.id)
          if (seen.length === 2) ac.abort()
        }
      },
      { name: 'AbortError' }
    )
    assert.equal(seen.length, 2)
  })

  test('rejects an empty prompt and out-of-vocabulary ids', async () => {
    const f = await fixture({ seed: 1 })
    await assert.rejects(
      generateAll({ dense: f.dense, experts: f.experts, promptIds: [], maxTokens: 2 }),
      RangeError
    )
    await assert.rejects(
      generateAll({ dense: f.dense, experts: f.experts, promptIds: [1, 100000], maxTokens: 2 }),
      RangeError
    )
  })
})
