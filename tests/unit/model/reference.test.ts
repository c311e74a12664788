// Properties of the float64 reference itself (it is the ground truth of the ORT tests, so it gets
// checks that do not go through ORT): causality, window semantics, expert-permutation invariance,
// top-k renormalisation, exclusion fallback.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import {
  loadReferenceModel,
  rankDescending,
  referenceForward,
  referenceGreedy,
  softmax64,
  type ReferenceModel
} from '../../../model/reference.js'

let root: string
let m: ReferenceModel
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pov-reference-'))
  await writeTinyCheckpoint(join(root, 'hf'), { seed: 1, layers: 2 })
  m = await loadReferenceModel(join(root, 'hf'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}

describe('reference forward', () => {
  test('causal: appending tokens does not change earlier positions', () => {
    const V = m.config.vocabSize
    const a = referenceForward(m, [1, 5, 9]).logits
    const b = referenceForward(m, [1, 5, 9, 200, 7]).logits
    assert.ok(maxDiff(a, b.subarray(0, 3 * V)) < 1e-12)
  })

  test('a sliding window at least as long as the sequence changes nothing; a short one does', () => {
    const ids = [1, 5, 9, 13, 17, 21]
    const full = referenceForward(m, ids).logits
    const wide = referenceForward({ ...m, config: { ...m.config, slidingWindow: 6 } }, ids).logits
    const narrow = referenceForward({ ...m, config: { ...m.config, slidingWindow: 2 } }, ids).logits
    assert.ok(maxDiff(full, wide) < 1e-12)
    const V = m.config.vocabSize
    assert.ok(
      maxDiff(full.subarray(0, 2 * V), narrow.subarray(0, 2 * V)) < 1e-12,
      'positions < window are unaffected'
    )
    assert.ok(maxDiff(full, narrow) > 1e-3)
  })

  test('permuting the experts (and the gate rows) leaves the logits unchanged', () => {
    const perm = [3, 0, 7, 1, 6, 2, 5, 4]
    const H = m.config.hiddenSize
    const layers = m.layers.map((l) => {
      const gate = new Float64Array(l.gate.length)
      perm.forEach((src, dst) => {
        gate.set(l.gate.subarray(src * H, (src + 1) * H), dst * H)
      })
      return { ...l, gate, experts: perm.map((src) => l.experts[src]) }
    })
    const ids = [1, 5, 9, 13]
    assert.ok(
      maxDiff(referenceForward(m, ids).logits, referenceForward({ ...m, layers }, ids).logits) <
        1e-9
    )
  })

  test('excluding an expert that is never chosen changes nothing; excluding a chosen one does', () => {
    const ids = [1, 5, 9, 13]
    const base = referenceForward(m, ids).logits
    // Layer 0 experts whose exclusion changes the output = those some token routes to.
    const chosen = new Set<number>()
    const E = m.config.numExperts
    for (let e = 0; e < E; e++) {
      const out = referenceForward(m, ids, { excluded: [{ layer: 0, expert: e }] }).logits
      if (maxDiff(out, base) > 1e-9) chosen.add(e)
    }
    assert.ok(chosen.size >= m.config.topK, 'some experts are used')
    assert.ok(chosen.size < E, 'some experts are not used by 4 tokens')
  })

  test('greedy steps report margins and gate gaps; eos stops', () => {
    const steps = referenceGreedy(m, [1, 5, 9], 4)
    assert.equal(steps.length, 4)
    for (const s of steps) {
      assert.ok(s.margin >= 0 && Number.isFinite(s.minGateGap))
      assert.equal(s.id, rankDescending(s.logits)[0])
    }
    const stopped = referenceGreedy(m, [1, 5, 9], 4, { eosTokenId: steps[1].id })
    assert.equal(stopped.length, steps.findIndex((s) => s.id === steps[1].id) + 1)
  })

  test('softmax64 and rankDescending', () => {
    const p = softmax64([1, 3, 2])
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-15)
    assert.deepEqual(rankDescending([0.1, 0.5, 0.5, 0.2]), [1, 2, 3, 0])
  })
})
