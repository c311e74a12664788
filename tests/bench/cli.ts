// CLI start-up benchmark: wall time of `pov --help`, `pov --version` and `pov balance` (with
// --address, and from a keystore made with the default scrypt cost) against a local chain, as a
// user runs them: the launcher cli/pov.mjs on the compiled dist/, and `pov` installed on the PATH
// by `npm install -g` of this checkout (package.json#bin, cli/pov) under the system's Node.
// For reference, a bare `node -e 0` and `npx pov --help` (npx adds its own start-up). Targets:
// installed --help ≤ 0.3 s, balance ≤ 1.5 s. Prints a table; the last line is one JSON object.
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { LocalNet, REPO } from '../../deploy/localnet.js'

const RUNS = Number(process.env.RUNS ?? 5)
const LAUNCHER = join(REPO, 'cli', 'pov.mjs')

function time(
  cmd: string,
  args: string[]
): { ms: number; code: number | null; out: string; err: string } {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8' })
  return { ms: performance.now() - t0, code: r.status, out: r.stdout, err: r.stderr }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** Median and min wall ms of `runs` runs; throws when a run fails. */
function bench(cmd: string, args: string[], runs = RUNS): { medianMs: number; minMs: number } {
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const r = time(cmd, args)
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.err}`)
    ms.push(r.ms)
  }
  return { medianMs: Math.round(median(ms)), minMs: Math.round(Math.min(...ms)) }
}

/** bench(), or null with the reason on stderr (npx resolves `pov` through node_modules, which a
 *  worktree may share with another checkout). */
function tryBench(
  cmd: string,
  args: string[],
  runs: number
): { medianMs: number; minMs: number } | null {
  try {
    return bench(cmd, args, runs)
  } catch (err) {
    process.stderr.write(`${(err as Error).message.split('\n')[0]}\n`)
    return null
  }
}

const build = spawnSync(process.execPath, [join(REPO, 'cli', 'build.mjs')], { stdio: 'inherit' })
if (build.status !== 0) throw new Error('cli/build.mjs failed')

const dir = await mkdtemp(join(tmpdir(), 'pov-bench-cli-'))
const net = new LocalNet(dir)
try {
  process.stderr.write('starting a local chain…\n')
  await net.start()
  const chain = ['--rpc', net.rpc, '--deployment', net.deploymentFile]
  const keystore = join(dir, 'keystore')
  const made = time(process.execPath, [
    LAUNCHER,
    'key',
    'new',
    '--keystore',
    keystore,
    '--password-file',
    net.passwordFile,
    '--json'
  ])
  if (made.code !== 0) throw new Error(`pov key new failed: ${made.err}`)
  const { address } = JSON.parse(made.out) as { address: string }

  // `pov` as installed: a global install (a link to this checkout) in a scratch prefix, run from
  // another directory with the system's PATH (its own Node, not this checkout's)
  const prefix = join(dir, 'global')
  const systemPath = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => !p.includes('node_modules'))
    .join(':')
  const inst = spawnSync('npm', ['install', '-g', '--ignore-scripts', '--prefix', prefix, REPO], {
    encoding: 'utf8',
    env: { ...process.env, PATH: systemPath }
  })
  const installed = join(prefix, 'bin', 'pov')
  const installedRun = (): { medianMs: number; minMs: number } | null => {
    if (inst.status !== 0) {
      process.stderr.write(`npm install -g failed: ${inst.stderr.split('\n')[0]}\n`)
      return null
    }
    const ms: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      const r = spawnSync(installed, ['--help'], {
        cwd: dir,
        env: { ...process.env, PATH: `${join(prefix, 'bin')}:${systemPath}` }
      })
      if (r.status !== 0) throw new Error(`installed pov --help failed: ${String(r.stderr)}`)
      ms.push(performance.now() - t0)
    }
    return { medianMs: Math.round(median(ms)), minMs: Math.round(Math.min(...ms)) }
  }
  const rows: Array<[string, { medianMs: number; minMs: number } | null]> = [
    ['node -e 0 (baseline)', bench(process.execPath, ['-e', '0'])],
    ['pov --help', bench(process.execPath, [LAUNCHER, '--help'])],
    ['pov --help (installed, system Node)', installedRun()],
    ['pov --version', bench(process.execPath, [LAUNCHER, '--version'])],
    [
      'pov balance --address',
      bench(process.execPath, [LAUNCHER, 'balance', '--address', address, ...chain])
    ],
    [
      'pov balance (keystore, scrypt 2^17)',
      bench(process.execPath, [
        LAUNCHER,
        'balance',
        '--keystore',
        keystore,
        '--password-file',
        net.passwordFile,
        ...chain
      ])
    ],
    ['npx pov --help', tryBench('npx', ['pov', '--help'], Math.min(RUNS, 3))]
  ]
  const w = Math.max(...rows.map(([n]) => n.length))
  process.stdout.write(`${'command'.padEnd(w)}  median ms  min ms\n`)
  for (const [n, r] of rows)
    process.stdout.write(
      `${n.padEnd(w)}  ${String(r?.medianMs ?? '-').padStart(9)}  ${String(r?.minMs ?? '-').padStart(6)}\n`
    )
  const key = (n: string): string => n.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '')
  process.stdout.write(
    JSON.stringify({
      runs: RUNS,
      targets: { installedHelpMs: 300, balanceMs: 1500 },
      load: os.loadavg().map((l) => Math.round(l * 100) / 100),
      ...Object.fromEntries(rows.map(([n, r]) => [key(n), r]))
    }) + '\n'
  )
} finally {
  await net.close()
  await rm(dir, { recursive: true, force: true })
}
