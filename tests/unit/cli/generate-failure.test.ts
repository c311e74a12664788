// A generation that fails half-way (a paid node killed mid-`pov infer`): what was generated and
// paid for stays on screen — the tokens, then the error on its own line, then the cost summary.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { convertCheckpoint } from '../../../model/bundle/convert.js'
import { parseGenerateArgs } from '../../../cli/generate/options.js'
import { runGenerate } from '../../../cli/generate/handler.js'
import { openExecutor } from '../../../cli/generate/executor.js'
import { UserError } from '../../../cli/errors.js'

let dir: string | undefined
after(async () => {
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

for (const json of [false, true])
  test(`a run that fails after some tokens keeps them, then the error, then the costs${json ? ' (--json)' : ''}`, async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'pov-genfail-'))
    const bundle = join(dir, 'bundle')
    if (!json) {
      await writeTinyCheckpoint(join(dir, 'hf'), { seed: 7 })
      await convertCheckpoint(join(dir, 'hf'), bundle)
    }
    const args = parseGenerateArgs({
      model: bundle,
      local: true,
      prompt: 'The network of experts',
      maxTokens: '12',
      ignoreEos: true,
      device: 'cpu',
      json
    })
    const log: Array<['out' | 'err', string]> = []
    const io = {
      stdout: { write: (s: string) => log.push(['out', s]) },
      stderr: { write: (s: string) => log.push(['err', s]) },
      progress: false
    }
    let calls = 0
    const err = await runGenerate(args, io, undefined, async (b) => {
      const local = await openExecutor({ kind: 'local' }, b, { device: 'cpu' })
      return {
        describe: 'local, failing',
        close: local.close,
        executor: {
          runExpert: async (layer, expert, x, rows, o) => {
            // the prompt pass and a few tokens go through, then the node "dies"
            if (++calls > 40) throw new Error('connection reset by peer 12D3KooWTest')
            return await local.executor.runExpert(layer, expert, x, rows, o)
          }
        },
        report: () => ({ json: { total: '7' }, text: `cost per node:\n  total ${calls} calls` })
      }
    }).then(
      () => assert.fail('the generation should have failed'),
      (e: unknown) => e
    )
    assert.ok(err instanceof UserError)
    assert.equal(err.reported, true, 'printed already: bin.ts must not print it a second time')
    assert.match(
      err.message,
      /^generation stopped after \d+ token\(s\): .*connection reset by peer/
    )
    const produced = Number(/after (\d+) token/.exec(err.message)![1])
    assert.ok(produced > 0 && produced < 12, `${produced} tokens before the failure`)
    if (json) {
      assert.equal(log.length, 1)
      const out = JSON.parse(log[0][1])
      assert.equal(out.tokens.length, produced)
      assert.equal(out.stopReason, 'error')
      assert.equal(out.error, err.message)
      assert.deepEqual(out.payment, { total: '7' })
      return
    }
    const errAt = log.findIndex(([k, s]) => k === 'err' && s.startsWith('pov: generation stopped'))
    const costAt = log.findIndex(([k, s]) => k === 'out' && s.startsWith('cost per node:'))
    const text = log
      .slice(0, errAt)
      .filter(([k]) => k === 'out')
      .map(([, s]) => s)
      .join('')
    assert.ok(errAt > 0 && costAt > errAt, 'tokens, then the error, then the costs')
    assert.ok(text.endsWith('\n') && text.length > 1, 'the text ends its line before the error')
    assert.equal(log.filter(([, s]) => s.includes('connection reset')).length, 1, 'said once')
  })
