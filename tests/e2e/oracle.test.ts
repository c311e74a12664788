// User journey of an on-chain inference request, on a local chain through `pov`: a consumer
// contract (the example bounty) asks the model whether a claimant's answer is right; a dishonest
// fulfiller posts a wrong first token (perturbed by this test through the library API: no
// production flag makes a wrong answer); an honest `pov oracle serve` re-runs the request,
// disagrees and challenges; governance decides for it after `pov oracle check` shows the
// difference; the honest result is finalised, both bonds move to the honest side, and the
// callback pays the claimant — the answer a single-process run (`--local`) gives. `pov audit`
// lists the request, both results, the dispute and the payouts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ContractFactory, keccak256, parseEther, type Signer } from 'ethers'
import { LocalNet, DEMO_SCRYPT_N } from '../../deploy/localnet.js'
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

const QUESTION = 'What is the capital of France?'
const FEE = parseEther('5')
const REWARD = parseEther('50')

let dir: string
let net: LocalNet
let bundle: Bundle
let ir: InferenceRequestsContract
let reference: OracleRun

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
  try {
    return await runOracleRequest(
      {
        modelId: bundle.modelId,
        dense,
        experts,
        tokenizer: await loadTokenizer(bundle.dir),
        eosTokenId: bundle.config.eosTokenId,
        vocabSize: bundle.config.vocabSize,
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
