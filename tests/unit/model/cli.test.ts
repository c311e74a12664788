import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../../model/bundle/index.js'
import { register } from '../../../cli/model/index.js'

/** Runs `pov <args>` in-process with only the model commands registered; captures stdout. */
async function pov(...args: string[]): Promise<{ stdout: string }> {
  const program = new Command('pov').exitOverride()
  register(program)
  let stdout = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk)
    return true
  }) as typeof process.stdout.write
  try {
    await program.parseAsync(['node', 'pov', ...args])
  } finally {
    process.stdout.write = write
  }
  return { stdout }
}

test('pov model init-tiny / convert / inspect', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'pov-cli-model-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  await pov(
    'model',
    'init-tiny',
    join(d, 'a'),
    '--seed',
    '9',
    '--dtype',
    'bf16',
    '--shards',
    '2',
    '--layers',
    '1',
    '--experts',
    '4',
    '--sliding-window',
    '32'
  )
  await pov(
    'model',
    'init-tiny',
    join(d, 'b'),
    '--seed',
    '9',
    '--dtype',
    'bf16',
    '--shards',
    '2',
    '--layers',
    '1',
    '--experts',
    '4',
    '--sliding-window',
    '32'
  )
  for (const f of [
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
    'tokenizer.json',
    'config.json'
  ]) {
    assert.deepEqual(await readFile(join(d, 'a', f)), await readFile(join(d, 'b', f)), f)
  }
  const { stdout } = await pov(
    'model',
    'convert',
    join(d, 'a'),
    join(d, 'bundle'),
    '--quant',
    'int8',
    '--json',
    '--experts-only'
  )
  const res = JSON.parse(stdout)
  const b = await loadBundle(join(d, 'bundle'))
  assert.equal(res.modelId, b.modelId)
  assert.equal(b.manifest.quant, 'int8')
  assert.equal(b.config.slidingWindow, 32)
  // the demo approves the model on-chain with these figures
  assert.deepEqual(res.config, { numLayers: b.config.numLayers, numExperts: b.config.numExperts })
  const info = JSON.parse(
    (await pov('model', 'inspect', join(d, 'bundle'), '--verify', '--json')).stdout
  )
  assert.equal(info.modelId, b.modelId)
  assert.equal(info.verified, true)
  await assert.rejects(
    pov('model', 'init-tiny', join(d, 'c'), '--vocab', '100'),
    (e: Error) => e.name === 'UserError' && /needs vocab_size >= 259/.test(e.message)
  )
  await assert.rejects(
    pov('model', 'convert', join(d, 'nope'), join(d, 'x')),
    (e: Error) => e.name === 'UserError' && /^convert: .*config\.json/.test(e.message)
  )
})
