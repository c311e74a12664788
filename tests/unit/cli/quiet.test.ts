// Quiet and precise output: a warning once, a checksum typo named as such, input checked before
// any network call, a command typo answered in two lines.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { pino } from 'pino'
import { parseAddress } from '../../../cli/chain.js'
import { dedupeWarnings } from '../../../cli/logger.js'
import { REPO_ROOT } from '../../../chain/artifacts.js'

test('addresses: a mixed-case typo is a checksum error, a wrong length says so', () => {
  const good = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
  assert.equal(parseAddress(good), good)
  assert.equal(parseAddress(good.toLowerCase()), good) // all lowercase skips the checksum
  assert.throws(
    () => parseAddress('0x70997970C51812dc3A010C7d01b50e0d17dc79c8', '--address'),
    /invalid --address "0x7099.*": its mixed-case checksum \(EIP-55\) does not match — a typo\?/
  )
  assert.throws(
    () => parseAddress('0x70997970C51812dc3A010C7d01b50e0d17dc79', 'recipient'),
    /invalid recipient ".*": expected 0x followed by 40 hex digits \(it has 38\)/
  )
  assert.throws(() => parseAddress('alice'), /expected 0x followed by 40 hex digits"?$/)
})

function capture(windowMs: number) {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l))
      cb()
    }
  })
  const log = pino({ level: 'debug', hooks: { logMethod: dedupeWarnings(windowMs) } }, sink)
  return { lines, log }
}

test('a warning with the same message and fields is logged once; others pass', () => {
  const { lines, log } = capture(Infinity)
  for (let w = 0; w < 6; w++)
    log.child({ module: 'node' }).warn({ device: 'cuda' }, 'cuda unavailable; falling back to CPU')
  log.warn({ device: 'webgpu' }, 'cuda unavailable; falling back to CPU') // other fields
  log.warn({ err: new Error('a') }, 'call failed')
  log.warn({ err: new Error('b') }, 'call failed') // errors differ by message
  for (let i = 0; i < 3; i++) log.info('progress') // info is never held back
  assert.deepEqual(
    lines.map((l) => [l.msg, l.device ?? (l.err as { message?: string } | undefined)?.message]),
    [
      ['cuda unavailable; falling back to CPU', 'cuda'],
      ['cuda unavailable; falling back to CPU', 'webgpu'],
      ['call failed', 'a'],
      ['call failed', 'b'],
      ['progress', undefined],
      ['progress', undefined],
      ['progress', undefined]
    ]
  )
})

test('long-running commands: a persisting warning comes back after the window, with the count held', async () => {
  const { lines, log } = capture(50)
  for (let i = 0; i < 4; i++) log.warn({ shard: 1 }, 'replica slow')
  await new Promise((r) => setTimeout(r, 80))
  log.warn({ shard: 1 }, 'replica slow')
  assert.equal(lines.length, 2)
  assert.equal(lines[1].repeated, 3)
})

/** A loopback port nothing listens on (fetch refuses well-known ones such as 9 outright). */
const deadPort = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port
    s.close(() => {
      resolve(p)
    })
  })
})
const DEAD_RPC = `http://127.0.0.1:${deadPort}`

const pov = (args: string[]) =>
  spawnSync(process.execPath, [join(REPO_ROOT, 'cli', 'pov.mjs'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, POV_RPC: DEAD_RPC } // nothing listens: a call would fail
  })

test('a command typo: the suggestion and a one-line hint, not the whole help', () => {
  const r = pov(['balanse'])
  assert.notEqual(r.status, 0)
  assert.equal(
    r.stderr.trim(),
    "error: unknown command 'balanse'\n(Did you mean balance?)\n(add --help for usage)"
  )
})

test('inputs are checked before any chain call', () => {
  const bad = pov(['balance', '--address', '0x70997970C51812dc3A010C7d01b50e0d17dc79c8'])
  assert.match(bad.stderr, /checksum/)
  assert.doesNotMatch(bad.stderr, /cannot reach the chain/)
  const price = pov([
    'node',
    'register',
    '--model',
    '0x' + '11'.repeat(32),
    '--shards',
    '0',
    '--stake',
    '1000',
    '--price=-1',
    '--announce',
    '/ip4/127.0.0.1/tcp/4101'
  ])
  assert.match(price.stderr, /invalid --price "-1": expected an amount of POV/)
  assert.doesNotMatch(price.stderr, /cannot reach the chain|failed to detect network/)
  // with nothing at the RPC, one line and no ethers retry chatter on stdout
  const down = pov(['balance', '--address', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'])
  assert.equal(
    down.stderr,
    `pov: cannot reach the chain at ${DEAD_RPC} (ECONNREFUSED) — start one with \`npm run chain\` or pass --rpc URL\n`
  )
  assert.equal(down.stdout, '')
})

test('pov serve start: the API schemas compile without ajv "strict mode" lines', async () => {
  // The lines came from fastify's ajv compiling the request schemas (router/gateway/schemas.ts)
  // when the server starts and at the first request of each route. The service behind the server
  // is not reached by a request that fails validation, so none is needed here.
  const { GatewayServer } = await import('../../../router/gateway/server.js')
  const written: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  const warn = console.warn
  const log = console.log
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    written.push(chunk.toString())
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof process.stderr.write
  console.warn = (...a: unknown[]) => written.push(a.join(' '))
  console.log = (...a: unknown[]) => written.push(a.join(' '))
  try {
    const server = await GatewayServer.start({ service: {} as never, host: '127.0.0.1', port: 0 })
    try {
      for (const path of ['/v1/chat/completions', '/v1/completions']) {
        const res = await fetch(server.url + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', max_tokens: 'many' }) // invalid: validation answers
        })
        assert.equal(res.status, 400, path)
        await res.body?.cancel()
      }
    } finally {
      await server.close()
    }
  } finally {
    process.stderr.write = write
    console.warn = warn
    console.log = log
  }
  assert.deepEqual(
    written.filter((l) => /strict mode/i.test(l)),
    [],
    'no ajv strict-mode lines'
  )
})
