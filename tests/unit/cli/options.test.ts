import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import {
  addChainOptions,
  applyConfigFile,
  parseIntList,
  redacted,
  DEFAULT_RPC
} from '../../../cli/options.js'
import type { parseArgs as parseNodeStartArgs } from '../../../cli/node/options.js'

type NodeStartArgs = ReturnType<typeof parseNodeStartArgs>

/** `pov node start --model /b --shards 0 ARGV`, parsed as the command parses it. */
async function nodeStart(argv: string[]): Promise<NodeStartArgs> {
  const { addNodeStartOptions, parseArgs } = await import('../../../cli/node/options.js')
  let seen: NodeStartArgs | undefined
  const program = new Command('pov').exitOverride()
  addNodeStartOptions(program.command('start')).action((o: Parameters<typeof parseArgs>[0]) => {
    seen = parseArgs(o)
  })
  await program.parseAsync(['node', 'pov', 'start', '--model', '/b', '--shards', '0', ...argv])
  return seen as NodeStartArgs
}

async function parse(
  argv: string[],
  env: Record<string, string> = {}
): Promise<Record<string, unknown>> {
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    const program = new Command('pov').exitOverride()
    applyConfigFile(program)
    let seen: Record<string, unknown> = {}
    addChainOptions(program.command('balance')).action((o: Record<string, unknown>) => {
      seen = o
    })
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
  assert.equal(
    (await parse(['--config', cfg, 'balance'], { POV_RPC: 'http://127.0.0.1:7001' })).rpc,
    'http://127.0.0.1:7001'
  )
  assert.equal(
    (
      await parse(['--config', cfg, 'balance', '--rpc', 'http://127.0.0.1:7002'], {
        POV_RPC: 'http://127.0.0.1:7001'
      })
    ).rpc,
    'http://127.0.0.1:7002'
  )
})

test('a bad --config file is a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-cfg-'))
  await assert.rejects(
    parse(['--config', join(dir, 'missing.yaml'), 'balance']),
    /cannot read --config .*missing\.yaml/
  )
})

test('lists and redaction', () => {
  assert.deepEqual(parseIntList('0, 1,7'), [0, 1, 7])
  assert.throws(() => parseIntList('0,-1', '--shards'), /invalid --shards "0,-1"/)
  assert.throws(() => parseIntList('a'), /comma-separated non-negative integers/)
  assert.deepEqual(redacted({ password: 'x', privateKey: 'y', keystore: '/k', rpc: 'u' }), {
    password: '<redacted>',
    privateKey: '<redacted>',
    keystore: '/k',
    rpc: 'u'
  })
})

test("--busy-poll-us: node start and generate --peers pass it on; --no-spin turns the node's off unless set", async () => {
  const { addGenerateOptions, parseGenerateArgs } = await import('../../../cli/generate/options.js')
  assert.equal((await nodeStart([])).busyPollUs, undefined, 'the library default applies')
  assert.equal((await nodeStart(['--busy-poll-us', '250'])).busyPollUs, 250)
  const noSpin = await nodeStart(['--no-spin'])
  assert.equal(noSpin.spin, false)
  assert.equal(noSpin.busyPollUs, undefined, '--no-spin alone: OperatorNode turns polling off')
  assert.equal((await nodeStart(['--no-spin', '--busy-poll-us', '500'])).busyPollUs, 500)
  for (const bad of ['-1', '1.5', 'x', '2000000', ''])
    await assert.rejects(nodeStart(['--busy-poll-us', bad]), /invalid --busy-poll-us/)

  const gen = async (argv: string[]): Promise<ReturnType<typeof parseGenerateArgs>> => {
    let seen: any
    const program = new Command('pov').exitOverride()
    addGenerateOptions(program.command('generate')).action((o: any) => {
      seen = parseGenerateArgs(o)
    })
    await program.parseAsync([
      'node',
      'pov',
      'generate',
      '--model',
      '/b',
      '--peers',
      '/ip4/127.0.0.1/tcp/1/p2p/x',
      '--prompt-ids',
      '1',
      ...argv
    ])
    return seen
  }
  const { verify, ...executor } = (await gen(['--busy-poll-us', '0'])).executor as {
    verify?: unknown
  }
  assert.deepEqual(executor, {
    kind: 'peers',
    peers: ['/ip4/127.0.0.1/tcp/1/p2p/x'],
    wireDType: 'fp32',
    busyPollUs: 0
  })
  assert.ok(verify != null, 'spot checks are on by default')
  assert.equal('busyPollUs' in (await gen([])).executor, false)

  // spot-check flags: the library's default rate, the data-dir paths, bad rates refused
  const { DEFAULT_VERIFY_RATE } = await import('../../../router/spot-check.js')
  const spec = async (argv: string[]): Promise<unknown> =>
    ((await gen(argv)).executor as { verify?: unknown }).verify
  assert.equal(((await spec([])) as { rate: number }).rate, DEFAULT_VERIFY_RATE)
  assert.deepEqual(
    await spec([
      '--verify-rate',
      '0.1',
      '--verify-local',
      '--reputation-file',
      '/r.json',
      '--evidence-dir',
      '/ev'
    ]),
    { rate: 0.1, local: true, reputationFile: '/r.json', evidenceDir: '/ev' }
  )
  for (const bad of ['-0.1', '1.5', 'x', ''])
    await assert.rejects(spec(['--verify-rate', bad]), /invalid --verify-rate/)
})

test("OperatorNode's busy-poll window: default, off with --no-spin, an explicit value wins", async () => {
  const { busyPollUs, defaultOptions } = await import('../../../node/operator-node.js')
  assert.equal(busyPollUs({}), defaultOptions.busyPollUs)
  assert.ok(defaultOptions.busyPollUs > 0)
  assert.equal(busyPollUs({ spin: false }), 0)
  assert.equal(busyPollUs({ spin: false, busyPollUs: 300 }), 300)
  assert.equal(busyPollUs({ busyPollUs: 0 }), 0)
})

test('node start connection limits: flags become OperatorNodeOptions.limits; bad values are clear errors', async () => {
  assert.equal((await nodeStart([])).limits, undefined, 'the defaults of node/limits.ts apply')
  const peer = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
  assert.deepEqual(
    (
      await nodeStart([
        '--max-conns-per-ip',
        '8',
        '--max-conns-per-peer',
        '2',
        '--max-conns',
        '100',
        '--handshake-timeout-ms',
        '3000',
        '--idle-timeout-ms',
        '0',
        '--allow',
        `10.0.0.0/8,${peer}`,
        '--allow',
        '::1',
        '--allow-only'
      ])
    ).limits,
    {
      maxConnectionsPerIp: 8,
      maxConnectionsPerPeer: 2,
      maxConnections: 100,
      handshakeTimeoutMs: 3000,
      idleTimeoutMs: 0,
      allow: ['10.0.0.0/8', peer, '::1'],
      allowOnly: true
    }
  )
  await assert.rejects(nodeStart(['--max-conns-per-ip', '0']), /invalid --max-conns-per-ip "0"/)
  await assert.rejects(nodeStart(['--allow', '10.0.0.0/33']), /--allow: invalid allow-list range/)
  await assert.rejects(nodeStart(['--allow', 'example.com']), /--allow: invalid allow-list entry/)
  await assert.rejects(nodeStart(['--allow-only']), /--allow-only needs at least one --allow/)
})

test('node start NAT flags: --relay, --relay-via, --no-upnp become OperatorNodeOptions.reachability; a relay address without its PeerId is a clear error', async () => {
  const { parseAnnounce } = await import('../../../cli/node/options.js')
  assert.equal((await nodeStart([])).reachability, undefined, 'the defaults of node/nat.ts apply')
  const relay =
    '/ip4/198.51.100.4/tcp/4101/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
  assert.deepEqual((await nodeStart(['--relay-via', relay, '--no-upnp'])).reachability, {
    relay: false,
    relays: [relay],
    upnp: false
  })
  assert.deepEqual((await nodeStart(['--relay'])).reachability, {
    relay: {},
    relays: undefined,
    upnp: true
  })
  await assert.rejects(nodeStart(['--relay-via', '/ip4/198.51.100.4/tcp/4101']), (err: Error) => {
    assert.match(err.message, /invalid --relay-via .*\/p2p\/<PeerId>/)
    return true
  })
  // a relayed address keeps its relay's PeerId; only a trailing /p2p/<node> goes
  assert.deepEqual(
    parseAnnounce([
      `${relay}/p2p-circuit`,
      '/ip4/203.0.113.7/tcp/4101/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
    ]),
    [`${relay}/p2p-circuit`, '/ip4/203.0.113.7/tcp/4101']
  )
})
