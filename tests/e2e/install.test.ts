// An installed `pov`: `npm install -g` of a checkout puts `pov` on the PATH; it runs from any
// directory whatever the system's Node (20 on these machines: the launcher, cli/pov, starts the
// Node 22 the checkout's `npm ci` installed) and prints nothing but what was asked. The install is
// a link to the checkout (--ignore-scripts: dist/ is already built by `npm ci`). Start-up time
// is measured by `npm run bench:cli`, not here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO } from '../../deploy/localnet.js'

/** The machine's own PATH without this checkout's node_modules/.bin (npm test puts Node 22 first). */
const systemPath = (process.env.PATH ?? '')
  .split(':')
  .filter((p) => !p.includes('node_modules'))
  .join(':')

test('npm install -g from the checkout: pov on the PATH, from any directory, quiet', async (t) => {
  const npm = spawnSync('npm', ['--version'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: systemPath }
  })
  if (npm.status !== 0) {
    t.skip(`no npm on the system PATH (${systemPath}): cannot install globally here`)
    return
  }
  const prefix = await mkdtemp(join(tmpdir(), 'pov-install-'))
  const elsewhere = await mkdtemp(join(tmpdir(), 'pov-cwd-'))
  try {
    const env = { ...process.env, PATH: systemPath }
    const inst = spawnSync('npm', ['install', '-g', '--ignore-scripts', '--prefix', prefix, REPO], {
      encoding: 'utf8',
      env
    })
    assert.equal(inst.status, 0, inst.stderr)
    assert.doesNotMatch(inst.stderr, /warn/i, 'npm install -g prints no warning')
    const run = (args: string[]) =>
      spawnSync('pov', args, {
        cwd: elsewhere,
        encoding: 'utf8',
        env: { ...env, PATH: `${join(prefix, 'bin')}:${systemPath}` }
      })
    const sysNode = spawnSync('node', ['--version'], { encoding: 'utf8', env }).stdout.trim()
    const help = run(['--help'])
    assert.equal(help.status, 0, help.stderr)
    assert.match(help.stdout, /^Usage: pov /m)
    assert.equal(help.stderr, '', `pov --help under the system's Node ${sysNode} prints no warning`)
    const version = run(['--version'])
    assert.equal(version.stdout.trim(), '0.1.0')
    // a command that needs the libraries resolves them from the checkout, not from the cwd
    const made = run(['model', 'init-tiny', 'tiny-hf', '--json'])
    assert.equal(made.status, 0, made.stderr)
    assert.equal(made.stderr, '')
    assert.equal(JSON.parse(made.stdout).dir, 'tiny-hf')
    assert.ok(existsSync(join(elsewhere, 'tiny-hf', 'config.json')), 'written where pov was run')
  } finally {
    await rm(prefix, { recursive: true, force: true })
    await rm(elsewhere, { recursive: true, force: true })
  }
})
