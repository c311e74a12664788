// Adaptive k across runs of `pov generate` / `pov infer` (cli/generate/draft-length.ts): a run
// writes its measurements to <data-dir>/speculative/, the next run of the same model and
// greedy/sampled goes on from them, and a file that is corrupt or written for something else is
// ignored with a debug line, never an error.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { convertCheckpoint } from '../../../model/bundle/convert.js'
import { loadBundle } from '../../../model/bundle/load.js'
import { DraftLength, type DraftLengthState } from '../../../model/speculative.js'
import { parseGenerateArgs } from '../../../cli/generate/options.js'
import { runGenerate } from '../../../cli/generate/handler.js'
import {
  draftLengthFile,
  loadDraftLength,
  saveDraftLength,
  type DraftLengthKey
} from '../../../cli/generate/draft-length.js'

const MAX_TOKENS = 6
let root: string
let bundleDir: string
let key: DraftLengthKey

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pov-draft-length-'))
  bundleDir = join(root, 'bundle')
  await writeTinyCheckpoint(join(root, 'hf'), { seed: 7 })
  await convertCheckpoint(join(root, 'hf'), bundleDir)
  key = { modelId: (await loadBundle(bundleDir)).modelId, sampled: false }
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

/** A DraftLength that measured a good draft on cheap rows: it drafts more than the prior's 1. */
function measured(): DraftLength {
  const l = new DraftLength()
  for (let i = 0; i < 30; i++) {
    const k = l.next()
    l.record({ proposed: k, accepted: k, verifyMs: 10 + k, draftMs: 0.1 * k, asked: k })
  }
  return l
}

/** `pov generate --local --speculative --data-dir DIR`, greedy; its debug lines. */
async function generateIn(dataDir: string): Promise<{ debug: string[]; rounds: number }> {
  const debug: string[] = []
  const args = parseGenerateArgs({
    model: bundleDir,
    local: true,
    speculative: true,
    dataDir,
    promptIds: '1,2,3,4,1,2,3,4',
    maxTokens: String(MAX_TOKENS),
    ignoreEos: true,
    device: 'cpu',
    json: true
  })
  const io = {
    stdout: { write: () => true },
    stderr: { write: () => true },
    progress: false,
    debug: (l: string) => debug.push(l)
  }
  const summary = await runGenerate(args, io)
  return { debug, rounds: summary.timings.rounds }
}

async function saved(dataDir: string): Promise<DraftLengthState> {
  const f = JSON.parse(await readFile(draftLengthFile(dataDir, key), 'utf8')) as {
    state: DraftLengthState
  }
  return f.state
}

describe('adaptive k kept across runs', () => {
  test('saved and loaded, a DraftLength goes on with the same measurements and the same k', async () => {
    const dataDir = join(root, 'roundtrip')
    const l = measured()
    assert.ok(l.state().current > 1, `a good draft drafts more than 1 (k ${l.state().current})`)
    await saveDraftLength(dataDir, key, l)
    const back = await loadDraftLength(dataDir, key)
    assert.deepEqual(back.state(), l.state())
    assert.equal(back.next(), l.next())
    // the other decoding mode has its own file: nothing saved there yet
    assert.deepEqual(
      (await loadDraftLength(dataDir, { ...key, sampled: true })).state(),
      new DraftLength().state()
    )
  })

  test('a second pov generate starts from the k the first one saved', async () => {
    const dataDir = join(root, 'second-run')
    await generateIn(dataDir)
    const first = await saved(dataDir)
    // a run calls next() at most once per token after the first
    assert.ok(first.rounds >= 1 && first.rounds <= MAX_TOKENS - 1, `${first.rounds} rounds`)
    await generateIn(dataDir)
    const second = await saved(dataDir)
    assert.ok(
      second.rounds > first.rounds,
      `the second run counted on from the first (${first.rounds} → ${second.rounds})`
    )

    // a saved k of 0 (a draft not worth asking): every round of the next run drafts nothing, where
    // a run from the prior drafts at k = 1 first (0 comes back only as the saved state says)
    const zero: DraftLengthState = {
      ...new DraftLength().state(),
      acc: 0.01,
      rej: 20,
      rounds: 1000,
      sinceProbe: 0,
      current: 0
    }
    await writeFile(
      draftLengthFile(dataDir, key),
      JSON.stringify({
        format: 'pov-draft-length/1',
        modelId: key.modelId,
        mode: 'greedy',
        state: zero
      })
    )
    const run = await generateIn(dataDir)
    assert.ok(
      run.debug.some((l) => l.includes('going on from') && l.includes('(k 0)')),
      run.debug.join('\n')
    )
    const after = await saved(dataDir)
    assert.ok(after.rounds > 1000, `went on from the saved rounds (${after.rounds})`)
    // sinceProbe only grows while k is 0 (any round at k > 0 resets it): every round stayed at 0
    assert.equal(after.sinceProbe, after.rounds - 1000)
    assert.equal(after.current, 0)
  })

  test('a corrupt file is ignored with a debug line: the run starts from the prior and rewrites it', async () => {
    const dataDir = join(root, 'corrupt')
    await mkdir(join(dataDir, 'speculative'), { recursive: true })
    await writeFile(draftLengthFile(dataDir, key), '{"format":"pov-draft-length/1","mod')
    const run = await generateIn(dataDir)
    assert.ok(
      run.debug.some(
        (l) => l.startsWith('adaptive k: ignoring') && l.includes('starting from the prior')
      ),
      run.debug.join('\n')
    )
    const now = await saved(dataDir)
    assert.ok(now.rounds >= 1 && now.rounds <= MAX_TOKENS - 1, `started cold: ${now.rounds} rounds`)
  })

  test('a file written for something else is ignored, each with a debug line saying why', async () => {
    const dataDir = join(root, 'foreign')
    const file = draftLengthFile(dataDir, key)
    await mkdir(join(dataDir, 'speculative'), { recursive: true })
    const state = measured().state()
    const cases: Array<[string, unknown]> = [
      [
        'written for model 0xabab',
        { format: 'pov-draft-length/1', modelId: '0x' + 'ab'.repeat(32), mode: 'greedy', state }
      ],
      [
        'sampled decoding',
        { format: 'pov-draft-length/1', modelId: key.modelId, mode: 'sampled', state }
      ],
      ['format is "other/2"', { format: 'other/2', modelId: key.modelId, mode: 'greedy', state }],
      ['format is undefined', [1, 2, 3]],
      ['format is undefined', null],
      [
        'acc is -1, not a count',
        {
          format: 'pov-draft-length/1',
          modelId: key.modelId,
          mode: 'greedy',
          state: { ...state, acc: -1 }
        }
      ],
      [
        'current is 1.5, not a whole number',
        {
          format: 'pov-draft-length/1',
          modelId: key.modelId,
          mode: 'greedy',
          state: { ...state, current: 1.5 }
        }
      ],
      [
        'sxy is undefined, not a count',
        {
          format: 'pov-draft-length/1',
          modelId: key.modelId,
          mode: 'greedy',
          state: { ...state, sxy: undefined }
        }
      ]
    ]
    for (const [why, body] of cases) {
      await writeFile(file, JSON.stringify(body))
      const debug: string[] = []
      const l = await loadDraftLength(dataDir, key, (line) => debug.push(line))
      assert.deepEqual(l.state(), new DraftLength().state(), why)
      assert.equal(debug.length, 1, why)
      assert.ok(debug[0].includes(why), `${why}: ${debug[0]}`)
    }
    // no file at all is the usual first run: nothing to say
    await rm(file)
    const debug: string[] = []
    await loadDraftLength(dataDir, key, (line) => debug.push(line))
    assert.deepEqual(debug, [])
  })

  test('a write that fails is a debug line, not an error', async () => {
    const blocked = join(root, 'blocked')
    await writeFile(blocked, 'a file where the data directory should be')
    const debug: string[] = []
    await saveDraftLength(blocked, key, measured(), (line) => debug.push(line))
    assert.equal(debug.length, 1)
    assert.match(debug[0], /^adaptive k: cannot write /)
  })
})
