import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { addChainOptions, applyConfigFile, parseIntList, redacted, DEFAULT_RPC } from '../../../cli/options.js'

async function parse (argv: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    const program = new Command('pov').exitOverride()
    applyConfigFile(program)
    let seen: Record<string, unknown> = {}
    addChainOptions(program.command('balance')).action((o: Record<string, unknown>) => { seen = o })
    await program.parseAsync(['node', 'pov', ...argv])
    return seen
  } finally {
    for (const k of Object.keys(env)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

test('settings precedence: flags > POV_* env > --config file > defaults', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-cfg-'))
  const cfg = join(dir, 'pov.yaml')
  await writeFile(cfg, 'rpc: http://127.0.0.1:7000\ndeployment: /from/config.json\n')
  assert.equal((await parse(['balance'])).rpc, DEFAULT_RPC)
  assert.equal((await parse(['--config', cfg, 'balance'])).rpc, 'http://127.0.0.1:7000')
  assert.equal((await parse(['--config', cfg, 'balance'])).deployment, '/from/config.json')
  assert.equal((await parse(['--config', cfg, 'balance'], { POV_RPC: 'http://127.0.0.1:7001' })).rpc, 'http://127.0.0.1:7001')
  assert.equal((await parse(['--config', cfg, 'balance', '--rpc', 'http://127.0.0.1:7002'], { POV_RPC: 'http://127.0.0.1:7001' })).rpc, 'http://127.0.0.1:7002')
})

test('a bad --config file is a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-cfg-'))
  await assert.rejects(parse(['--config', join(dir, 'missing.yaml'), 'balance']), /cannot read --config .*missing\.yaml/)
})

test('lists and redaction', () => {
  assert.deepEqual(parseIntList('0, 1,7'), [0, 1, 7])
  assert.throws(() => parseIntList('0,-1', '--shards'), /invalid --shards "0,-1"/)
  assert.throws(() => parseIntList('a'), /comma-separated non-negative integers/)
  assert.deepEqual(redacted({ password: 'x', privateKey: 'y', keystore: '/k', rpc: 'u' }), { password: '<redacted>', privateKey: '<redacted>', keystore: '/k', rpc: 'u' })
})
