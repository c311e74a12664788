/**
 * Shared fixture of the contract tests: a fresh in-process Hardhat network per test file,
 * everything deployed with deploy/deploy.ts `deployAll` (so the tests exercise the real wiring),
 * snapshots via loadFixture.
 */
import { expect } from 'chai'
import { network } from 'hardhat'
import type { BaseContract, Signer } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { deployAll } from '../../deploy/deploy.js'
import { signPeerBinding } from '../../chain/peer-binding.js'
import { signVoucher, voucherDomain } from '../../protocol/voucher.js'
import type { Voucher, VoucherDomain } from '../../protocol/voucher.js'
import { toRedeemable } from '../../chain/vouchers.js'

export const conn = await network.create()
export const { ethers, networkHelpers } = conn

export const POV = (n: number | string) => ethers.parseEther(String(n))
export const MODEL_ID = ethers.id('tiny-mixtral manifest')
export const OTHER_MODEL_ID = ethers.id('other manifest')
export const MODEL = {
  modelId: MODEL_ID,
  name: 'tiny-mixtral',
  layers: 4,
  experts: 8,
  shardCount: 8,
  uri: 'file://bundles/tiny'
}
export const MIN_STAKE = POV(1000)
export const FEE_BPS = 100n
export const UNLOCK_PERIOD = 3600
export const UNBONDING_PERIOD = 7200
export const VOTING_DELAY = 1
export const VOTING_PERIOD = 5
export const TIMELOCK_DELAY = 60

/** `c.connect(s)` keeping c's type. */
export function by<T extends BaseContract>(c: T, s: Signer): T {
  return c.connect(s) as T
}

/**
 * A BondCustody treasury setter (FaultReports, InferenceRequests): owner only, never 0 nor the
 * contract itself (refused with the contract's own `invalidError`), TreasurySet with the old and new
 * address. `owned` is the contract as its owner.
 */
export async function expectTreasurySetter<
  T extends BaseContract & {
    setTreasury: (a: string) => Promise<unknown>
    treasury: () => Promise<string>
  }
>(
  owned: T,
  stranger: Signer & { address: string },
  invalidError: string,
  before: string,
  next: string
): Promise<void> {
  await expect(by(owned, stranger).setTreasury(next))
    .to.be.revertedWithCustomError(owned, 'OwnableUnauthorizedAccount')
    .withArgs(stranger.address)
  for (const bad of [ethers.ZeroAddress, owned.target as string])
    await expect(owned.setTreasury(bad))
      .to.be.revertedWithCustomError(owned, invalidError)
      .withArgs(bad)
  await expect(owned.setTreasury(next)).to.emit(owned, 'TreasurySet').withArgs(before, next)
  expect(await owned.treasury()).to.equal(next)
}

async function deployFixture() {
  const [deployer, alice, bob, op1, op2, op3, attacker] = await ethers.getSigners()
  const { deployment, contracts } = await deployAll(deployer, {
    preset: 'local',
    minStake: MIN_STAKE,
    unbondingPeriod: UNBONDING_PERIOD,
    unlockPeriod: UNLOCK_PERIOD,
    feeBps: Number(FEE_BPS),
    votingDelay: VOTING_DELAY,
    votingPeriod: VOTING_PERIOD,
    timelockDelay: TIMELOCK_DELAY,
    models: [MODEL]
  })
  const { token } = contracts
  for (const s of [alice, bob, op1, op2, op3, attacker]) {
    await token.transfer(s.address, POV(100_000))
  }
  await networkHelpers.impersonateAccount(deployment.contracts.timelock)
  await networkHelpers.setBalance(deployment.contracts.timelock, POV(100))
  const timelock = await ethers.getSigner(deployment.contracts.timelock)
  const domain: VoucherDomain = voucherDomain(deployment.contracts.escrow, deployment.chainId)
  return { deployment, contracts, deployer, alice, bob, op1, op2, op3, attacker, timelock, domain }
}

export function load() {
  return networkHelpers.loadFixture(deployFixture)
}

export type Env = Awaited<ReturnType<typeof deployFixture>>

/** A registration of `op` with a fresh Ed25519 PeerId, signed for this registry. */
export async function registration(
  env: Env,
  op: Signer,
  overrides: Partial<{
    modelId: string
    shards: number[]
    price: bigint
    multiaddrs: string[]
  }> = {}
) {
  const key = await generateKeyPair('Ed25519')
  const binding = await signPeerBinding(key, {
    chainId: env.deployment.chainId,
    registry: env.deployment.contracts.registry,
    operator: await op.getAddress()
  })
  return {
    modelId: overrides.modelId ?? MODEL_ID,
    shards: overrides.shards ?? [0, 1],
    price: overrides.price ?? 10n,
    peerId: ethers.hexlify(binding.peerId),
    multiaddrs: overrides.multiaddrs ?? ['/ip4/127.0.0.1/tcp/4001'],
    peerSignature: ethers.hexlify(binding.signature)
  }
}

/** Approves the registry and registers `op` with `stake`. */
export async function registerNode(
  env: Env,
  op: Signer,
  stake = MIN_STAKE,
  overrides: Parameters<typeof registration>[2] = {}
) {
  const reg = await registration(env, op, overrides)
  await by(env.contracts.token, op).approve(env.deployment.contracts.registry, stake)
  await by(env.contracts.registry, op).register(reg, stake)
  return reg
}

/**
 * Approves the escrow, deposits `amount` for `payer` and allocates all of it to its lane to
 * `payee` (default op1); `payee: null` leaves it unallocated.
 */
export async function depositFor(
  env: Env,
  payer: Signer,
  amount: bigint,
  payee: string | null = env.op1.address
) {
  await by(env.contracts.token, payer).approve(env.deployment.contracts.escrow, amount)
  await by(env.contracts.escrow, payer).deposit(amount)
  if (payee != null) await by(env.contracts.escrow, payer).allocate([payee], [amount])
}

/** A voucher signed by `payer`: `v` + 65-byte `sig` (the wire form) and `rv`, the escrow's claim form. */
export async function voucher(env: Env, payer: Signer, payee: string, cumulativeAmount: bigint) {
  const v: Voucher = { payer: await payer.getAddress(), payee, cumulativeAmount }
  const sig = await signVoucher(payer, env.domain, v)
  return { v, sig, rv: toRedeemable({ ...v, signature: sig }) }
}

/** A voucher as a node holds it: the voucher and its signature in one object. */
export async function heldVoucher(
  env: Env,
  payer: Signer,
  payee: string,
  cumulativeAmount: bigint
) {
  const { v, sig } = await voucher(env, payer, payee, cumulativeAmount)
  return { ...v, signature: sig }
}

/**
 * The claim tests' starting point: alice and bob have each deposited 10 POV for op1 and signed it a
 * voucher (2 and 3 POV), which op1 holds.
 */
export async function op1HoldingTwoVouchers(env: Env) {
  const op = env.op1
  const opAddr = await op.getAddress()
  await depositFor(env, env.alice, POV(10))
  await depositFor(env, env.bob, POV(10))
  const held = [
    await heldVoucher(env, env.alice, opAddr, POV(2)),
    await heldVoucher(env, env.bob, opAddr, POV(3))
  ]
  return { op, opAddr, held }
}

/** ERC-2612 permit signature for `owner` → `spender`. */
export async function permit(env: Env, owner: Signer, spender: string, value: bigint) {
  const { token } = env.contracts
  const deadline = BigInt(await networkHelpers.time.latest()) + 3600n
  const nonce = await token.nonces(await owner.getAddress())
  const sig = await owner.signTypedData(
    {
      name: 'POV',
      version: '1',
      chainId: BigInt(env.deployment.chainId),
      verifyingContract: env.deployment.contracts.token
    },
    {
      Permit: [
        { name: 'owner', type: 'address' },
        { name: 'spender', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' }
      ]
    },
    { owner: await owner.getAddress(), spender, value, nonce, deadline }
  )
  const { v, r, s } = ethers.Signature.from(sig)
  return { deadline, v, r, s }
}
