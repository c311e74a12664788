// The guides as a user follows them: every `sh` block of docs/operator.md, governance.md,
// client.md, auditor.md and oracle.md runs as written, in one bash, against a fresh local chain, with `pov`
// on the PATH — so the guides cannot drift from the CLI. What the test changes: the chain is
// its own (a `hardhat node` on a free port, POV_RPC / POV_DEPLOYMENT point at it) in place of the
// `sh local-chain` block it checks; HOME is a temporary directory (so `~/.pov` is fresh);
// POV_SCRYPT_N makes throw-away keys cheap; the two ports the guides use are swapped for free ones.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { LocalNet, REPO, DEMO_SCRYPT_N, freePort } from '../../deploy/localnet.js'

/** Which block runs when: the operator's node must serve before the client pays, and claim before
 *  the client's deposit leaves. Every `sh` block of these guides must appear here exactly once. */
const ORDER: Array<[string, number]> = [
  ['operator.md', 0],
  ['governance.md', 0],
  ['operator.md', 1],
  ['client.md', 0],
  ['client.md', 3], // pov serve (the gateway) while the node serves
  ['client.md', 4],
  ['operator.md', 2],
  ['client.md', 1],
  ['auditor.md', 0],
  ['oracle.md', 0], // a request answered and finalised (experts --local: no node needed)
  ['oracle.md', 1], // the example bounty contract and its callback
  ['client.md', 2] // the trained model, local: convert, generate, eval
]
const GUIDES = [...new Set(ORDER.map(([g]) => g))]
/** The ports the guides name, replaced by free ones (other tests may run beside this one). */
const PORTS = ['4101', '9464', '8640']

function blocks(md: string, info: string): string[] {
  const out: string[] = []
  const re = /^```([^\n]*)\n([\s\S]*?)^```\s*$/gm
  for (let m = re.exec(md); m != null; m = re.exec(md)) if (m[1].trim() === info) out.push(m[2])
  return out
}

let net: LocalNet | undefined
let dir: string | undefined
let shell: ReturnType<typeof spawn> | undefined

after(async () => {
  // the guides leave a node running in the background: end the whole process group
  if (shell?.pid != null)
    try {
      process.kill(-shell.pid, 'SIGTERM')
    } catch {}
  await net?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

test('operator, governance, client, auditor and oracle guides run as written on a fresh local chain', async () => {
  const docs = Object.fromEntries(
    await Promise.all(
      GUIDES.map(async (g) => [g, await readFile(join(REPO, 'docs', g), 'utf8')] as const)
    )
  )
  for (const g of GUIDES) {
    const n = blocks(docs[g], 'sh').length
    const listed = ORDER.filter(([x]) => x === g).map(([, i]) => i)
    assert.deepEqual(
      [...listed].sort(),
      [...Array(n).keys()],
      `${g} has ${n} sh blocks; ORDER must run each exactly once`
    )
  }
  // the local-chain block is what this test does itself: a hardhat node, then the deployment
  const local = blocks(docs['operator.md'], 'sh local-chain').join('')
  assert.match(local, /^npm run chain\b/m)
  assert.match(local, /^npm run deploy:local\b/m)
  const scripts = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).scripts
  assert.match(scripts.chain, /deploy\/chain\.ts/)
  assert.match(scripts['deploy:local'], /deploy\/deploy\.ts/)

  dir = await mkdtemp(join(tmpdir(), 'pov-guides-'))
  net = new LocalNet(join(dir, 'chain'))
  await net.start()
  const home = join(dir, 'home')
  const work = join(dir, 'work')
  const bin = join(dir, 'bin')
  await Promise.all([mkdir(home), mkdir(work), mkdir(bin)])
  // the guides run from a checkout: the committed models are where they say
  await symlink(join(REPO, 'models'), join(work, 'models'))

  // `pov` as `npx pov` runs it: the package's bin, under tsx when it is TypeScript
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8'))
  const entry = join(REPO, typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.pov)
  const tsx = createRequire(import.meta.url).resolve('tsx')
  const run = entry.endsWith('.ts')
    ? `"${process.execPath}" --import "${tsx}" "${entry}"`
    : /\.(m?js)$/.test(entry)
      ? `"${process.execPath}" "${entry}"`
      : `"${entry}"` // the installed launcher itself (a shell script)
  await writeFile(join(bin, 'pov'), `#!/bin/sh\nexec ${run} "$@"\n`, {
    mode: 0o755
  })
  if (spawnSync('sh', ['-c', 'command -v curl']).status !== 0)
    spawnSync(
      'sh',
      ['-c', 'apt-get install -y -qq curl || (apt-get update -qq && apt-get install -y -qq curl)'],
      {
        stdio: 'ignore'
      }
    )

  const ports = await Promise.all(PORTS.map(async () => String(await freePort())))
  // the guides write scratch bundles to /tmp/…: keep them in this test's own directory
  const swapPorts = (text: string): string =>
    PORTS.reduce((t, p, i) => t.replaceAll(p, ports[i]), text).replaceAll(
      '/tmp/',
      join(work, 'tmp-')
    )
  const script = [
    'set -euo pipefail',
    ...ORDER.map(
      ([g, i]) =>
        `echo "=== docs/${g} block ${i + 1}" >&2\n(\nset -euo pipefail\n${swapPorts(blocks(docs[g], 'sh')[i])}\n)`
    )
  ].join('\n')

  shell = spawn('bash', ['-x', '-c', script], {
    cwd: work,
    detached: true, // its own process group, so after() can stop what the guides leave running
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      HOME: home,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      POV_RPC: net.rpc,
      POV_DEPLOYMENT: net.deploymentFile,
      POV_SCRYPT_N: String(DEMO_SCRYPT_N),
      POV_LOG_LEVEL: 'warn',
      FORCE_COLOR: '0',
      PS4: '+ '
    }
  })
  let out = ''
  shell.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  shell.stderr?.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => shell!.once('exit', resolve))
  const tail = out.split('\n').slice(-40).join('\n')
  assert.equal(code, 0, `a guide failed:\n${tail}`)

  // what the journeys must have left behind, read back from the chain
  assert.match(out, /executed #1: models\.approveModel/)
  assert.match(out, /executed #2: escrow\.setFeeBps\(50\)/)
  assert.match(out, /cost per node:\n.*shards 0,1,2,3,4,5,6,7: \d+ calls/)
  assert.match(out, /unlock cancelled/)
  assert.match(out, /withdrew 19\.9\d* POV/)
  // the chat request samples (OpenAI's default temperature 1, no seed): it may end at EOS early
  const chat =
    /"finish_reason":"(stop|length)"\}\],"usage":\{"prompt_tokens":\d+,"completion_tokens":(\d+)/.exec(
      out
    )
  assert.ok(chat != null, 'the chat completion and its usage')
  const completion = Number(chat[2])
  if (chat[1] === 'length') assert.equal(completion, 16)
  else assert.ok(completion >= 1 && completion <= 16, `${completion} completion tokens`)
  assert.match(out, /data: \[DONE\]/)
  assert.match(out, /withdrew 1500 POV of stake/)
  // the oracle guide: a person's request and the bounty's, each answered and finalised
  assert.match(out, /request #0: fulfilled — \[\d+(,\d+)*\]/)
  assert.match(out, /request #0: AGREE/)
  assert.match(out, /request #0: finalised — callback none/)
  assert.match(out, /request #1: finalised — callback ran/)
  assert.match(out, /Inference requests \(2\)/)
  assert.match(out, /bounty 0x[0-9a-fA-F]{40}: "Is Paris the capital of France\?" — (Paid|Open)/)
  const { contracts } = net
  const models = await contracts.models.approvedModels()
  assert.equal(models.length, 1)
  assert.equal(await contracts.escrow.feeBps(), 50n)
  const settled = await contracts.escrow.queryFilter(contracts.escrow.filters.VoucherRedeemed())
  assert.ok(settled.length >= 1, 'the operator redeemed the vouchers the client paid with')
})
