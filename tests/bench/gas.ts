/**
 * Gas benchmark of the chain plane (not a test): `npm run gas`.
 *
 * Prints a table of the gas of deposit, register, redeeming one voucher and redeeming 10 and 100
 * vouchers in one transaction (per voucher), against the targets of issue 2, then — as the last
 * line — one JSON object with every figure.
 *
 * "first" = the first redemption of a (payer, payee) pair (its `paid` slot goes from zero to
 * non-zero, 20k gas more); "repeat" = a later, higher voucher of the same pair (the steady state of
 * a node redeeming periodically). Batches use a distinct payer per voucher, one payee.
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

const TARGET_SINGLE = 80_000n
const TARGET_BATCH_PER_VOUCHER = 40_000n

const { ethers, networkHelpers } = await network.create()
const [deployer, operator, payee] = await ethers.getSigners()
const modelId = ethers.id('gas-bench manifest')
const { deployment, contracts } = await deployAll(deployer, {
  models: [{ modelId, name: 'bench', layers: 32, experts: 8, shardCount: 8, uri: '' }],
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

/** Funded payers with a deposit each. */
async function makePayers(n: number): Promise<Wallet[]> {
  const payers: Wallet[] = []
  for (let i = 0; i < n; i++) {
    const w = Wallet.createRandom().connect(ethers.provider) as unknown as Wallet
    await networkHelpers.setBalance(w.address, POV(10))
    await c.token.transfer(w.address, POV(1000))
    await as(c.token, w).approve(deployment.contracts.escrow, ethers.MaxUint256)
    await as(c.escrow, w).deposit(POV(1000))
    payers.push(w)
  }
  return payers
}

async function vouchers(payers: Wallet[], amount: bigint) {
  const vs: Voucher[] = []
  const sigs: string[] = []
  for (const p of payers) {
    const v = { payer: p.address, payee: payee.address, cumulativeAmount: amount }
    vs.push(v)
    sigs.push(await signVoucher(p, domain, v))
  }
  return { vs, sigs }
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
  chainId: deployment.chainId, registry: deployment.contracts.registry, operator: operator.address,
})
await c.token.transfer(operator.address, POV(2000))
await as(c.token, operator).approve(deployment.contracts.registry, POV(2000))
const register = await gasOf(as(c.registry, operator).register({
  modelId, shards: [0], price: 10n, peerId: binding.peerId, multiaddrs: ['/ip4/127.0.0.1/tcp/4001'], peerSignature: binding.signature,
}, POV(1000)))

// make the payee and treasury balances non-zero first, so that figures do not include that one-off 20k
const [warm] = await makePayers(1)
{
  const { vs, sigs } = await vouchers([warm], 1n)
  await as(c.escrow, payee).redeem(vs[0], sigs[0])
}

const payers = await makePayers(111)
const single = payers.slice(0, 1)
const b10 = payers.slice(1, 11)
const b100 = payers.slice(11, 111)

async function redeemOne(ps: Wallet[], amount: bigint) {
  const { vs, sigs } = await vouchers(ps, amount)
  return gasOf(as(c.escrow, payee).redeem(vs[0], sigs[0]))
}
async function redeemMany(ps: Wallet[], amount: bigint) {
  const { vs, sigs } = await vouchers(ps, amount)
  return (await gasOf(as(c.escrow, payee).redeemBatch(vs, sigs))) / BigInt(ps.length)
}

const r1First = await redeemOne(single, POV(1))
const r1Repeat = await redeemOne(single, POV(2))
const r10First = await redeemMany(b10, POV(1))
const r10Repeat = await redeemMany(b10, POV(2))
const r100First = await redeemMany(b100, POV(1))
const r100Repeat = await redeemMany(b100, POV(2))

const fmt = (g: bigint) => g.toLocaleString('en-US').padStart(9)
const rows: Array<[string, bigint, bigint | null]> = [
  ['deposit (first, after approve)', depositFirst, null],
  ['deposit (top-up)', depositTopUp, null],
  ['register (1 shard, 1 multiaddr)', register, null],
  ['redeem 1 voucher (first of pair)', r1First, TARGET_SINGLE],
  ['redeem 1 voucher (repeat)', r1Repeat, TARGET_SINGLE],
  ['redeemBatch 10, per voucher (first)', r10First, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 10, per voucher (repeat)', r10Repeat, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 100, per voucher (first)', r100First, TARGET_BATCH_PER_VOUCHER],
  ['redeemBatch 100, per voucher (repeat)', r100Repeat, TARGET_BATCH_PER_VOUCHER],
]
console.log('POV chain plane — gas (hardhat EDR, solc optimizer 10k runs, fee 1 %)\n')
console.log(`${'operation'.padEnd(40)} ${'gas'.padStart(9)}  ${'target'.padStart(9)}  ok`)
console.log('-'.repeat(66))
for (const [name, gas, target] of rows) {
  const ok = target === null ? '' : gas <= target ? 'yes' : 'NO'
  console.log(`${name.padEnd(40)} ${fmt(gas)}  ${target === null ? ''.padStart(9) : `≤${fmt(target).trim().padStart(8)}`}  ${ok}`)
}
const steady = r1Repeat <= TARGET_SINGLE && r10Repeat <= TARGET_BATCH_PER_VOUCHER && r100Repeat <= TARGET_BATCH_PER_VOUCHER
const first = r1First <= TARGET_SINGLE && r10First <= TARGET_BATCH_PER_VOUCHER && r100First <= TARGET_BATCH_PER_VOUCHER
console.log(`\ntargets met, repeat redemptions (steady state): ${steady ? 'yes' : 'NO'}`)
console.log(`targets met, first redemption of a (payer, payee) pair: ${first ? 'yes' : 'NO'}` +
  ' (its paid-so-far slot goes 0 → non-zero: +17,100 gas per voucher, EIP-2200/2929)')
console.log(JSON.stringify({
  depositFirst: Number(depositFirst),
  depositTopUp: Number(depositTopUp),
  register: Number(register),
  redeemOneFirst: Number(r1First),
  redeemOneRepeat: Number(r1Repeat),
  redeemBatch10PerVoucherFirst: Number(r10First),
  redeemBatch10PerVoucherRepeat: Number(r10Repeat),
  redeemBatch100PerVoucherFirst: Number(r100First),
  redeemBatch100PerVoucherRepeat: Number(r100Repeat),
  targets: { redeemOne: Number(TARGET_SINGLE), redeemBatchPerVoucher: Number(TARGET_BATCH_PER_VOUCHER) },
  targetsMetRepeat: steady,
  targetsMetFirst: first,
}))
