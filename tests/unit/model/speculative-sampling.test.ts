// Speculative sampling keeps the target's distribution exactly (temperature > 0, top-p). The
// target is a cheap synthetic one run through the real generation loop: a second-order Markov
// chain over 8 tokens, whose "previous token" is read from the KV cache (so a cache not rolled
// back past a rejected draft token changes the distribution too). Its plain-decoding
// distribution is computed exactly by enumeration, with the very function sampleToken draws
// from; plain and speculative generations are both checked against it, and the same check run
// with a wrong acceptance rule must fail.
//
// Power: for each generated position 1..3 and each of its top-3 tokens (m = 9 tests), a z-test
// of the observed frequency against the exact probability p. With a family-wise false-alarm
// rate of 1e-3 (Bonferroni: z_crit = Φ⁻¹(1 − 1e-3 / (2m)) ≈ 3.87) and power 0.95 (z = 1.645)
// against a shift of δ = 0.01 in any one of those probabilities, the samples needed are
// N = ((z_crit + 1.645) · σ / δ)², σ² = max p(1 − p) over the tested tokens; the test computes N
// from the exact distribution and runs that many generations (about 70 000).
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { speculativeAccept } from '../../../model/speculative.js'
import {
  resampleFromP,
  SAMPLES,
  tested,
  Z_CRIT,
  Z_POWER,
  type Variant
} from './fixtures/speculative-target.js'

/** Largest |z| over the tested (position, token) pairs, SAMPLES generations, in a worker. */
async function maxZ(variant: Variant): Promise<number> {
  // a worker does not inherit tsx's loader: it registers it, then imports the sampler
  const entry = new URL('./fixtures/speculative-target.ts', import.meta.url).href
  const w = new Worker(
    `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`,
    { eval: true, workerData: { variant } }
  )
  try {
    return await new Promise<number>((resolve, reject) => {
      w.once('message', (z: number) => {
        resolve(z)
      })
      w.once('error', reject)
      w.once('exit', (code) => {
        reject(new Error(`sampler worker exited with ${code}`))
      })
    })
  } finally {
    await w.terminate()
  }
}

describe(
  'speculative sampling: the output distribution is the target’s',
  { concurrency: 2 },
  () => {
    test(`power: ${tested.length} tested probabilities, z_crit ${Z_CRIT.toFixed(2)}, ${SAMPLES} generations`, () => {
      assert.ok(Z_CRIT > 3.5 && Z_CRIT < 4.2)
      assert.ok(Z_POWER > 1.6 && Z_POWER < 1.7)
      // the tested tokens are the likely ones, where a 1 % shift is the hardest to see
      assert.ok(
        tested.every((t) => t.p > 0.05),
        JSON.stringify(tested)
      )
    })

    test('plain decoding matches the exact distribution (the check’s reference is right)', async (t) => {
      const z = await maxZ('plain')
      t.diagnostic(`max |z| ${z.toFixed(2)} (z_crit ${Z_CRIT.toFixed(2)})`)
      assert.ok(z < Z_CRIT, `plain: max |z| ${z.toFixed(2)}`)
    })

    test('deterministic draft (q one-hot, top-p truncating p)', async (t) => {
      const z = await maxZ('greedy')
      t.diagnostic(`max |z| ${z.toFixed(2)} (z_crit ${Z_CRIT.toFixed(2)})`)
      assert.ok(z < Z_CRIT, `max |z| ${z.toFixed(2)} ≥ ${Z_CRIT.toFixed(2)}`)
    })

    test('stochastic draft with its own q', async (t) => {
      const z = await maxZ('stochastic')
      t.diagnostic(`max |z| ${z.toFixed(2)} (z_crit ${Z_CRIT.toFixed(2)})`)
      assert.ok(z < Z_CRIT, `max |z| ${z.toFixed(2)} ≥ ${Z_CRIT.toFixed(2)}`)
    })

    test('the same check catches a wrong acceptance rule', async (t) => {
      assert.notEqual(resampleFromP, speculativeAccept)
      const z = await maxZ('stochastic-wrong-rule')
      t.diagnostic(`max |z| ${z.toFixed(2)} (z_crit ${Z_CRIT.toFixed(2)})`)
      assert.ok(z > Z_CRIT, `a wrong rule went unseen: max |z| ${z.toFixed(2)}`)
    })
  }
)
