// The n-gram (prompt lookup) draft: longest suffix first, most recent occurrence, overlapping
// copy through loops, nothing when nothing matches.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { NgramDraft, lookup } from '../../../model/draft/ngram.js'

describe('ngram draft', () => {
  test('proposes what followed the most recent occurrence of the longest suffix', () => {
    // suffix [2, 3] occurs at 1 (→ 9) and at 5 (→ 4, 5): the most recent wins
    assert.deepEqual(lookup([1, 2, 3, 9, 7, 2, 3, 4, 5, 2, 3], 2, 2, 4), [4, 5])
    // a longer suffix beats a more recent shorter one: [8, 2, 3] at 0 → 6
    assert.deepEqual(lookup([8, 2, 3, 6, 2, 3, 7, 8, 2, 3], 1, 2, 4), [6])
  })

  test('a loop shorter than k is copied round and round', () => {
    assert.deepEqual(lookup([5, 1, 2, 1, 2], 5, 2, 4), [1, 2, 1, 2, 1])
    assert.deepEqual(lookup([7, 7, 7], 4, 2, 4), [7, 7, 7, 7])
  })

  test('nothing matches, k 0, too short a context: no proposal', async () => {
    assert.deepEqual(lookup([1, 2, 3, 4], 3, 2, 4), [])
    assert.deepEqual(lookup([1, 2, 1, 2], 0, 2, 4), [])
    assert.deepEqual(lookup([1], 3, 1, 4), [])
    const d = new NgramDraft()
    const p = await d.propose([3, 4, 3, 4], 3)
    assert.deepEqual(p, { tokens: [3, 4, 3], q: [null, null, null] })
    assert.equal(d.name, 'ngram')
  })

  test('the search window bounds how far back it looks', () => {
    const ctx = [1, 2, 9, ...Array.from({ length: 20 }, (_, i) => 100 + i), 1, 2]
    assert.deepEqual(lookup(ctx, 1, 2, 2), [9])
    assert.deepEqual(lookup(ctx, 1, 2, 2, 10), [])
  })

  test('bad settings: a clear error', () => {
    assert.throws(() => new NgramDraft({ minNgram: 3, maxNgram: 2 }), /minNgram/)
    assert.throws(() => new NgramDraft({ minNgram: 0 }), /minNgram/)
  })
})
