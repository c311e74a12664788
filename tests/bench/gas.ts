/**
 * Gas benchmark of the chain plane (not a test): `npm run gas`.
 *
 * Prints a table of the gas of deposit, register, opening an earnings account, redeeming one
 * voucher, redeeming 10 and 100 vouchers in one transaction (per voucher) and withdrawing
 * earnings, against the targets of issue 2, then — as the last line — one JSON object with every
 * figure.
 *
 * "first" = the first redemption of a (payer, payee) pair (its `paid` slot goes from zero to
 * non-zero, 20k gas more); "repeat" = a later, higher voucher of the same pair (the steady state of
 * a node redeeming periodically). Batches use a distinct payer per voucher, one payee. The payee
 * has opened its earnings account (`openEarningsAccount`, which `pov node register` sends once);
 * the "unopened" rows show a payee whose very first redemption creates that slot instead.
 * Redemptions move no tokens (pull payments): `withdrawEarnings` pays the payee in one transfer.
 *
 * InferenceRequests (issue 25): request, fulfil, finalise (with a callback storing 16 tokens) and
 * challenge of a 16-token result, with and without the transaction's calldata gas.
 */
import { network } from 'hardhat'
import { Wallet } from 'ethers'
import type { Signer } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { deployAll } from '../../deploy/deploy.js'
import { signPeerBinding } from '../../chain/peer-binding.js'
import { signVoucher, voucherDomain } from '../../protocol/voucher.js'
import type { Voucher } from '../../protocol/voucher.js'
import type { PovContracts } from '../../chain/contracts.js'
import { toRedeemable } from '../../chain/vouchers.js'
import { faultReportsOf } from '../../chain/faults.js'
import {
  challengeRequest,
  inferenceRequestsOf,
  readRequest,
  type OracleResult
} from '../../chain/oracle.js'

const TARGET_SINGLE = 80_000n
const TARGET_BATCH_PER_VOUCHER = 40_000n
// issue 25: InferenceRequests, excluding the transaction's calldata (21,000 base included)
const TARGET_ORACLE_REQUEST = 120_000n
const TARGET_ORACLE_FULFIL = 150_000n

const { ethers, networkHelpers } = await network.create()
const [deployer, operator, payee, fresh1, fresh10] = await ethers.getSigners()
const modelId = ethers.id('gas-bench manifest')
const { deployment, contracts } = await deployAll(deployer, {
  preset: 'local',
  models: [{ modelId, name: 'bench', layers: 32, experts: 8, shardCount: 8, uri: '' }]
})
const c: PovContracts = contracts
const domain = voucherDomain(deployment.contracts.escrow, deployment.chainId)
const POV = (n: number) => ethers.parseEther(String(n))

async function gasOf(p: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>): Promise<bigint> {
  const receipt = await (await p).wait()
  return receipt!.gasUsed
}

function as<T extends { connect(s: Signer): unknown }>(x: T, s: Signer): T {
  return x.connect(s) as T
}

/** Funded payers with a deposit each, allocated to their lanes to `lanes` (the payees). */
async function makePayers(n: number, lanes: string[] = [payee.address]): Promise<Wallet[]> {
  const payers: Wallet[] = []
  for (let i = 0; i < n; i++) {
    const w = Wallet.createRandom().connect(ethers.provider) as unknown as Wallet
    await networkHelpers.setBalance(w.address, POV(10))
    await c.token.transfer(w.address, POV(1000))
    await as(c.token, w).approve(deployment.contracts.escrow, ethers.MaxUint256)
    await as(c.escrow, w).deposit(POV(1000))
    if (lanes.length > 0)
      await as(c.escrow, w).allocate(
        lanes,
        lanes.map(() => POV(1000) / BigInt(lanes.length))
      )
    payers.push(w)
  }
  return payers
}

/** Vouchers signed by `payers` for `payee`, in the escrow's claim form. */
async function vouchers(payers: Wallet[], amount: bigint, to: string = payee.address) {
  const vs = []
  for (const p of payers) {
    const v: Voucher = { payer: p.address, payee: to, cumulativeAmount: amount }
    vs.push(toRedeemable({ ...v, signature: await signVoucher(p, domain, v) }))
  }
  return vs
}

// deposit: first deposit of a fresh payer (after approve), and a top-up
const [depositor] = await makePayers(0).then(async () => {
  const w = Wallet.createRandom().connect(ethers.provider) as unknown as Wallet
  await networkHelpers.setBalance(w.address, POV(10))
  await c.token.transfer(w.address, POV(1000))
  await as(c.token, w).approve(deployment.contracts.escrow, ethers.MaxUint256)
  return [w]
})
const depositFirst = await gasOf(as(c.escrow, depositor).deposit(POV(10)))
const depositTopUp = await gasOf(as(c.escrow, depositor).deposit(POV(10)))

// register: one shard, one multiaddr, Ed25519 PeerId
const binding = await signPeerBinding(await generateKeyPair('Ed25519'), {
  chainId: deployment.chainId,
  registry: deployment.contracts.registry,
  operator: operator.address
})
await c.token.transfer(operator.address, POV(2000))
await as(c.token, operator).approve(deployment.contracts.registry, POV(2000))
const register = await gasOf(
  as(c.registry, operator).register(
    {
      modelId,
      shards: [0],
      price: 10n,
      peerId: binding.peerId,
      multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
      peerSignature: binding.signature
    },
    POV(1000)
  )
)

// the payee opens its earnings account once (as `pov node register` does)
const openAccount = await gasOf(as(c.escrow, payee).openEarningsAccount())

// allocate: a payer's deposit into its lanes to the nodes it will pay (once per run of a client)
const [allocator] = await makePayers(1, [])
const allocateOne = await gasOf(as(c.escrow, allocator).allocate([payee.address], [POV(10)]))
const tenPayees = Array.from({ length: 10 }, () => Wallet.createRandom().address)
const allocateTen = await gasOf(
  as(c.escrow, allocator).allocate(
    tenPayees,
    tenPayees.map(() => POV(10))
  )
)

const payers = await makePayers(111)
const single = payers.slice(0, 1)
const b10 = payers.slice(1, 11)
const b100 = payers.slice(11, 111)
const unopened1 = await makePayers(1, [fresh1.address])
const unopened10 = await makePayers(10, [fresh10.address])

async function redeemOne(ps: Wallet[], amount: bigint, by: Signer = payee) {
  const vs = await vouchers(ps, amount, await by.getAddress())
  return gasOf(as(c.escrow, by).redeem(vs[0]))
}
async function redeemMany(ps: Wallet[], amount: bigint, by: Signer = payee) {
  const vs = await vouchers(ps, amount, await by.getAddress())
  return (await gasOf(as(c.escrow, by).redeemBatch(vs))) / BigInt(ps.length)
}

const r1First = await redeemOne(single, POV(1))
const r1Repeat = await redeemOne(single, POV(2))
const r10First = await redeemMany(b10, POV(1))
const r10FirstTotal = r10First * 10n
const r10Repeat = await redeemMany(b10, POV(2))
const r100First = await redeemMany(b100, POV(1))
const r100Repeat = await redeemMany(b100, POV(2))
// payees that never opened their account: the first credit writes their earnings slot from zero
const r1Unopened = await redeemOne(unopened1, POV(1), fresh1)
const r10Unopened = await redeemMany(unopened10, POV(1), fresh10)
// a batch of 10 where one payer's lane is empty: skipped (VoucherSkipped), the other 9 paid
const emptied = await makePayers(1)
await redeemOne(emptied, POV(1000)) // the whole lane paid out
const skipBatch = [
  ...(await vouchers(emptied, POV(1001))),
  ...(await vouchers(b10.slice(1), POV(3)))
]
const r10OneSkipped = (await gasOf(as(c.escrow, payee).redeemBatch(skipBatch))) / 10n
// the payer takes back its deposit and 10 lanes after the unlock period
await as(c.escrow, allocator).unlock()
await networkHelpers.time.increase(Number(await c.escrow.unlockPeriod()))
const withdrawTenLanes = await gasOf(
  as(c.escrow, allocator).withdraw([payee.address, ...tenPayees])
)
// withdrawing: the payee's first POV ever (its token balance goes 0 → non-zero), then a later one
const withdrawFirst = await gasOf(as(c.escrow, payee).withdrawEarnings())
await redeemOne(single, POV(3))
const withdrawRepeat = await gasOf(as(c.escrow, payee).withdrawEarnings())

// InferenceRequests: a 16-token request (short prompt, callback), its result, a challenge, the
// finalisation with a callback that stores the tokens. "excl. calldata" subtracts the
// transaction's calldata gas (16 per non-zero byte, 4 per zero byte), which the target leaves out.
const ir = inferenceRequestsOf(deployment, deployer)
const consumer = await ethers.deployContract('OracleConsumerMock', [ir.target])
const [, , , , , asker, fulfiller, checker] = await ethers.getSigners()
for (const w of [asker, fulfiller, checker]) await c.token.transfer(w.address, POV(10_000))
await as(c.token, asker).approve(ir.target as string, ethers.MaxUint256)
await as(c.token, fulfiller).approve(ir.target as string, ethers.MaxUint256)
await as(c.token, checker).approve(ir.target as string, ethers.MaxUint256)
function calldataGas(data: string): bigint {
  let g = 0n
  for (let i = 2; i < data.length; i += 2) g += data.slice(i, i + 2) === '00' ? 4n : 16n
  return g
}
async function gasAndCalldata(
  p: Promise<{ data: string; wait(): Promise<{ gasUsed: bigint } | null> }>
): Promise<[bigint, bigint]> {
  const tx = await p
  const receipt = await tx.wait()
  return [receipt!.gasUsed, calldataGas(tx.data)]
}
const ORACLE_TOKENS = 16
async function oracleRequest(): Promise<[number, bigint, bigint]> {
  const now = (await ethers.provider.getBlock('latest'))!.timestamp
  const [gas, cd] = await gasAndCalldata(
    as(ir, asker).request({
      modelId,
      prompt: ethers.toUtf8Bytes('Is the following message abusive? Answer yes or no.'),
      promptHash: ethers.ZeroHash,
      promptUri: '',
      maxTokens: ORACLE_TOKENS,
      fee: POV(1),
      deadline: now + 3600,
      callback: consumer.target,
      selector: consumer.interface.getFunction('onInferenceResult')!.selector,
      callbackGasLimit: 200_000
    })
  )
  return [Number(await ir.requestCount()) - 1, gas, cd]
}
const oracleResult = (shift: number): OracleResult => ({
  tokens: Array.from({ length: ORACLE_TOKENS }, (_, i) => 1000 + i + (i >= 8 ? shift : 0)),
  margins: Array.from({ length: ORACLE_TOKENS }, (_, i) => 150_000 + 7919 * i),
  evidenceHash: ethers.id('evidence')
})
await oracleRequest() // the contract's first POV and first record: one-off cold slots
const [reqId, oracleRequestGas, oracleRequestCd] = await oracleRequest()
const reqView = await readRequest(ir, reqId)
const [oracleFulfilGas, oracleFulfilCd] = await gasAndCalldata(
  as(ir, fulfiller).fulfil(reqId, reqView.params, oracleResult(0), 'ipfs://evidence')
)
await networkHelpers.time.increase(reqView.params.challengeWindow + 1)
const [oracleFinaliseGas, oracleFinaliseCd] = await gasAndCalldata(
  as(ir, checker).finalize(reqId, reqView.params, oracleResult(0))
)
const [chId] = await oracleRequest()
const chView = await readRequest(ir, chId)
await as(ir, fulfiller).fulfil(chId, chView.params, oracleResult(1), 'ipfs://evidence')
const challengeTx = challengeRequest(c, ir, checker, await readRequest(ir, chId), oracleResult(0))
const challengeHash = await challengeTx
const challengeReceipt = await ethers.provider.getTransactionReceipt(challengeHash)
const challengeData = (await ethers.provider.getTransaction(challengeHash))!.data
const oracleChallengeGas = challengeReceipt!.gasUsed
const oracleChallengeCd = calldataGas(challengeData)
// issue 22: a fault report is two transactions (commit, then the bonded reveal that freezes the
// stake); expiry pays the bond to the accused; the router's registry reads are pages of 100
const fr = faultReportsOf(deployment, deployer)
const faultOperator = await operator.getAddress()
const faultSalt = ethers.id('gas salt')
const commitment = await fr.commitmentOf(
  deployer.address,
  faultOperator,
  ethers.id('gas evidence'),
  0n,
  faultSalt
)
const commitGas = await gasOf(fr.commitReport(commitment))
await c.token.approve(deployment.faultReports!, await fr.bondFor(faultOperator))
const revealGas = await gasOf(
  fr.reportFault(faultOperator, ethers.id('gas evidence'), 0n, faultSalt, 'ipfs://evidence')
)
const faultId = Number(await fr.reportCount()) - 1
await networkHelpers.time.increaseTo((await fr.reportOf(faultId)).deadline)
const expireGas = await gasOf(fr.expireFault(faultId))
const pageGas = await c.registry.activeNodesPage.estimateGas(modelId, 0, 0, 100)
const fmt = (g: bigint) => g.toLocaleString('en-US').padStart(9)
const rows: Array<[string, bigint, bigint | null]> = [
  ['deposit (first, after approve)', depositFirst, null],
  ['deposit (top-up)', depositTopUp, null],
  ['register (1 shard, 1 multiaddr)', register, null],
  ['openEarningsAccount (once per operator)', openAccount, null],
  ['allocate 1 lane (first)', allocateOne, null],
  ['allocate 10 lanes (first), per lane', allocateTen / 10n, null],
  ['redeem 1 voucher (first of pair)', r1First, TARGET_SINGLE],
  ['redeem 1 voucher (repeat)', r1Repeat, TARGET_SINGLE],
  ['redeemBatch 10, per voucher (first)', r10First, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 10, per voucher (repeat)', r10Repeat, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 100, per voucher (first)', r100First, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 100, per voucher (repeat)', r100Repeat, TARGET_BATCH_PER_VOUCHER],
  ['redeem 1 (first, account unopened)', r1Unopened, TARGET_SINGLE],
  ['redeemBatch 10/voucher (first, unopened)', r10Unopened, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 10/voucher, 1 empty lane skipped', r10OneSkipped, TARGET_BATCH_PER_VOUCHER],
  ['withdraw deposit + 11 lanes (payer)', withdrawTenLanes, null],
  ['withdrawEarnings (payee held no POV)', withdrawFirst, null],
  ['withdrawEarnings (payee holds POV)', withdrawRepeat, null],
  ['claim 10 first: batch + withdraw, /voucher', (r10FirstTotal + withdrawRepeat) / 10n, null],
  [
    'oracle request (16 tokens max), excl. calldata',
    oracleRequestGas - oracleRequestCd,
    TARGET_ORACLE_REQUEST
  ],
  [
    'oracle fulfil (16 tokens), excl. calldata',
    oracleFulfilGas - oracleFulfilCd,
    TARGET_ORACLE_FULFIL
  ],
  ['oracle finalise + callback, excl. calldata', oracleFinaliseGas - oracleFinaliseCd, null],
  ['oracle challenge (16 tokens), excl. calldata', oracleChallengeGas - oracleChallengeCd, null],
  ['fault report: commitReport', commitGas, null],
  ['fault report: reportFault (bond + freeze)', revealGas, null],
  ['fault report: expireFault (bond to accused)', expireGas, null],
  ['activeNodesPage(100), eth_call, 1 node', pageGas, null]
]
console.log('POV chain plane — gas (hardhat EDR, solc optimizer 10k runs, fee 1 %)\n')
console.log(`${'operation'.padEnd(46)} ${'gas'.padStart(9)}  ${'target'.padStart(9)}  ok`)
console.log('-'.repeat(72))
for (const [name, gas, target] of rows) {
  const ok = target === null ? '' : gas <= target ? 'yes' : 'NO'
  console.log(
    `${name.padEnd(46)} ${fmt(gas)}  ${target === null ? ''.padStart(9) : `≤${fmt(target).trim().padStart(8)}`}  ${ok}`
  )
}
const steady =
  r1Repeat <= TARGET_SINGLE &&
  r10Repeat <= TARGET_BATCH_PER_VOUCHER &&
  r100Repeat <= TARGET_BATCH_PER_VOUCHER
const first =
  r1First <= TARGET_SINGLE &&
  r10First <= TARGET_BATCH_PER_VOUCHER &&
  r100First <= TARGET_BATCH_PER_VOUCHER
const unopened = r1Unopened <= TARGET_SINGLE && r10Unopened <= TARGET_BATCH_PER_VOUCHER
console.log(`\ntargets met, repeat redemptions (steady state): ${steady ? 'yes' : 'NO'}`)
console.log(
  `targets met, first redemption of a (payer, payee) pair: ${first ? 'yes' : 'NO'}` +
    ' (its lane slot was written by allocate, so the first redemption of a pair writes non-zero → non-zero)'
)
console.log(
  `targets met, a payee's first redemption without openEarningsAccount: ${unopened ? 'yes' : 'NO'}` +
    ' (its earnings slot goes 0 → non-zero: +17,100 gas once; `pov node register` opens the account, one-time cost above)'
)
console.log(
  'redemptions move no tokens: a claim adds one withdrawEarnings transaction (one transfer) for the whole batch'
)
const oracleOk =
  oracleRequestGas - oracleRequestCd <= TARGET_ORACLE_REQUEST &&
  oracleFulfilGas - oracleFulfilCd <= TARGET_ORACLE_FULFIL
console.log(
  `oracle targets met (request ≤ 120k, fulfil ≤ 150k, calldata excluded): ${oracleOk ? 'yes' : 'NO'}` +
    ` — with calldata: request ${oracleRequestGas}, fulfil ${oracleFulfilGas}, finalise ${oracleFinaliseGas}, challenge ${oracleChallengeGas}`
)
console.log(
  JSON.stringify({
    depositFirst: Number(depositFirst),
    depositTopUp: Number(depositTopUp),
    register: Number(register),
    openEarningsAccount: Number(openAccount),
    allocateOneLane: Number(allocateOne),
    allocateTenLanesPerLane: Number(allocateTen / 10n),
    redeemBatch10PerVoucherOneSkipped: Number(r10OneSkipped),
    withdrawElevenLanes: Number(withdrawTenLanes),
    redeemOneFirst: Number(r1First),
    redeemOneRepeat: Number(r1Repeat),
    redeemBatch10PerVoucherFirst: Number(r10First),
    redeemBatch10PerVoucherRepeat: Number(r10Repeat),
    redeemBatch100PerVoucherFirst: Number(r100First),
    redeemBatch100PerVoucherRepeat: Number(r100Repeat),
    redeemOneFirstUnopened: Number(r1Unopened),
    redeemBatch10PerVoucherFirstUnopened: Number(r10Unopened),
    withdrawEarningsFirst: Number(withdrawFirst),
    withdrawEarningsRepeat: Number(withdrawRepeat),
    claim10FirstPerVoucher: Number((r10FirstTotal + withdrawRepeat) / 10n),
    oracleRequest: Number(oracleRequestGas),
    oracleRequestCalldata: Number(oracleRequestCd),
    oracleFulfil: Number(oracleFulfilGas),
    oracleFulfilCalldata: Number(oracleFulfilCd),
    oracleFinalise: Number(oracleFinaliseGas),
    oracleFinaliseCalldata: Number(oracleFinaliseCd),
    oracleChallenge: Number(oracleChallengeGas),
    oracleChallengeCalldata: Number(oracleChallengeCd),
    oracleTargetsMet: oracleOk,
    faultCommit: Number(commitGas),
    faultReveal: Number(revealGas),
    faultExpire: Number(expireGas),
    activeNodesPageCall: Number(pageGas),
    targets: {
      redeemOne: Number(TARGET_SINGLE),
      redeemBatchPerVoucher: Number(TARGET_BATCH_PER_VOUCHER),
      oracleRequest: Number(TARGET_ORACLE_REQUEST),
      oracleFulfil: Number(TARGET_ORACLE_FULFIL)
    },
    targetsMetRepeat: steady,
    targetsMetFirst: first,
    targetsMetFirstUnopened: unopened
  })
)
