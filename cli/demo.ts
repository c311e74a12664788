// `npm run demo`: the whole product on this machine in one command — a local chain, the contracts,
// a governance vote approving the small trained Mixtral of models/tiny-en, four operator nodes that stake and
// register, a client that deposits and runs a paid `pov infer`, the nodes' claims and the audit.
// Every process it starts is stopped at the end, on error and on Ctrl-C; with POV_DEMO_KEEP=1 the
// network stays up until Ctrl-C, for `pov serve` (the command is printed last).
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatUnits } from 'ethers'
import { LocalNet, REPO, freePort, pathToFileURL, type OperatorHandle } from '../deploy/localnet.js'

const t0 = Date.now()
// The model continues Austen-like prose; a prompt in that register reads best.
const DEMO_PROMPT = 'She was'
const DEMO_TOKENS = 24
const say = (s: string): void => {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}\n`)
}
const pov = (wei: bigint | string): string => `${formatUnits(BigInt(wei), 18)} POV`

const dir = await mkdtemp(join(tmpdir(), 'pov-demo-'))
const net = new LocalNet(dir, say)
let exiting = false
let cleanup: Promise<void> | undefined
// Ctrl-C reaches the children too, so main() fails while the SIGINT handler runs: whichever calls
// first cleans up, and every caller waits for that before exiting (else the temp dir stays).
const shutdown = async (code: number): Promise<never> => {
  exiting = true
  cleanup ??= (async () => {
    await net.close()
    if (process.env.POV_DEMO_KEEP == null) await rm(dir, { recursive: true, force: true })
  })()
  await cleanup
  process.exit(code)
}
process.on('SIGINT', () => {
  say('interrupted — stopping every process')
  void shutdown(130)
})
process.on('SIGTERM', () => {
  void shutdown(143)
})
process.on('exit', () => {
  net.killAll()
})

async function main(): Promise<void> {
  say('compiling contracts (hardhat build, solc from npm)')
  const build = spawnSync(
    process.execPath,
    [join(REPO, 'node_modules', 'hardhat', 'dist', 'src', 'cli.js'), 'build', '--quiet'],
    { cwd: REPO, encoding: 'utf8' }
  )
  if (build.status !== 0) throw new Error(`hardhat build failed: ${build.stderr}`)

  // 8545 is the local chain's usual port; another one if it is taken.
  const port = (await isFree(8545)) ? 8545 : await freePort()
  await net.start({ port })

  say('converting models/tiny-en (a small Mixtral trained on Jane Austen, f16) to a bundle')
  const hf = join(REPO, 'models', 'tiny-en')
  const bundle = join(dir, 'bundle')
  const conv = await net.povJson<{
    modelId: string
    shards: number
    config: { numLayers: number; numExperts: number }
  }>(['model', 'convert', hf, bundle])
  const modelId = conv.modelId
  const layers = conv.config.numLayers
  say(
    `model id ${modelId}: ${layers} layers × ${conv.config.numExperts} experts, trained on Jane Austen — Austen-like prose, no sense across a sentence`
  )

  say('governance: propose → vote → queue → execute approveModel')
  const round = await net.approveModel({
    modelId,
    name: 'tiny-mixtral-demo',
    layers,
    experts: conv.config.numExperts,
    shardCount: conv.shards,
    uri: pathToFileURL(bundle).href
  })
  say(`proposal ${round.proposalId.toString().slice(0, 16)}… ${round.state}`)

  say('four operators: node init, funding, stake + register (every shard on 2 nodes)')
  const ops: OperatorHandle[] = await net.addDemoOperators(modelId)
  for (const op of ops)
    say(`  ${op.name} ${op.address} peer …${op.peerId.slice(-8)} shards ${op.shards.join(',')}`)

  say('starting the four nodes (pov node start: finds its registration, serves paid calls only)')
  await Promise.all(
    ops.map(async (op) => {
      await net.startNode(op, bundle)
    })
  )

  say('client: key, funding, deposit into escrow')
  const client = await net.addClient('client', { deposit: '10' })

  say(`pov infer: ${DEMO_TOKENS} tokens, paid per expert call`)
  const inf = await net.povJson<{
    text: string
    tokens: number[]
    degraded: boolean
    draft: string | null
    timings: {
      prefillMs: number
      decodeTokensPerSecond: number
      rounds: number
      draftedTokens: number
      acceptedTokens: number
    }
    payment: {
      total: string
      nodes: Array<{ operator: string; calls: number; units: number; amount: string }>
    }
  }>([
    'infer',
    '--model',
    modelId,
    '--bundle',
    bundle,
    '--max-tokens',
    String(DEMO_TOKENS),
    // greedy decoding of a model this small loops on its likeliest phrase; seeded sampling reads
    // as prose and is still the same text every run
    '--temperature',
    '0.7',
    '--top-p',
    '0.9',
    '--seed',
    '1',
    '--ignore-eos',
    ...net.chainFlags(client.keystore, client.dir),
    DEMO_PROMPT
  ])
  say(`tokens ${JSON.stringify(inf.tokens)}${inf.degraded ? ' (DEGRADED)' : ''}`)
  say(`text   ${JSON.stringify(DEMO_PROMPT + inf.text)}`)
  const t = inf.timings
  say(
    inf.draft == null
      ? 'speculative decoding off'
      : `speculative decoding, draft ${inf.draft}: ${t.acceptedTokens}/${t.draftedTokens} drafted tokens accepted, ${inf.tokens.length} tokens from ${t.rounds + 1} passes of the network (prefill included)`
  )
  for (const n of inf.payment.nodes)
    say(`  paid ${n.operator}: ${n.calls} calls, ${n.units} units, ${pov(n.amount)}`)

  say('nodes claim their vouchers (one redeemBatch + one withdrawEarnings transaction each)')
  let claimGas = 0n
  const earned: Array<[string, bigint]> = []
  for (const op of ops) {
    const c = await net.povJson<{
      received: string
      fee: string
      amount: string
      withdrawn: string
      gasUsed: string
      redeemed: unknown[]
    }>(['node', 'claim', ...net.chainFlags(op.keystore, op.dir)])
    claimGas += BigInt(c.gasUsed)
    earned.push([op.name, BigInt(c.received)])
    say(
      `  ${op.name}: ${c.redeemed.length} voucher(s), ${pov(c.amount)} from escrow, fee ${pov(c.fee)}, withdrew ${pov(c.withdrawn)}, received ${pov(c.received)}`
    )
  }

  say('gas spent')
  const regGas = await registrationGas()
  say(
    `  governance round ${round.gasUsed}, registrations ${regGas}, deposit ${client.depositGasUsed}, claims ${claimGas}`
  )

  say('audit (pov audit --dial)')
  const audit = await net.pov([
    'audit',
    '--dial',
    '--rpc',
    net.rpc,
    '--deployment',
    net.deploymentFile
  ])
  process.stdout.write(audit.stdout)
  if (audit.code !== 0)
    throw new Error(`pov audit reported failed checks (exit ${audit.code}): ${audit.stderr}`)

  say(
    `done in ${((Date.now() - t0) / 1000).toFixed(1)} s — earned: ${earned.map(([n, e]) => `${n} ${pov(e)}`).join(', ')}`
  )
  const serve = `npx pov serve ${net.chainFlags(client.keystore, client.dir).join(' ')} --bundle ${bundle}`
  if (process.env.POV_DEMO_KEEP == null) {
    say(
      `the OpenAI-compatible gateway and web page on this network: rerun with POV_DEMO_KEEP=1, then\n  ${serve}`
    )
    return
  }
  say(
    `network kept running (Ctrl-C stops it). The OpenAI-compatible gateway and web page:\n  ${serve}`
  )
  await new Promise(() => {}) // until SIGINT
}

/** Gas of `pov node register`: the registration and the one-time escrow earnings account opening. */
async function registrationGas(): Promise<bigint> {
  const logs = [
    ...(await net.contracts.registry.queryFilter(
      net.contracts.registry.filters.NodeRegistered(),
      net.deployment.startBlock
    )),
    ...(await net.contracts.escrow.queryFilter(
      net.contracts.escrow.filters.EarningsAccountOpened(),
      net.deployment.startBlock
    ))
  ]
  let gas = 0n
  for (const l of logs)
    gas += (await net.provider.getTransactionReceipt(l.transactionHash))?.gasUsed ?? 0n
  return gas
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => {
      resolve(false)
    })
    s.listen(port, '127.0.0.1', () => {
      s.close(() => {
        resolve(true)
      })
    })
  })
}

try {
  await main()
  await shutdown(0)
} catch (err) {
  if (!exiting) process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  await shutdown(1)
}
