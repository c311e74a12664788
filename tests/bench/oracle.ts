/**
 * Request → callback latency of on-chain inference requests on a local chain (not a test):
 * `npm run bench:oracle`.
 *
 * A hardhat node (automining), the contracts, a tiny random-weight bundle approved by a governance
 * round; the consumer is the example bounty (contracts/examples/InferenceBounty.sol, one token)
 * or a person's request of 16 tokens. The fulfiller is `pov oracle serve`'s worker
 * (router/oracle-worker.ts) in this process with every expert local. Timed: request mined →
 * result mined (one worker pass: reading the events, generating, the fulfil transaction), and
 * window over → callback mined (one pass: the finalise transaction with the callback). The
 * challenge window itself (a parameter: 60 s local, 1 hour public) is skipped with
 * evm_increaseTime and reported beside. Prints a table, then one JSON object as the last line.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ContractFactory, parseEther } from 'ethers'
import { LocalNet } from '../../deploy/localnet.js'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle } from '../../model/bundle/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/index.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { loadArtifact } from '../../chain/artifacts.js'
import { connectInferenceBounty, type InferenceBountyContract } from '../../chain/contracts.js'
import { inferenceRequestsOf, postRequest } from '../../chain/oracle.js'
import { OracleWorker } from '../../router/oracle-worker.js'
import { runOracleRequest, type OracleModel } from '../../router/oracle.js'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const dir = await mkdtemp(join(tmpdir(), 'pov-bench-oracle-'))
const net = new LocalNet(join(dir, 'net'))
try {
  await net.start()
  await writeTinyCheckpoint(join(dir, 'hf'), { seed: 0 })
  await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'))
  const bundle = await loadBundle(join(dir, 'bundle'))
  await net.approveModel({
    modelId: bundle.modelId,
    name: 'tiny',
    layers: bundle.config.numLayers,
    experts: bundle.config.numExperts,
    shardCount: bundle.manifest.shards.length,
    uri: 'file://' + bundle.dir
  })
  const ir = inferenceRequestsOf(net.deployment, net.provider)
  const [asker, fulfiller] = await Promise.all([net.signer(1), net.signer(2)])
  for (const s of [asker, fulfiller]) await net.fund(await s.getAddress(), parseEther('10000'))
  const dense = await loadDenseRuntime(bundle, { device: 'cpu', allowSpinning: false })
  const experts = await loadExpertRuntime(
    bundle,
    bundle.manifest.shards.map((s) => s.id),
    { device: 'cpu', intraOpNumThreads: 0, allowSpinning: false }
  )
  const model: OracleModel = {
    modelId: bundle.modelId,
    dense,
    experts,
    tokenizer: await loadTokenizer(bundle.dir),
    eosTokenId: null, // every run generates max tokens: comparable timings
    vocabSize: bundle.config.vocabSize,
    hidden: bundle.config.hiddenSize,
    describe: 'local'
  }
  let startBlock = await net.provider.getBlockNumber()
  const worker = (): OracleWorker =>
    new OracleWorker({
      contracts: net.contracts,
      ir,
      signer: fulfiller,
      modelId: bundle.modelId,
      run: async (v) =>
        await runOracleRequest(model, { prompt: v.prompt!, maxTokens: v.params.maxTokens }),
      saveEvidence: async () => '',
      maxSpend: parseEther('100000'),
      minFee: 0n,
      challenge: false,
      fromBlock: startBlock,
      log: () => {}
    })

  const { abi, bytecode } = loadArtifact('InferenceBounty')
  const deployed = await new ContractFactory(abi, bytecode, asker).deploy(
    ir.target,
    bundle.modelId,
    'Is water wet?',
    1
  )
  await deployed.waitForDeployment()
  const bounty = connectInferenceBounty(
    await deployed.getAddress(),
    asker
  ) as InferenceBountyContract
  const token = net.contracts.token.connect(asker) as typeof net.contracts.token
  await (await token.approve(bounty.target as string, parseEther('1000000'))).wait()
  await (await bounty.fund(parseEther('1'))).wait()
  const window = Number(await ir.challengeWindow())

  type Row = { kind: string; fulfilMs: number; finaliseMs: number; tokens: number }
  const rows: Row[] = []
  for (const kind of ['bounty (1 token, callback)', 'person (16 tokens)']) {
    for (let i = 0; i < ROUNDS; i++) {
      startBlock = await net.provider.getBlockNumber()
      const w = worker()
      const now = (await net.provider.getBlock('latest'))!.timestamp
      if (kind.startsWith('bounty'))
        await (await bounty.claim(`answer ${i}`, parseEther('1'), now + 3600)).wait()
      else
        await postRequest(net.contracts, ir, asker, {
          modelId: bundle.modelId,
          prompt: `Question ${i}: what happens next?`,
          maxTokens: 16,
          fee: parseEther('1'),
          deadline: now + 3600
        })
      const t1 = performance.now()
      const a = await w.tick()
      const t2 = performance.now()
      if (a[0]?.action !== 'fulfilled') throw new Error(`round ${i}: ${JSON.stringify(a)}`)
      await net.provider.send('evm_increaseTime', [window + 1])
      await net.provider.send('evm_mine', [])
      const t3 = performance.now()
      const b = await w.tick()
      const t4 = performance.now()
      if (b[0]?.action !== 'finalised') throw new Error(`round ${i}: ${JSON.stringify(b)}`)
      rows.push({
        kind,
        fulfilMs: t2 - t1,
        finaliseMs: t4 - t3,
        tokens: kind.startsWith('bounty') ? 1 : 16
      })
    }
  }
  await experts.close()
  await dense.close()

  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
  console.log(
    'on-chain inference request → callback, local hardhat node (automine), tiny bundle, experts local\n'
  )
  console.log(
    `${'consumer'.padEnd(30)} ${'result posted'.padStart(14)} ${'callback run'.padStart(13)} ${'total'.padStart(8)}  (+ window)`
  )
  const summary: Record<string, { fulfilMs: number; finaliseMs: number; totalMs: number }> = {}
  for (const kind of [...new Set(rows.map((r) => r.kind))]) {
    const rs = rows.filter((r) => r.kind === kind)
    const f = med(rs.map((r) => r.fulfilMs))
    const z = med(rs.map((r) => r.finaliseMs))
    summary[kind] = {
      fulfilMs: Math.round(f),
      finaliseMs: Math.round(z),
      totalMs: Math.round(f + z)
    }
    console.log(
      `${kind.padEnd(30)} ${`${f.toFixed(0)} ms`.padStart(14)} ${`${z.toFixed(0)} ms`.padStart(13)} ${`${(f + z).toFixed(0)} ms`.padStart(8)}  + ${window} s`
    )
  }
  console.log(
    `\nmedians of ${ROUNDS} rounds each; "result posted": one worker pass from the mined request (events read, generation, fulfil mined); "callback run": one pass after the window (finalise mined, callback inside)`
  )
  console.log(JSON.stringify({ rounds: ROUNDS, challengeWindowS: window, ...summary }))
} finally {
  await net.close()
  await rm(dir, { recursive: true, force: true })
}
