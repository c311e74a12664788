// One node per data directory and keystore (#22 item 14): a second process opening the same
// voucher journal is refused with one line naming the running node; a lock left by a killed
// node is taken over; `--price 0` is refused without --allow-free before any chain call.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { VoucherStore } from '../../../../node/payments/voucher-store.js'
import { DirLockedError, lockDir } from '../../../../node/payments/dir-lock.js'
import { REPO_ROOT } from '../../../../chain/artifacts.js'

const dir = await mkdtemp(join(tmpdir(), 'pov-lock-'))
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('a second process on the same voucher journal is refused; a killed owner’s lock is taken over', async () => {
  const journal = join(dir, 'vouchers')
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { VoucherStore } = await import(${JSON.stringify(join(REPO_ROOT, 'node/payments/voucher-store.ts'))}); await VoucherStore.open(${JSON.stringify(journal)}); console.log('open'); setInterval(() => {}, 1000)`
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] }
  )
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer]
    assert.equal(line.toString().trim(), 'open')
    await assert.rejects(VoucherStore.open(journal), (err: Error) => {
      assert.ok(err instanceof DirLockedError)
      assert.equal(
        err.message,
        `another pov node (pid ${child.pid}) is running on the voucher journal in ${journal} — stop it first, or give this one its own --data-dir and keystore`
      )
      return true
    })
    assert.throws(() => lockDir(journal), DirLockedError)
  } finally {
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  // the owner is gone (SIGKILL: no clean-up): its lock is stale and taken over
  const store = await VoucherStore.open(journal)
  await store.close()
  // closed: the lock is released, a new owner takes it
  lockDir(journal).release()
})

test('--price 0 is refused without --allow-free, before any chain call', async () => {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as { port: number }).port
  srv.close() // nothing listens there now: a chain call would fail with "cannot reach"
  const args = (extra: string[]): string[] => [
    join(REPO_ROOT, 'cli', 'pov.mjs'),
    'node',
    'register',
    '--model',
    '0x' + '11'.repeat(32),
    '--shards',
    '0',
    '--stake',
    '1000',
    '--price',
    '0',
    '--announce',
    '/ip4/127.0.0.1/tcp/4101',
    '--data-dir',
    dir,
    ...extra
  ]
  const env = { ...process.env, POV_RPC: `http://127.0.0.1:${port}`, POV_PASSWORD: 'x' }
  const r = spawnSync(process.execPath, args([]), { encoding: 'utf8', env })
  assert.notEqual(r.status, 0)
  assert.equal(
    r.stderr.trim(),
    'pov: --price 0 would serve every client for nothing — give a price such as 0.0001, or add --allow-free if that is what you want'
  )
  // with --allow-free it goes on to the chain (and fails there: nothing listens)
  const free = spawnSync(process.execPath, args(['--allow-free']), { encoding: 'utf8', env })
  assert.notEqual(free.status, 0)
  assert.doesNotMatch(free.stderr, /--price 0/)
  assert.match(free.stderr, /cannot reach the chain|no keystore/)
})
