// The local chain beside others: `npm run chain` records where it listens and says so; a
// deployment file is checked against the chain it is used with (code at its addresses, the same
// genesis), so a restarted chain or another project's node on 8545 gets one line that says what
// to do instead of "could not decode result data".
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { deploymentMismatch, type Deployment } from '../../../chain/deployment.js'
import { defaultLocalRpc, readLocalChain, writeLocalChain } from '../../../chain/local-chain.js'
import { REPO_ROOT } from '../../../chain/artifacts.js'

const dep = (over: Partial<Deployment> = {}): Deployment => ({
  chainId: 31337,
  deployer: '0x' + '11'.repeat(20),
  startBlock: 0,
  deployedAt: '2026-12-07T00:00:00Z',
  contracts: {
    token: '0x' + 'aa'.repeat(20),
    models: '0x' + 'bb'.repeat(20),
    registry: '0x' + 'cc'.repeat(20),
    escrow: '0x' + 'dd'.repeat(20),
    governor: '0x' + 'ee'.repeat(20),
    timelock: '0x' + 'ff'.repeat(20)
  },
  params: {} as Deployment['params'],
  ...over
})

/** A JSON-RPC node that answers from a table (the two calls the check makes). */
const rpc = (code: string, genesis: string) => ({
  send: async (method: string): Promise<unknown> =>
    method === 'eth_getCode' ? code : method === 'eth_getBlockByNumber' ? { hash: genesis } : null
})

test('a deployment is checked against the chain: code at its addresses, the same genesis', async () => {
  const g = '0x' + '12'.repeat(32)
  assert.equal(await deploymentMismatch(rpc('0x6080', g), dep({ genesisHash: g })), null)
  assert.equal(await deploymentMismatch(rpc('0x6080', g), dep()), null) // older files: no genesis
  assert.match(
    (await deploymentMismatch(rpc('0x', g), dep()))!,
    /no contract code at its addresses on chain 31337/
  )
  assert.match(
    (await deploymentMismatch(rpc('0x6080', '0x' + '34'.repeat(32)), dep({ genesisHash: g })))!,
    /another chain with the same id 31337 \(genesis 0x12121212…, this one 0x34343434…/
  )
})

test('the recorded local chain is used only while its process lives', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-localchain-'))
  try {
    assert.equal(readLocalChain(dir), null)
    assert.equal(defaultLocalRpc(dir), 'http://127.0.0.1:8545')
    writeLocalChain({ rpc: 'http://127.0.0.1:9', port: 9, pid: process.pid, startedAt: '' }, dir)
    assert.equal(defaultLocalRpc(dir), 'http://127.0.0.1:9')
    // a chain that was killed without cleaning up: its pid is gone
    const dead = spawn(process.execPath, ['-e', '0'])
    await once(dead, 'exit')
    writeLocalChain({ rpc: 'http://127.0.0.1:9', port: 9, pid: dead.pid!, startedAt: '' }, dir)
    assert.equal(defaultLocalRpc(dir), 'http://127.0.0.1:8545')
    await writeFile(join(dir, 'local-chain.json'), '{not json')
    assert.equal(readLocalChain(dir), null)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

const tsx = createRequire(import.meta.url).resolve('tsx')
const chainScript = join(REPO_ROOT, 'deploy', 'chain.ts')

test('npm run chain: a taken port is refused in one line; --port 0 takes a free one and records it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-localchain-'))
  const file = join(dir, 'local-chain.json')
  const env = { ...process.env, POV_LOCAL_CHAIN_FILE: file }
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  const taken = (busy.address() as { port: number }).port
  try {
    const refused = spawn(
      process.execPath,
      ['--import', tsx, chainScript, '--port', String(taken)],
      {
        env
      }
    )
    let err = ''
    refused.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const [code] = (await once(refused, 'exit')) as [number]
    assert.equal(code, 1)
    assert.match(err, new RegExp(`port ${taken} is taken — .*--port 0`))
    assert.equal(err.trim().split('\n').length, 1, err)

    const chain = spawn(process.execPath, ['--import', tsx, chainScript, '--port', '0'], { env })
    let out = ''
    chain.stdout.on('data', (d: Buffer) => (out += d.toString()))
    chain.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const deadline = Date.now() + 60_000
    while (!/chain: http:\/\/127\.0\.0\.1:\d+ \(recorded/.test(out) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
    const rpcUrl = /chain: (http:\/\/127\.0\.0\.1:\d+) \(recorded/.exec(out)?.[1]
    assert.ok(rpcUrl != null, out.slice(-2000))
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).rpc, rpcUrl)
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] })
    })
    assert.equal(((await res.json()) as { result: string }).result, '0x7a69')
    chain.kill('SIGINT')
    await once(chain, 'exit')
    assert.equal(existsSync(file), false, 'the record goes with the chain')
  } finally {
    busy.close()
    await rm(dir, { recursive: true, force: true })
  }
})
