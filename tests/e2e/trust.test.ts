// User journey: a node that returns wrong expert outputs is caught, proven wrong to anyone, and
// slashed. Three dishonest nodes, each perturbed by this test through the library API (no
// production flag): (a) noise on every call, (b) a 1 % rescale on 10 % of calls, (c) another
// model's weights under the approved id. Each serves every expert beside two honest operators;
// a router spot-checks a fraction of calls. Checked: detection within the number of calls the
// rate predicts, honest nodes never accused, the convicted node never used again, generation
// tokens equal to --local, the evidence file verifies offline (`pov audit verify-fault`), and
// for (a) the bonded report, frozen withdrawal and a full governance round that slashes, pays
// the reporter and takes the node out of selection (`pov audit` lists the outcome).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther, ZeroHash, type Signer } from 'ethers'
import { createLibp2p } from 'libp2p'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LocalNet } from '../../deploy/localnet.js'
import { seededRandom } from '../../model/sampling.js'
import { transportOptions } from '../../protocol/transport.js'
import { expertService, type ExpertService } from '../../node/expert-service.js'
import type { ExpertBackend } from '../../node/runtime.js'
import { signPeerBinding } from '../../chain/peer-binding.js'
import { governanceRound, devChainClock } from '../../chain/governance.js'
import {
  faultReportsOf,
  reportFault,
  upholdFaultActions,
  readFaultReport
} from '../../chain/faults.js'
import type { FaultReportsContract } from '../../chain/contracts.js'
import { Router } from '../../router/router.js'
import { SpotChecker, type Fault } from '../../router/spot-check.js'
import { Reputation } from '../../router/reputation.js'
import { evidenceHash } from '../../router/evidence.js'
import { readFile } from 'node:fs/promises'
import { verifyFaultFile } from '../../cli/audit/faults.js'
import { cheatFixture, type CheatFixture } from '../sim/cheat-fixture.js'

const PROMPT = [1, 2, 3]
const MAX_TOKENS = 12
const STAKE = parseEther('1000') // = the deployment's minimum stake
const SLASH = parseEther('600') // leaves 400 < minimum: the node leaves selection
/** Detection bound: P(not caught within n answers) ≤ (1 − p·q)^n; 1e-3 is the test's false-failure budget. */
const MISS = 1e-3

type Host = Libp2p<{ expert: ExpertService }>
interface Op {
  name: string
  signer: Signer
  address: string
  key: PrivateKey
  host: Host
  peerId: string
  addr: string
}

let dir: string
let net: LocalNet
let f: CheatFixture
let fr: FaultReportsContract
const ops = new Map<string, Op>()
const bindings = new Map<string, { operator: string; peerIdBytes: string; peerSignature: string }>()

/** A node's backend: the honest runtime, perturbed by `tamper` (the test's injection point). */
function backend(
  tamper?: (
    y: Float32Array,
    l: number,
    e: number,
    x: Float32Array,
    rows: number
  ) => Promise<Float32Array>
): ExpertBackend {
  return {
    has: (l, e) => f.honestRt.has(l, e),
    runExpert: async (l, e, x, rows) => {
      const y = await f.honestRt.runExpert(l, e, x, rows)
      return tamper == null ? y : await tamper(y, l, e, x, rows)
    }
  }
}

async function addOperator(name: string, signerIndex: number, rt: ExpertBackend): Promise<Op> {
  const signer = await net.signer(signerIndex)
  const address = await signer.getAddress()
  await net.fund(address, STAKE)
  const key = await generateKeyPair('Ed25519')
  const c = f.bundle.config
  const host = (await createLibp2p({
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: {
      expert: expertService({
        models: [
          {
            modelId: f.bundle.modelId,
            manifestHash: f.bundle.modelId,
            hidden: c.hiddenSize,
            numLayers: c.numLayers,
            numExperts: c.numExperts,
            shards: f.bundle.manifest.shards.map((s) => s.id),
            experts: f.honestRt.experts(),
            runtime: rt
          }
        ]
      })
    }
  })) as unknown as Host
  const addr = host.getMultiaddrs()[0].toString()
  const b = await signPeerBinding(key, {
    chainId: net.deployment.chainId,
    registry: net.deployment.contracts.registry,
    operator: address
  })
  const reg = {
    modelId: f.bundle.modelId,
    shards: f.bundle.manifest.shards.map((s) => s.id),
    price: 1n,
    peerId: b.peerId,
    multiaddrs: [addr.replace(/\/p2p\/.*$/, '')],
    peerSignature: b.signature
  }
  const token = net.contracts.token.connect(signer) as typeof net.contracts.token
  await (await token.approve(net.deployment.contracts.registry, STAKE)).wait()
  const registry = net.contracts.registry.connect(signer) as typeof net.contracts.registry
  await (await registry.register(reg, STAKE)).wait()
  // what a paying router reads from the registry and puts into evidence
  const node = await net.contracts.registry.nodeOf(address)
  const peerId = peerIdFromPrivateKey(key).toString()
  bindings.set(peerId, {
    operator: address,
    peerIdBytes: node.peerId,
    peerSignature: node.peerSignature
  })
  const op = { name, signer, address, key, host, peerId, addr }
  ops.set(name, op)
  return op
}

before(
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'pov-e2e-trust-'))
    net = new LocalNet(dir)
    await net.start()
    f = await cheatFixture(dir, { prompt: PROMPT, maxTokens: MAX_TOKENS })
    await net.approveModel({
      modelId: f.bundle.modelId,
      name: 'tiny',
      layers: f.bundle.config.numLayers,
      experts: f.bundle.config.numExperts,
      shardCount: f.bundle.manifest.shards.length,
      uri: 'file://' + f.bundle.dir
    })
    // fault reports come with the deployment (deployAll wires them into the registry)
    fr = faultReportsOf(net.deployment, net.provider)

    const noise = seededRandom(11)
    const gauss = (): number =>
      Math.sqrt(-2 * Math.log(1 - noise())) * Math.cos(2 * Math.PI * noise())
    const coin = seededRandom(12)
    await addOperator('honest-1', 1, backend())
    await addOperator('honest-2', 2, backend())
    // (a) Gaussian noise of 1 % of each row's RMS on every call
    await addOperator(
      'noise',
      3,
      backend(async (y, _l, _e, _x, rows) => {
        const h = y.length / rows
        const out = y.slice()
        for (let r = 0; r < rows; r++) {
          let s = 0
          for (let i = r * h; i < (r + 1) * h; i++) s += y[i] * y[i]
          const sd = 0.01 * Math.sqrt(s / h)
          for (let i = r * h; i < (r + 1) * h; i++) out[i] += sd * gauss()
        }
        return out
      })
    )
    // (b) every output × 1.01 on 10 % of calls
    await addOperator(
      'scale',
      4,
      backend(async (y) => (coin() < 0.1 ? y.map((v) => v * 1.01) : y))
    )
    // (c) the other model's experts under the approved id
    await addOperator('other-weights', 5, f.otherWeights())
  },
  { timeout: 180_000 }
)

after(async () => {
  await Promise.all([...ops.values()].map(async (o) => await o.host.stop()))
  await f?.close()
  await net?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

interface Outcome {
  fault: Fault
  /** The cheat's answers (any role) up to and including the conviction. */
  answers: number
  bound: number
  tokens: number[][]
  after: number[]
  answersAfter: number
}

/**
 * Generations through [honest-1, honest-2, cheat] at spot-check rate `p` until the cheat is
 * convicted; fails if that takes more of its answers than the (1 − MISS) bound for cheat rate q.
 */
async function catchCheat(cheat: string, p: number, q: number): Promise<Outcome> {
  const c = ops.get(cheat)!
  const peers = [ops.get('honest-1')!, ops.get('honest-2')!, c]
  const bound = Math.ceil(Math.log(MISS) / Math.log(1 - p * q))
  let answers = 0
  let fault: Fault | undefined
  let answersAtFault = 0
  const checker = new SpotChecker({
    rate: p,
    modelId: f.bundle.modelId,
    random: seededRandom(cheat.length),
    reputation: new Reputation(join(dir, `${cheat}-reputation.json`)),
    evidenceDir: join(dir, `${cheat}-evidence`),
    operatorOf: (peer) => bindings.get(peer)?.operator ?? peer,
    bindingOf: (peer) => {
      const b = bindings.get(peer)
      return b == null
        ? undefined
        : {
            chainId: String(net.deployment.chainId),
            registry: net.deployment.contracts.registry,
            ...b
          }
    },
    onFault: (f) => {
      fault ??= f
      answersAtFault = answers
    }
  })
  const open = async (): Promise<Router> =>
    await Router.init({
      opts: {
        peers: peers.map((o) => o.addr),
        modelId: f.bundle.modelId,
        hidden: f.bundle.config.hiddenSize,
        spotCheck: checker,
        operatorOf: (peer) => bindings.get(peer)?.operator ?? peer,
        onAttempt: (a) => {
          if (a.peer === c.peerId && a.ok) answers++
        }
      }
    })
  const tokens: number[][] = []
  const r = await open()
  try {
    while (fault == null && answers <= bound) tokens.push(await f.run(r.executor))
  } finally {
    await r.close()
  }
  assert.ok(fault != null, `${cheat}: not caught within ${answers} of its answers (bound ${bound})`)
  assert.equal(fault.peer, c.peerId, `${cheat}: the convicted node is the cheat`)
  assert.ok(
    answersAtFault <= bound,
    `${cheat}: caught after ${answersAtFault} answers > bound ${bound}`
  )
  for (const h of peers.slice(0, 2))
    assert.equal(checker.reputation.isConvicted(h.peerId), false, `${h.name} accused`)
  // a restarted router reads the reputation file: the cheat is never called again
  const answersBefore = answers
  const r2 = await open()
  let afterTokens: number[]
  try {
    afterTokens = await f.run(r2.executor)
  } finally {
    await r2.close()
  }
  return {
    fault,
    answers: answersAtFault,
    bound,
    tokens,
    after: afterTokens,
    answersAfter: answers - answersBefore
  }
}

async function checkEvidence(o: Outcome, cheat: string): Promise<string> {
  const file = o.fault.evidencePath!
  const v = await verifyFaultFile(file, f.bundle.dir)
  const c = ops.get(cheat)!
  assert.deepEqual(
    v.wrong.map((s) => s.operator),
    [c.address],
    'the cheat, by its registered operator'
  )
  assert.ok(v.signers.every((s) => s.signatureOk && s.bindingOk === true && s.outputHashOk))
  assert.ok(
    v.signers.filter((s) => !s.wrong).length >= 1,
    'an honest signer agrees with the re-execution'
  )
  assert.deepEqual(v.problems, [])
  assert.equal(v.evidenceHash, evidenceHash(await readFile(file)))
  return file
}

test('the --local reference has no near-ties (token equality is a real check)', (t) => {
  assert.equal(f.local.length, MAX_TOKENS)
  t.diagnostic(`smallest top-1/top-2 logit margin ${f.minMargin}`)
  // a 1 % perturbation of one expert's output moves these logits far less than this margin
  assert.ok(f.minMargin > 2e-2, `margin ${f.minMargin} too small for token equality to mean much`)
})

test('(b) a 1 % rescale on 10 % of calls is caught within the predicted calls; tokens equal --local', async (t) => {
  const o = await catchCheat('scale', 0.5, 0.1)
  t.diagnostic(
    `caught after ${o.answers} of its answers (99.9 % bound ${o.bound}), ${o.tokens.length} generation(s)`
  )
  for (const ids of o.tokens)
    assert.deepEqual(ids, f.local, 'a 1 % rescale does not move these tokens')
  assert.deepEqual(o.after, f.local)
  assert.equal(o.answersAfter, 0, 'the convicted node is not used after a restart')
  await checkEvidence(o, 'scale')
})

test('(c) another model’s weights under the approved id are caught; evidence names the wrong signer', async (t) => {
  const o = await catchCheat('other-weights', 0.25, 1)
  t.diagnostic(
    `caught after ${o.answers} of its answers (bound ${o.bound}); tokens of the run it was caught in ${o.tokens.map((x) => (x.join() === f.local.join() ? 'equal' : 'differ')).join(', ')} (its unchecked answers before the conviction were used)`
  )
  assert.deepEqual(o.after, f.local, 'after the conviction: tokens equal --local')
  assert.equal(o.answersAfter, 0)
  const file = await checkEvidence(o, 'other-weights')
  await assert.rejects(verifyFaultFile(file, f.other.dir), /the evidence is about model/)
})

test('(a) noise on every call: caught, evidence verifies with `pov audit verify-fault`, reported, slashed by a governance round, out of selection', async (t) => {
  const o = await catchCheat('noise', 0.25, 1)
  t.diagnostic(`caught after ${o.answers} of its answers (bound ${o.bound})`)
  for (const ids of o.tokens) assert.deepEqual(ids, f.local, '1 % noise does not move these tokens')
  assert.deepEqual(o.after, f.local)
  assert.equal(o.answersAfter, 0)
  const file = await checkEvidence(o, 'noise')
  const cheat = ops.get('noise')!

  // the auditor's check, as a separate process
  const cli = await net.pov(['audit', 'verify-fault', file, '--model', f.bundle.dir, '--json'])
  assert.equal(cli.code, 0, cli.stderr)
  const verdict = JSON.parse(cli.stdout) as {
    wrong: Array<{ operator: string }>
    evidenceHash: string
  }
  assert.deepEqual(
    verdict.wrong.map((w) => w.operator),
    [cheat.address]
  )

  // a bonded reporter files it: the accused cannot withdraw meanwhile
  const reporter = await net.signer(6)
  await net.fund(await reporter.getAddress(), parseEther('100'))
  const { id } = await reportFault(net.contracts, fr, reporter, {
    operator: cheat.address,
    evidenceHash: verdict.evidenceHash,
    uri: 'file://' + file
  })
  const report = await readFaultReport(fr, id)
  assert.equal(report.status, 'Pending')
  assert.ok(
    (await net.contracts.registry.withdrawalFrozenUntil(cheat.address)) >= BigInt(report.deadline)
  )

  // governance: slash and pay the reporter in one full round
  const before = await net.contracts.token.balanceOf(await reporter.getAddress())
  const deployer = await net.signer(0)
  const round = await governanceRound({
    contracts: net.contracts,
    proposer: deployer,
    voters: [deployer],
    actions: upholdFaultActions(net.contracts, fr, report, SLASH),
    description: `Uphold fault report #${id}: slash ${cheat.address}`,
    clock: devChainClock(net.provider)
  })
  assert.equal(round.state, 'Executed')
  const upheld = await readFaultReport(fr, id)
  assert.equal(upheld.status, 'Upheld')
  assert.equal(upheld.slashed, SLASH)
  const reward = (SLASH * BigInt(await fr.reporterShareBps())) / 10_000n
  assert.equal(upheld.reward, reward)
  assert.equal(
    await net.contracts.token.balanceOf(await reporter.getAddress()),
    before + report.bond + reward
  )
  assert.equal(await net.contracts.registry.isActive(cheat.address), false)
  for (let shard = 0; shard < f.bundle.manifest.shards.length; shard++) {
    const picked = await net.contracts.registry.selectNodes(
      f.bundle.modelId,
      shard,
      ZeroHash,
      parseEther('1'),
      10
    )
    assert.ok(
      !picked.some((n) => n.operator === cheat.address),
      `shard ${shard}: the slashed node is still selected`
    )
    assert.equal(picked.length, 4)
  }

  // the auditor's list
  const audit = await net.povJson<{
    faults: Array<{ id: number; status: string; operator: string; slashed: string }>
  }>(['audit', '--rpc', net.rpc, '--deployment', net.deploymentFile])
  assert.deepEqual(
    audit.faults.map((f) => [f.id, f.status, f.operator, f.slashed]),
    [[id, 'Upheld', cheat.address, SLASH.toString()]]
  )
})
