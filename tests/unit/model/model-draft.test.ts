// The committed draft of models/tiny-en (models/tiny-en/draft, trained by
// tools/train-tiny/draft.py) against the float64 PyTorch forward that trained it
// (tests/fixtures/tiny-en-draft-torch.json), and the Draft contract the router relies on:
// proposals are vocabulary tokens, q is a distribution under the generation's sampling
// transform, a roll-back after a rejection proposes what a fresh draft would, broken draft files
// are refused with a message that names the file and the problem.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  DraftError,
  findDraft,
  loadModelDraft,
  parseDraftConfig
} from '../../../model/draft/model-draft.js'
import { CombinedDraft, DraftPool, NgramDraft, openDraft } from '../../../model/draft/index.js'
import { convertCheckpoint, ConvertError } from '../../../model/bundle/convert.js'
import { sampleToken, seededRandom, tokenDistribution } from '../../../model/sampling.js'
import { writeSafetensors } from '../../../model/safetensors.js'

const TOL = 1e-3
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const MODEL = join(REPO, 'models', 'tiny-en')
const DRAFT = join(MODEL, 'draft')

interface Fixture {
  prompts: Array<{
    prompt: string
    promptIds: number[]
    steps: Array<{ id: number; margin: number; logitIndices: number[]; logits: number[] }>
  }>
}
const fixture = JSON.parse(
  await readFile(join(REPO, 'tests', 'fixtures', 'tiny-en-draft-torch.json'), 'utf8')
) as Fixture

const root = await mkdtemp(join(tmpdir(), 'pov-model-draft-'))
after(async () => {
  await rm(root, { recursive: true, force: true })
})

const greedy = { temperature: 0, topP: 1, random: () => 0.5 }

describe('models/tiny-en/draft vs the PyTorch forward that trained it', () => {
  test('greedy proposals equal and logits within 1e-3 at every step', async () => {
    const draft = await loadModelDraft(DRAFT)
    assert.equal(draft.name, 'tiny-en-draft')
    assert.ok(fixture.prompts.length >= 2, 'the fixture has prompts')
    for (const p of fixture.prompts) {
      const got = await draft.propose(p.promptIds, p.steps.length, greedy)
      assert.deepEqual(
        got.tokens,
        p.steps.map((s) => s.id),
        p.prompt
      )
      assert.ok(
        got.q.every((q) => q === null),
        'greedy proposals are deterministic'
      )
      const ctx = [...p.promptIds]
      p.steps.forEach((want, i) => {
        assert.ok(want.margin > 10 * TOL, `${p.prompt} step ${i}: near-tie in the fixture`)
        const logits = draft.logitsAfter(ctx)
        let d = 0
        want.logitIndices.forEach((j, k) => {
          d = Math.max(d, Math.abs(logits[j] - want.logits[k]))
        })
        assert.ok(d < TOL, `${p.prompt} step ${i}: logits differ by ${d}`)
        ctx.push(want.id)
      })
    }
  })
})

describe('the Draft contract', () => {
  const context = fixture.prompts[0].promptIds

  test('at temperature > 0 proposals are vocabulary tokens and each q is the sampling transform of the draft, summing to 1', async () => {
    const draft = await loadModelDraft(DRAFT)
    const V = draft.config.vocabSize
    const sampling = { temperature: 0.8, topP: 0.9, random: seededRandom(7) }
    const p = await draft.propose(context, 5, sampling)
    assert.equal(p.tokens.length, 5)
    assert.equal(p.q.length, 5)
    const ctx = [...context]
    p.tokens.forEach((t, i) => {
      assert.ok(Number.isSafeInteger(t) && t >= 0 && t < V, `token ${t}`)
      const q = p.q[i]!
      assert.equal(q.length, V)
      let sum = 0
      for (const v of q) sum += v
      assert.ok(Math.abs(sum - 1) < 1e-5, `q sums to ${sum}`)
      assert.ok(q[t] > 0, 'the proposed token has mass under q')
      const want = Float32Array.from(tokenDistribution(draft.logitsAfter(ctx), sampling))
      assert.deepEqual(q, want, `q of step ${i} is the draft's own transformed distribution`)
      assert.ok(
        q.filter((v) => v > 0).length < V,
        'top-p 0.9 cuts the tail (the nucleus is smaller than the vocabulary)'
      )
      ctx.push(t)
    })
    // Same seed, same proposals; k = 0 proposes nothing.
    const again = await (
      await loadModelDraft(DRAFT)
    ).propose(context, 5, { ...sampling, random: seededRandom(7) })
    assert.deepEqual(again.tokens, p.tokens)
    assert.deepEqual(await draft.propose(context, 0, sampling), { tokens: [], q: [] })
    await assert.rejects(draft.propose(context, -1, sampling), RangeError)
    await assert.rejects(draft.propose([], 2, sampling), /context is empty/)
    await assert.rejects(draft.propose([V], 2, sampling), /outside the vocabulary/)
  })

  test('tokenDistribution is the distribution sampleToken draws from (top-p 1 and 0.8)', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7) * 3)
    for (const opts of [
      { temperature: 0.7, topP: 1 },
      { temperature: 0.7, topP: 0.8 }
    ]) {
      const q = tokenDistribution(logits, opts)
      assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-12)
      const random = seededRandom(3)
      const counts = new Float64Array(50)
      const N = 20000
      for (let i = 0; i < N; i++) counts[sampleToken(logits, opts, random)]++
      for (let i = 0; i < 50; i++) {
        if (q[i] === 0) assert.equal(counts[i], 0, `token ${i} is outside the nucleus`)
        // 5 standard deviations of a binomial count
        else
          assert.ok(Math.abs(counts[i] / N - q[i]) < 5 * Math.sqrt(q[i] / N) + 1e-3, `token ${i}`)
      }
    }
  })

  test('a roll-back after a rejection proposes what a fresh draft proposes on that context', async () => {
    const draft = await loadModelDraft(DRAFT)
    const first = await draft.propose(context, 5, greedy)
    // The target accepts 2 tokens and puts its own third: the draft keeps context + 2 tokens.
    const other = (first.tokens[2] + 1) % draft.config.vocabSize
    const contexts = [
      [...context, ...first.tokens.slice(0, 2), other],
      [...context, ...first.tokens], // all accepted + the target's token appended below
      [...context.slice(0, 3), 500, 600], // diverges inside the prompt
      context.slice(0, 2) // shorter than what the cache holds
    ]
    contexts[1].push(other)
    for (const [i, ctx] of contexts.entries()) {
      for (const temperature of [0, 1]) {
        const s = { temperature, topP: 1 }
        const got = await draft.propose(ctx, 4, { ...s, random: seededRandom(i) })
        assert.deepEqual(
          draft.cachedTokens,
          [...ctx, ...got.tokens.slice(0, 3)],
          'the cache holds the context and the proposals it computed on'
        )
        const fresh = await (
          await loadModelDraft(DRAFT)
        ).propose(ctx, 4, { ...s, random: seededRandom(i) })
        assert.deepEqual(got.tokens, fresh.tokens, `context ${i}, T=${temperature}`)
        assert.deepEqual(got.q, fresh.q, `context ${i}, T=${temperature}`)
      }
    }
    await draft.close()
  })
})

const cfg = JSON.parse(readFileSync(join(DRAFT, 'config.json'), 'utf8')) as Record<string, unknown>
let n = 0
async function brokenDraft(
  edit: (dir: string) => Promise<void>
): Promise<{ dir: string; draftDir: string }> {
  const dir = join(root, `broken-${n++}`)
  await cp(DRAFT, join(dir, 'draft'), { recursive: true })
  await edit(join(dir, 'draft'))
  return { dir, draftDir: join(dir, 'draft') }
}
const writeCfg = (dir: string, c: unknown) => writeFile(join(dir, 'config.json'), JSON.stringify(c))

describe('broken drafts', () => {
  test('each defect gets a DraftError naming the file and the problem', async () => {
    const H = cfg.hidden_size as number
    const cases: Array<[string, (dir: string) => Promise<void>, RegExp]> = [
      ['no config', (d) => rm(join(d, 'config.json')), /config\.json: cannot read/],
      ['not JSON', (d) => writeFile(join(d, 'config.json'), '{"model_type": '), /not valid JSON/],
      [
        'a MoE config',
        (d) => writeCfg(d, { ...cfg, model_type: 'mixtral' }),
        /model_type is "mixtral"/
      ],
      ['no layer count', (d) => writeCfg(d, { ...cfg, num_hidden_layers: 0 }), /num_hidden_layers/],
      [
        'heads vs kv heads',
        (d) => writeCfg(d, { ...cfg, num_key_value_heads: 3 }),
        /not a multiple of num_key_value_heads 3/
      ],
      ['no weights', (d) => rm(join(d, 'model.safetensors')), /draft .*model\.safetensors/],
      [
        'truncated weights',
        async (d) => {
          const b = await readFile(join(d, 'model.safetensors'))
          await writeFile(join(d, 'model.safetensors'), b.subarray(0, 1000))
        },
        /truncated|extends past|exceeds/
      ],
      [
        'a wrong-shape tensor',
        (d) =>
          writeSafetensors(
            join(d, 'model.safetensors'),
            [{ name: 'model.embed_tokens.weight', shape: [10, H], data: new Float32Array(10 * H) }],
            'F16'
          ),
        /tensor "model\.(layers\.0\.input_layernorm|embed_tokens)\.weight"/
      ],
      [
        'a NaN weight',
        async (d) => {
          const b = Buffer.from(await readFile(join(d, 'model.safetensors')))
          // f16 NaN (0x7e00) as the last value of the file: the last tensor of the checkpoint
          b.writeUInt16LE(0x7e00, b.length - 2)
          await writeFile(join(d, 'model.safetensors'), b)
        },
        /non-finite value/
      ]
    ]
    for (const [what, edit, re] of cases) {
      const { dir, draftDir } = await brokenDraft(edit)
      await assert.rejects(
        findDraft(dir),
        (err: Error) => err instanceof DraftError && re.test(err.message),
        what
      )
      await assert.rejects(loadModelDraft(draftDir), DraftError, what)
    }
    assert.throws(() => parseDraftConfig([], 'x/config.json'), /x\/config\.json: expected a JSON/)
  })

  test('findDraft: null without draft/, an error for another vocabulary', async () => {
    assert.equal(await findDraft(join(root, 'nothing-here')), null)
    const d = await findDraft(MODEL, { vocabSize: 4096 })
    assert.equal(d?.name, 'tiny-en-draft')
    await assert.rejects(
      findDraft(MODEL, { vocabSize: 32000 }),
      /must share the target's tokenizer/
    )
  })

  test("openDraft: the model draft, checked against the directory's own vocabulary; else n-gram", async () => {
    assert.equal((await openDraft(MODEL)).name, 'tiny-en-draft+ngram')
    assert.equal((await openDraft(join(root, 'nothing-here'))).name, 'ngram')
    const dir = join(root, 'other-vocab')
    await cp(DRAFT, join(dir, 'draft'), { recursive: true })
    await writeFile(join(dir, 'config.json'), JSON.stringify({ vocab_size: 32000 }))
    await assert.rejects(openDraft(dir), /4096 tokens, the target has 32000/)
  })

  test('the combined draft: n-gram guesses on a repeating context at temperature 0, else the model draft', async () => {
    const model = await loadModelDraft(DRAFT)
    const combined = new CombinedDraft(await loadModelDraft(DRAFT))
    const fresh = fixture.prompts[0].promptIds
    const looping = [1, 500, 600, 700, 800, 500, 600]
    assert.deepEqual(
      await combined.propose(looping, 4, greedy),
      await new NgramDraft().propose(looping, 4)
    )
    assert.deepEqual((await combined.propose(looping, 4, greedy)).tokens, [700, 800, 500, 600])
    assert.deepEqual(
      await combined.propose(fresh, 4, greedy),
      await model.propose(fresh, 4, greedy)
    )
    const t1 = await combined.propose(looping, 3, {
      temperature: 1,
      topP: 1,
      random: seededRandom(5)
    })
    assert.deepEqual(
      t1,
      await model.propose(looping, 3, { temperature: 1, topP: 1, random: seededRandom(5) })
    )
    assert.ok(
      t1.q.every((q) => q != null),
      'at temperature 1 every q comes from the model draft'
    )
  })

  test('drafts opened for concurrent generations keep their own caches over shared weights', async () => {
    const a = (await findDraft(MODEL))!
    const b = (await findDraft(MODEL))!
    assert.notEqual(a, b)
    const [p, q] = [fixture.prompts[0].promptIds, fixture.prompts[1].promptIds]
    const first = await a.propose(p, 3, greedy)
    await b.propose(q, 3, greedy)
    assert.deepEqual(a.cachedTokens, [...p, ...first.tokens.slice(0, 2)])
    assert.deepEqual(await a.propose(p, 3, greedy), first)
  })

  test('a draft pool reads the bundle once and lends each generation a draft of its own', async () => {
    // a copy of the model directory, removed once the pool is open: nothing is read again
    const dir = join(root, 'pooled')
    await cp(DRAFT, join(dir, 'draft'), { recursive: true })
    await cp(join(MODEL, 'config.json'), join(dir, 'config.json'))
    const pool = await DraftPool.open(dir)
    await rm(dir, { recursive: true })
    assert.equal(pool.name, 'tiny-en-draft+ngram')
    const a = pool.acquire()
    const b = pool.acquire()
    assert.notEqual(a, b, 'generations at the same time get drafts of their own')
    const [p, q] = [fixture.prompts[0].promptIds, fixture.prompts[1].promptIds]
    const fresh = await loadModelDraft(DRAFT)
    const expectP = await fresh.propose(p, 3, greedy)
    const expectQ = await (await loadModelDraft(DRAFT)).propose(q, 3, greedy)
    assert.deepEqual(await a.propose(p, 3, greedy), expectP)
    assert.deepEqual(await b.propose(q, 3, greedy), expectQ)
    pool.release(a)
    // the draft given back is lent again, its cache rolled back to what the new context shares
    const c = pool.acquire()
    assert.equal(c, a)
    assert.deepEqual(await c.propose(q, 3, greedy), expectQ)
    pool.release(b)
    pool.release(c)
    await pool.close()
    assert.throws(() => pool.acquire(), /closed/)
    // a bundle without a draft: n-gram drafts
    const none = await DraftPool.open(join(root, 'nothing-here'))
    assert.equal(none.name, 'ngram')
    assert.ok(none.acquire() instanceof NgramDraft)
    // a broken draft is refused when the pool opens, as openDraft refuses it
    const other = join(root, 'pool-other-vocab')
    await cp(DRAFT, join(other, 'draft'), { recursive: true })
    await writeFile(join(other, 'config.json'), JSON.stringify({ vocab_size: 32000 }))
    await assert.rejects(DraftPool.open(other), /4096 tokens, the target has 32000/)
  })
})

describe('pov model convert carries the draft', () => {
  test('into draft/ outside the manifest (the model id does not change); a broken draft stops the conversion', async () => {
    const withDraft = await convertCheckpoint(MODEL, join(root, 'b1'), { dense: false })
    const without = await convertCheckpoint(MODEL, join(root, 'b2'), { dense: false, draft: false })
    assert.equal(withDraft.modelId, without.modelId)
    assert.ok(!withDraft.artifacts.some((a) => a.path.startsWith('draft/')))
    const d = await findDraft(join(root, 'b1'), { vocabSize: withDraft.config.vocabSize })
    assert.equal(d?.name, 'tiny-en-draft')
    assert.deepEqual(
      (await d!.propose(fixture.prompts[0].promptIds, 3, greedy)).tokens,
      fixture.prompts[0].steps.slice(0, 3).map((s) => s.id)
    )
    assert.equal(await findDraft(join(root, 'b2')), null)
    const { draftDir } = await brokenDraft((dd) =>
      writeCfg(dd, { ...cfg, vocab_size: 100, hidden_size: 8 })
    )
    await assert.rejects(
      convertCheckpoint(MODEL, join(root, 'b3'), { dense: false, draft: draftDir }),
      (err: Error) => err instanceof ConvertError && /cannot be used/.test(err.message)
    )
  })
})
