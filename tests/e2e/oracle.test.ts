// User journey of an on-chain inference request, on a local chain through `pov`: a consumer
// contract (the example bounty) asks the model whether a claimant's answer is right; a dishonest
// fulfiller posts a wrong first token (perturbed by this test through the library API: no
// production flag makes a wrong answer); an honest `pov oracle serve` re-runs the request,
// disagrees and challenges; governance decides for it after `pov oracle check` shows the
// difference; the honest result is finalised, both bonds move to the honest side, and the
// callback pays the claimant — the answer a single-process run (`--local`) gives. `pov audit`
// lists the request, both results, the dispute and the payouts. Then a fulfiller that pays the
// network: `pov oracle serve --paid` runs a request on a registered node, paying it from its own
// escrow deposit; the node's earnings rise by exactly the rows the evidence's signed calls list,
// the result equals `--local`, and `pov oracle check` verifies the signed evidence (and refuses a
// file that is not the committed one). Its spending cap refuses a request it cannot afford.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ContractFactory, formatUnits, keccak256, parseEther, type Signer } from 'ethers'
import { LocalNet, DEMO_SCRYPT_N, freePort, type OperatorHandle } from '../../deploy/localnet.js'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/index.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { loadArtifact } from '../../chain/artifacts.js'
import { connectInferenceBounty } from '../../chain/contracts.js'
import type { InferenceBountyContract, InferenceRequestsContract } from '../../chain/contracts.js'
import { governanceRound, devChainClock } from '../../chain/governance.js'
import {
  fulfilRequest,
  inferenceRequestsOf,
  readRequest,
  resolveDisputeProposal
} from '../../chain/oracle.js'
import { runOracleRequest, type OracleRun } from '../../router/oracle.js'
import { CallRecorder, parseOracleEvidence } from '../../router/oracle-evidence.js'

const QUESTION = 'What is the capital of France?'
const FEE = parseEther('5')
const REWARD = parseEther('50')

let dir: string
let net: LocalNet
let bundle: Bundle
let ir: InferenceRequestsContract
let reference: OracleRun
let op: OperatorHandle
let metricsPort: number
const PRICE = '0.001' // POV per unit (row) of expert work

async function keystore(name: string): Promise<{ keystore: string; address: string }> {
  const ks = join(dir, name)
  const k = await net.povJson<{ address: string }>([
    'key',
    'new',
    '--keystore',
    ks,
    '--password-file',
    net.passwordFile,
    '--scrypt-n',
    String(DEMO_SCRYPT_N)
  ])
  await net.fund(k.address, parseEther('1000'))
  return { keystore: ks, address: k.address }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pov-oracle-e2e-'))
  net = new LocalNet(join(dir, 'net'))
  await net.start()
  ir = inferenceRequestsOf(net.deployment, net.provider)
  await writeTinyCheckpoint(join(dir, 'hf'), { seed: 0 })
  await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'))
  bundle = await loadBundle(join(dir, 'bundle'))
  await net.approveModel({
    modelId: bundle.modelId,
    name: 'tiny',
    layers: bundle.config.numLayers,
    experts: bundle.config.numExperts,
    shardCount: bundle.manifest.shards.length,
    uri: 'file://' + bundle.dir
  })
  // one node serving every shard (one replica: no hedged call, so what it earns is exactly what
  // the evidence lists)
  op = await net.addOperator('op0', {
    modelId: bundle.modelId,
    shards: bundle.manifest.shards.map((s) => s.id),
    stake: '1000',
    price: PRICE,
    fundPov: parseEther('1500')
  })
  metricsPort = await freePort()
  await net.startNode(op, bundle.dir, { metricsPort })
})

after(async () => {
  await net?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

/** The single-process answer to `prompt` (every expert here): what an honest fulfiller posts. */
async function localAnswer(prompt: string, maxTokens: number): Promise<OracleRun> {
  const dense = await loadDenseRuntime(bundle, { device: 'cpu' })
  const experts = await loadExpertRuntime(
    bundle,
    bundle.manifest.shards.map((s) => s.id),
    { device: 'cpu' }
  )
  const recorder = new CallRecorder()
  try {
    return await runOracleRequest(
      {
        modelId: bundle.modelId,
        dense,
        experts: recorder.wrapLocal(experts),
        recorder,
        tokenizer: await loadTokenizer(bundle.dir),
        eosTokenId: bundle.config.eosTokenId,
        vocabSize: bundle.config.vocabSize,
        hidden: bundle.config.hiddenSize,
        describe: 'local reference'
      },
      { prompt, maxTokens }
    )
  } finally {
    await experts.close()
    await dense.close()
  }
}

test('a wrong result is challenged by an honest checker, governance sides with it, the callback gets the right answer', async () => {
  const [sponsor, claimant, dishonest] = await Promise.all(
    [1, 2, 3].map(async (i) => await net.signer(i))
  )
  for (const s of [sponsor, claimant, dishonest])
    await net.fund(await s.getAddress(), parseEther('1000'))
  const honest = await keystore('honest')

  // the consumer: a bounty that pays when the model's first token is the reference's
  const prompt = `${QUESTION}\nAnswer: Paris\nCorrect? `
  reference = await localAnswer(prompt, 1)
  const yes = reference.result.tokens[0]
  const { abi, bytecode } = loadArtifact('InferenceBounty')
  const deployed = await new ContractFactory(abi, bytecode, sponsor).deploy(
    ir.target,
    bundle.modelId,
    QUESTION,
    yes
  )
  await deployed.waitForDeployment()
  const bounty = connectInferenceBounty(await deployed.getAddress(), sponsor)
  const token = net.contracts.token
  await (
    await (token.connect(sponsor) as typeof token).approve(bounty.target as string, REWARD)
  ).wait()
  await (await bounty.fund(REWARD)).wait()

  // the claimant asks; the bounty contract is the requester
  await (
    await (token.connect(claimant) as typeof token).approve(bounty.target as string, FEE)
  ).wait()
  const now = (await net.provider.getBlock('latest'))!.timestamp
  await (
    await (bounty.connect(claimant) as InferenceBountyContract).claim('Paris', FEE, now + 3600)
  ).wait()
  const id = Number(await bounty.judging())
  const v = await readRequest(ir, id)
  assert.equal(v.prompt, prompt)
  assert.equal(v.params.requester, bounty.target)

  // the dishonest fulfiller posts another first token, with a confident margin
  const wrong = {
    tokens: [(yes + 1) % bundle.config.vocabSize],
    margins: [5_000_000],
    evidenceHash: keccak256('0x01')
  }
  await fulfilRequest(net.contracts, ir, dishonest, v, wrong, 'file:///nowhere')

  const balance = async (a: string | Signer): Promise<bigint> =>
    await token.balanceOf(typeof a === 'string' ? a : await a.getAddress())
  const [dishonestBefore, honestBefore, claimantBefore] = await Promise.all([
    balance(dishonest),
    balance(honest.address),
    balance(claimant)
  ])

  // `pov oracle check`: disagrees, exit 3, with both results
  const model = ['--bundle', bundle.dir, '--local']
  const chainOnly = ['--rpc', net.rpc, '--deployment', net.deploymentFile]
  const check = await net.pov(['oracle', 'check', String(id), ...chainOnly, ...model])
  assert.equal(check.code, 3, check.stderr)
  assert.match(check.stdout, new RegExp(`DISAGREE at token 0`))
  assert.match(check.stdout, new RegExp(`this run: +\\[${yes}\\]`))

  // the honest worker: one pass checks the posted result and challenges it
  const dataDir = join(dir, 'honest-data')
  const serve = await net.pov(
    ['oracle', 'serve', '--once', ...net.chainFlags(honest.keystore, dataDir), ...model],
    { timeoutMs: 300_000 }
  )
  assert.equal(serve.code, 0, serve.stderr)
  assert.match(
    serve.stderr,
    new RegExp(
      `request #${id}: challenged — first difference at token 0: posted ${wrong.tokens[0]}, mine ${yes}`
    )
  )
  const disputed = await readRequest(ir, id)
  assert.equal(disputed.status, 'Disputed')
  assert.equal(disputed.dispute?.by, honest.address)
  assert.deepEqual(disputed.dispute?.tokens, reference.result.tokens)
  // the challenger's evidence file is where its URI says, and hashes to what was posted
  const evidence = await readFile(fileURLToPath(disputed.dispute!.evidenceUri))
  assert.equal(keccak256(evidence), disputed.dispute?.evidenceHash)

  // governance: a full Governor round deciding for the challenger
  const { actions, description } = await resolveDisputeProposal(ir, id, 'ChallengerRight')
  const voter = await net.signer(0)
  await governanceRound({
    contracts: net.contracts,
    proposer: voter,
    voters: [voter],
    actions,
    description,
    clock: devChainClock(net.provider)
  })
  assert.equal((await readRequest(ir, id)).status, 'Decided')

  // the honest worker finalises what it won: the callback pays the claimant
  const fin = await net.pov(
    ['oracle', 'serve', '--once', ...net.chainFlags(honest.keystore, dataDir), ...model],
    { timeoutMs: 300_000 }
  )
  assert.equal(fin.code, 0, fin.stderr)
  assert.match(fin.stderr, new RegExp(`request #${id}: finalised — callback ran`))
  const bond = v.params.bond
  assert.equal(await balance(honest.address), honestBefore + bond + FEE) // the dishonest bond + the fee
  assert.equal(await balance(dishonest), dishonestBefore) // its bond, taken at fulfil, is gone
  assert.equal(await balance(claimant), claimantBefore + REWARD)
  assert.equal(await bounty.state(), 2n) // Paid
  assert.equal(await token.balanceOf(ir.target as string), 0n)

  // `pov audit` lists the request, both results, the dispute and the payouts
  const audit = await net.povJson<{
    inference: Array<{
      id: number
      status: string
      dispute: { outcome: string; position: number } | null
      payouts: Array<{ to: string; amount: string; why: string }>
      callbackOk: boolean | null
    }>
  }>(['audit', ...chainOnly])
  const row = audit.inference.find((r) => r.id === id)!
  assert.equal(row.status, 'Finalised')
  assert.equal(row.dispute?.outcome, 'ChallengerRight')
  assert.equal(row.callbackOk, true)
  assert.deepEqual(
    row.payouts.map((p) => [p.to, p.amount]),
    [
      [honest.address, (2n * bond).toString()],
      [honest.address, FEE.toString()]
    ]
  )
})

/** What the node's dashboard says it earned (POV, pov_earned_total). */
async function earned(): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  return Number(/^pov_earned_total (\S+)$/m.exec(metrics)?.[1] ?? 0)
}

test('pov oracle serve --paid runs the request on the paid network: the node earns the rows its signed calls list, the result is the --local one, check verifies the evidence', async () => {
  const asker = await keystore('asker')
  const worker = await keystore('paid-worker')
  const dataDir = join(dir, 'paid-data')
  const flags = net.chainFlags(worker.keystore, dataDir)
  await net.povJson(['deposit', '20', ...flags])
  const prompt = 'Is the sky blue? Answer yes or no.'
  const post = async (): Promise<number> =>
    (
      await net.povJson<{ requestId: number }>([
        'oracle',
        'request',
        '--model',
        bundle.modelId,
        '--fee',
        '2',
        '--max-tokens',
        '4',
        ...net.chainFlags(asker.keystore, join(dir, 'asker-data')),
        prompt
      ])
    ).requestId
  const id = await post()
  const local = await localAnswer(prompt, 4)
  const bond = (await readRequest(ir, id)).params.bond

  // the cap counts the bond and the run's expert cost (bond + estimate > the bond alone), and gas:
  // each refusal leaves the request alone, having paid no node
  const before0 = await earned()
  const capped = async (cap: string[]): Promise<string> => {
    const r = await net.pov(
      ['oracle', 'serve', '--once', '--paid', '--bundle', bundle.dir, ...cap, ...flags],
      { timeoutMs: 300_000 }
    )
    assert.equal(r.code, 0, r.stderr)
    return r.stderr
  }
  const overSpend = new RegExp(
    `request #${id}: skipped — bonds and expert payments out would reach ([0-9.]+) POV, over --max-spend`
  )
  assert.match(await capped(['--max-spend', formatUnits(bond - 1n, 18)]), overSpend)
  const withCost = overSpend.exec(await capped(['--max-spend', formatUnits(bond, 18)]))
  assert.ok(withCost != null, 'the bond fits, the bond + the expert estimate does not')
  assert.ok(parseEther(withCost[1]) > bond)
  assert.match(
    await capped(['--max-gas', '0.000000001']),
    new RegExp(`request #${id}: skipped — gas spent would reach [0-9.e-]+ ETH, over --max-gas`)
  )
  assert.equal((await readRequest(ir, id)).status, 'Open')
  assert.equal(await earned(), before0)

  const serve = await net.pov(
    ['oracle', 'serve', '--once', '--paid', '--no-challenge', '--bundle', bundle.dir, ...flags],
    { timeoutMs: 300_000 }
  )
  assert.equal(serve.code, 0, serve.stderr)
  assert.match(
    serve.stderr,
    new RegExp(`request #${id}: fulfilled — \\[[0-9,]+\\], \\d+ expert calls, paid [0-9.]+ POV`)
  )
  const v = await readRequest(ir, id)
  assert.equal(v.status, 'Fulfilled')
  assert.equal(v.result?.by, worker.address)
  assert.deepEqual(
    v.result?.tokens,
    local.result.tokens,
    'the paid network gives the --local answer'
  )
  assert.deepEqual(v.result?.margins, local.result.margins)

  // the evidence: every call a signed answer of the registered node, paid by the worker
  const bytes = await readFile(fileURLToPath(v.result!.evidenceUri))
  assert.equal(keccak256(bytes), v.result?.evidenceHash)
  const e = parseOracleEvidence(bytes)
  assert.ok(e.calls.length > 0)
  // the same calls as the local run, on the same inputs
  const key = (c: (typeof e.calls)[number]): string =>
    `${c.step}/${c.layer}/${c.expert}/${c.rows}/${c.inputHash}`
  assert.deepEqual(e.calls.map(key), local.record.calls.map(key))
  let rows = 0
  for (const c of e.calls) {
    assert.equal(c.source, 'node')
    assert.equal(c.peerId, op.peerId)
    assert.equal(c.operator, op.address)
    assert.match(c.signature ?? '', /^0x[0-9a-f]{128}$/)
    assert.equal(c.payment?.payer, worker.address)
    assert.equal(BigInt(c.payment!.charge!), BigInt(c.rows) * parseEther(PRICE))
    rows += c.rows
  }
  // the node earned exactly the rows the fulfilment used, at its price
  const delta = (await earned()) - before0
  const expected = Number(formatUnits(BigInt(rows) * parseEther(PRICE), 18))
  assert.ok(
    Math.abs(delta - expected) < 1e-9,
    `node earned ${delta} POV, the evidence lists ${rows} rows = ${expected}`
  )

  // anyone checks: the tokens agree, the evidence verifies against the registry
  const model = ['--bundle', bundle.dir, '--local']
  const chainOnly = ['--rpc', net.rpc, '--deployment', net.deploymentFile]
  const check = await net.pov(['oracle', 'check', String(id), ...chainOnly, ...model])
  assert.equal(check.code, 0, check.stdout + check.stderr)
  assert.match(check.stdout, new RegExp(`request #${id}: AGREE`))
  assert.match(
    check.stdout,
    new RegExp(
      `commitment OK, ${e.calls.length} expert calls — ${e.calls.length} signed by registered nodes, 0 run by the poster itself, paid by ${worker.address}`
    )
  )
  // a file other than the committed one (one signature byte changed) is refused, exit 4
  const tampered = join(dir, 'tampered.json')
  const forged = {
    ...e,
    calls: e.calls.map((c, i) =>
      i === 0
        ? {
            ...c,
            signature: c.signature!.slice(0, -2) + (c.signature!.endsWith('00') ? '01' : '00')
          }
        : c
    )
  }
  await writeFile(tampered, JSON.stringify(forged) + '\n')
  const bad = await net.pov([
    'oracle',
    'check',
    String(id),
    '--evidence',
    tampered,
    ...chainOnly,
    ...model
  ])
  assert.equal(bad.code, 4, bad.stdout + bad.stderr)
  assert.match(bad.stdout, /AGREE/)
  assert.match(
    bad.stdout,
    /UNUSABLE — commitment mismatch: the evidence file hashes to 0x[0-9a-f]{64}, the posted result commits to/
  )
})
