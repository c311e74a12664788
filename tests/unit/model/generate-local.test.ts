// The single-process path end to end: convertCheckpoint (with the dense builder) → loadBundle →
// DenseRuntime + local ExpertRuntime over all shards → generate, vs the float64 reference; and
// the `pov generate` handler's --json output.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint, type TinyOptions } from '../../../model/tiny.js'
import { convertCheckpoint } from '../../../model/bundle/convert.js'
import { loadBundle } from '../../../model/bundle/load.js'
import { loadExpertRuntime } from '../../../model/runtime/expert.js'
import { loadDenseRuntime } from '../../../model/dense/index.js'
import { generateAll } from '../../../model/generate.js'
import { loadReferenceModel, referenceGreedy } from '../../../model/reference.js'
import { runGenerate } from '../../../cli/generate/handler.js'
import { parseGenerateArgs } from '../../../cli/generate/options.js'

const TOL = 1e-4
const root = await mkdtemp(join(tmpdir(), 'pov-generate-local-'))
after(async () => {
  await rm(root, { recursive: true, force: true })
})

let n = 0
async function convert(opts: TinyOptions): Promise<{ hf: string; bundleDir: string }> {
  const hf = join(root, `hf${n}`)
  const bundleDir = join(root, `b${n++}`)
  await writeTinyCheckpoint(hf, opts)
  await convertCheckpoint(hf, bundleDir)
  return { hf, bundleDir }
}

describe('single process: dense + local ExpertRuntime vs reference', () => {
  for (const opts of [
    { dtype: 'bf16', shards: 2, seed: 1 },
    { dtype: 'f32', seed: 3, slidingWindow: 4 }
  ] as TinyOptions[]) {
    test(`${opts.dtype}${opts.shards === 2 ? ' sharded' : ''}${opts.slidingWindow != null ? ' sliding window' : ''}`, async () => {
      const { hf, bundleDir } = await convert(opts)
      const bundle = await loadBundle(bundleDir)
      const dense = await loadDenseRuntime(bundle)
      const experts = await loadExpertRuntime(
        bundle,
        bundle.manifest.shards.map((s) => s.id),
        { intraOpNumThreads: 0 }
      )
      try {
        const prompt = [1, 10, 20, 30, 40, 50]
        const res = await generateAll({
          dense,
          experts,
          promptIds: prompt,
          maxTokens: 16,
          eosTokenId: null,
          returnLogits: true
        })
        const want = referenceGreedy(await loadReferenceModel(hf), prompt, 16)
        for (let i = 0; i < 16; i++) {
          assert.ok(
            want[i].margin > 10 * TOL && want[i].minGateGap > TOL,
            `step ${i}: near-tie in the reference`
          )
          let d = 0
          for (let j = 0; j < want[i].logits.length; j++)
            d = Math.max(d, Math.abs(want[i].logits[j] - res.steps[i].logits![j]))
          assert.ok(d < TOL, `step ${i}: logits differ by ${d}`)
          assert.equal(res.steps[i].id, want[i].id)
        }
        assert.equal(res.degraded, false)
      } finally {
        await experts.close()
        await dense.close()
      }
    })
  }
})

describe('pov generate handler', () => {
  test('--json prints tokens, text, degraded, logits and timings', async () => {
    const { hf, bundleDir } = await convert({ dtype: 'bf16', seed: 1 })
    let out = ''
    const args = parseGenerateArgs({
      model: bundleDir,
      local: true,
      promptIds: '1,10,20,30,40,50',
      maxTokens: '5',
      device: 'cpu',
      json: true,
      logits: true,
      ignoreEos: true
    })
    await runGenerate(args, {
      stdout: {
        write: (s: string) => {
          out += s
        }
      },
      stderr: { write: () => {} },
      progress: false
    })
    const j = JSON.parse(out)
    const want = referenceGreedy(await loadReferenceModel(hf), [1, 10, 20, 30, 40, 50], 5)
    assert.deepEqual(
      j.tokens,
      want.map((s) => s.id)
    )
    assert.equal(typeof j.text, 'string')
    assert.equal(j.degraded, false)
    assert.equal(j.logits.length, 512)
    assert.ok(j.timings.prefillMs > 0)
    assert.match(j.modelId, /^0x[0-9a-f]{64}$/)
  })

  test('--speculative: the same tokens as plain, and timings.rounds / acceptedTokens / draftMs', async () => {
    const { bundleDir } = await convert({ dtype: 'f32', seed: 1 })
    const run = async (
      extra: Partial<Parameters<typeof parseGenerateArgs>[0]>
    ): Promise<{
      tokens: number[]
      draft: string | null
      timings: Record<string, number>
    }> => {
      let out = ''
      const args = parseGenerateArgs({
        model: bundleDir,
        local: true,
        promptIds: '1,10,20,30,40,50',
        maxTokens: '24',
        device: 'cpu',
        json: true,
        ignoreEos: true,
        ...extra
      })
      await runGenerate(args, {
        stdout: {
          write: (s: string) => {
            out += s
          }
        },
        stderr: { write: () => {} },
        progress: false
      })
      return JSON.parse(out)
    }
    const plain = await run({})
    assert.equal(plain.draft, null)
    assert.equal(plain.timings.rounds, 23)
    assert.equal(plain.timings.acceptedTokens, 0)
    for (const extra of [{ speculative: true }, { draftTokens: '3' }]) {
      const spec = await run(extra)
      assert.deepEqual(spec.tokens, plain.tokens)
      assert.equal(spec.draft, 'ngram')
      const t = spec.timings
      assert.equal(t.rounds + t.acceptedTokens, 23)
      assert.ok(t.acceptedTokens <= t.draftedTokens)
      assert.ok(t.draftMs >= 0 && typeof t.draftMs === 'number')
    }
  })

  test('text prompt streams decoded text', async () => {
    const { bundleDir } = await convert({ dtype: 'f32', seed: 2 })
    let out = ''
    const args = parseGenerateArgs({
      model: bundleDir,
      local: true,
      prompt: 'Hello world',
      maxTokens: '4',
      device: 'cpu'
    })
    const summary = await runGenerate(args, {
      stdout: {
        write: (s: string) => {
          out += s
        }
      },
      stderr: { write: () => {} },
      progress: false
    })
    assert.ok(summary.tokens.length >= 1)
    assert.ok(out.endsWith('\n'))
  })

  test('argument errors are one-line user errors', () => {
    assert.throws(
      () => parseGenerateArgs({ model: 'x', maxTokens: '4', device: 'cpu', prompt: 'a' }),
      /--local/
    )
    assert.throws(
      () => parseGenerateArgs({ model: 'x', local: true, maxTokens: '4', device: 'cpu' }),
      /--prompt/
    )
    assert.throws(
      () =>
        parseGenerateArgs({ model: 'x', local: true, maxTokens: '-1', device: 'cpu', prompt: 'a' }),
      /--max-tokens/
    )
    assert.throws(
      () =>
        parseGenerateArgs({
          model: 'x',
          local: true,
          maxTokens: '4',
          device: 'cpu',
          promptIds: '1,a'
        }),
      /--prompt-ids/
    )
    const base = { model: 'x', maxTokens: '4', device: 'cpu', prompt: 'a' }
    // on by default with --peers, off with --local unless asked
    assert.equal(parseGenerateArgs({ ...base, peers: ['/ip4/1.2.3.4'] }).speculative.enabled, true)
    assert.equal(parseGenerateArgs({ ...base, local: true }).speculative.enabled, false)
    assert.deepEqual(parseGenerateArgs({ ...base, local: true, draftTokens: '2' }).speculative, {
      enabled: true,
      draftTokens: 2
    })
    assert.equal(
      parseGenerateArgs({ ...base, peers: ['/ip4/1.2.3.4'], speculative: false }).speculative
        .enabled,
      false
    )
    assert.throws(
      () => parseGenerateArgs({ ...base, local: true, draftTokens: 'x' }),
      /--draft-tokens/
    )
    assert.throws(
      () => parseGenerateArgs({ ...base, local: true, draftTokens: '2', speculative: false }),
      /--no-speculative/
    )
  })
})
