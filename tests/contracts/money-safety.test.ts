// Issue 12 (money safety), the chain findings: each test reproduces one attack of the review
// against the real contracts (and, where the node decided, the real PaymentVerifier) and checks
// that it no longer works. Numbers refer to the findings.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import type { Signer } from 'ethers'
import {
  by,
  conn,
  depositFor,
  ethers,
  load,
  MIN_STAKE,
  MODEL_ID,
  networkHelpers,
  POV,
  registerNode,
  registration,
  UNLOCK_PERIOD,
  voucher,
  type Env
} from './fixture.js'
import { ContractFactory } from 'ethers'
import { loadArtifact } from '../../chain/artifacts.js'
import { deployAll, PRESETS, governancePathSeconds, parseDeployArgs } from '../../deploy/deploy.js'
import { devChainClock, governanceRound } from '../../chain/governance.js'
import { VoucherStore } from '../../node/payments/voucher-store.js'
import { PaymentVerifier, escrowView } from '../../node/payments/verifier.js'
import { selectPaidNodes, PaymentSetupError } from '../../router/paid.js'
import { signVoucher } from '../../protocol/voucher.js'

const { time } = networkHelpers

/** A node's real verifier (journal in a temp dir) reading the real escrow. */
async function nodeVerifier(env: Env, operator: Signer, price = POV(1)) {
  const dir = await mkdtemp(join(tmpdir(), 'pov-verifier-'))
  const store = await VoucherStore.open(dir)
  const verifier = new PaymentVerifier(
    { payee: await operator.getAddress(), pricePerUnit: price, domain: env.domain },
    store,
    escrowView(env.contracts.escrow)
  )
  return {
    verifier,
    store,
    close: async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

async function signed(env: Env, payer: Signer, payee: string, amount: bigint) {
  const v = { payer: await payer.getAddress(), payee, cumulativeAmount: amount }
  return { ...v, signature: await signVoucher(payer, env.domain, v) }
}

describe('issue 12: money safety (chain)', () => {
  it('1. self-payment cannot take back what a node accepted: the node is paid all of it', async () => {
    const env = await load()
    const { escrow } = env.contracts
    await depositFor(env, env.alice, POV(60)) // alice's lane to op1
    await depositFor(env, env.alice, POV(40), null) // unallocated
    const node = await nodeVerifier(env, env.op1)
    try {
      // the node accepts 60 POV of work, covered by its lane
      for (let i = 1; i <= 6; i++)
        await node.verifier.verify(await signed(env, env.alice, env.op1.address, POV(10 * i)), 10)
      // the attack: a voucher to itself for everything, then withdraw at once
      const self = await voucher(env, env.alice, env.alice.address, POV(99))
      await expect(by(escrow, env.alice).redeem(self.rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit')
        .withArgs(env.alice.address, POV(99), 0)
      await by(escrow, env.alice).unlock()
      await expect(by(escrow, env.alice).withdraw([env.op1.address])).to.be.revertedWithCustomError(
        escrow,
        'EscrowUnlockPending'
      )
      // the node sees the unlock and takes no new work; it redeems within the unlock period
      node.verifier.invalidate()
      await assert.rejects(
        node.verifier.verify(await signed(env, env.alice, env.op1.address, POV(70)), 10),
        /withdrawing/
      )
      const held = node.store.get(env.alice.address)!
      expect(held.cumulativeAmount).to.equal(POV(60))
      await by(escrow, env.op1).redeem((await voucher(env, env.alice, env.op1.address, POV(60))).rv)
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(60))
      await time.increase(UNLOCK_PERIOD)
      await expect(by(escrow, env.alice).withdraw([env.op1.address]))
        .to.emit(escrow, 'Withdrawn')
        .withArgs(env.alice.address, POV(40))
    } finally {
      await node.close()
    }
  })

  it('2. a double spend across nodes: each node accepts only what its own lane covers, and is paid all it accepted', async () => {
    const env = await load()
    const { escrow } = env.contracts
    await depositFor(env, env.alice, POV(50), env.op1.address)
    await depositFor(env, env.alice, POV(50), env.op2.address)
    const n1 = await nodeVerifier(env, env.op1)
    const n2 = await nodeVerifier(env, env.op2)
    try {
      // the client sends each node a 100 POV voucher against its 100 POV deposit
      for (const [n, op] of [
        [n1, env.op1],
        [n2, env.op2]
      ] as const) {
        await n.verifier.verify(await signed(env, env.alice, op.address, POV(50)), 50)
        await assert.rejects(
          n.verifier.verify(await signed(env, env.alice, op.address, POV(100)), 50),
          /insufficient escrow/
        )
      }
      await by(escrow, env.op1).redeem((await voucher(env, env.alice, env.op1.address, POV(50))).rv)
      await by(escrow, env.op2).redeem((await voucher(env, env.alice, env.op2.address, POV(50))).rv)
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(50))
      expect(await escrow.paid(env.alice.address, env.op2.address)).to.equal(POV(50))
    } finally {
      await n1.close()
      await n2.close()
    }
  })

  it('3. one empty payer does not revert a batch: its voucher is skipped (VoucherSkipped), the others are paid', async () => {
    const env = await load()
    const { escrow } = env.contracts
    await depositFor(env, env.alice, POV(10))
    await depositFor(env, env.bob, POV(10))
    const a = await voucher(env, env.alice, env.op1.address, POV(10))
    const b = await voucher(env, env.bob, env.op1.address, POV(10))
    // bob empties his lane by paying it out first (a second redeem of the same voucher is stale)
    await by(escrow, env.op1).redeem(b.rv)
    const b2 = await voucher(env, env.bob, env.op1.address, POV(20))
    const tx = by(escrow, env.op1).redeemBatch([b2.rv, a.rv])
    await expect(tx)
      .to.emit(escrow, 'VoucherSkipped')
      .withArgs(env.bob.address, env.op1.address, POV(20), 3)
    await expect(tx)
      .to.emit(escrow, 'VoucherRedeemed')
      .withArgs(env.alice.address, env.op1.address, POV(10), POV(10), POV(10) / 100n, 0)
  })

  it('4. a slash cannot be escaped: unbonding outlasts governance, withdrawal can be frozen, a slash of a leaver does not revert the proposal', async () => {
    const env = await load()
    const { registry, escrow } = env.contracts
    // the deployment refuses an unbonding period shorter than the governance path …
    const [deployer] = await ethers.getSigners()
    await assert.rejects(
      deployAll(deployer, { preset: 'public', unbondingPeriod: 7 * 86_400 }),
      /does not outlast the governance path/
    )
    // … and the registry refuses to be set below it
    const min = await registry.minUnbondingPeriod()
    // the fixture's governance path is (1 + 5 blocks) × 1 s + 60 s: the one-hour floor applies
    expect(governancePathSeconds({ ...PRESETS.local, votingPeriod: 5 })).to.equal(66)
    expect(min).to.equal(3600n)
    await expect(by(registry, env.timelock).setUnbondingPeriod(min - 1n))
      .to.be.revertedWithCustomError(registry, 'SettingOutOfRange')
      .withArgs('unbondingPeriod', min - 1n, min, 365n * 86_400n)

    // a freezer (the fault-report contract: an EOA is refused) holds an accused operator's withdrawal
    await registerNode(env, env.op1)
    await expect(
      by(registry, env.timelock).setFreezer(env.bob.address)
    ).to.be.revertedWithCustomError(registry, 'RegistryInvalidFreezer')
    const freezerAddress = env.deployment.faultReports!
    expect(await registry.freezer()).to.equal(freezerAddress)
    await networkHelpers.impersonateAccount(freezerAddress)
    await networkHelpers.setBalance(freezerAddress, POV(1))
    const freezer = await ethers.getSigner(freezerAddress)
    await by(registry, env.op1).unbond()
    const until = BigInt(await time.latest()) + 30n * 86_400n
    await expect(by(registry, env.attacker).freezeWithdrawal(env.op1.address, until))
      .to.be.revertedWithCustomError(registry, 'RegistryNotFreezer')
      .withArgs(env.attacker.address)
    await expect(by(registry, freezer).freezeWithdrawal(env.op1.address, until))
      .to.emit(registry, 'WithdrawalFrozen')
      .withArgs(env.op1.address, until)
    await time.increase(Number(await registry.unbondingPeriod()))
    await expect(by(registry, env.op1).withdraw()).to.be.revertedWithCustomError(
      registry,
      'RegistryWithdrawalFrozen'
    )
    await by(registry, freezer).freezeWithdrawal(env.op1.address, 0n) // lifted
    await by(registry, env.op1).withdraw()

    // the operator left before the slash executes: the slash is skipped, the fee change lands
    const round = await governanceRound({
      contracts: env.contracts,
      proposer: env.deployer,
      voters: [env.deployer],
      actions: [
        {
          target: env.deployment.contracts.registry,
          data: registry.interface.encodeFunctionData('slash', [
            env.op1.address,
            MIN_STAKE,
            'fault'
          ])
        },
        {
          target: env.deployment.contracts.escrow,
          data: escrow.interface.encodeFunctionData('setFeeBps', [300])
        }
      ],
      description: 'slash op1 (already gone), fee 3 %',
      clock: devChainClock(conn.provider as never)
    })
    expect(round.state).to.equal('Executed')
    expect(await escrow.feeBps()).to.equal(300)
    const skipped = await registry.queryFilter(registry.filters.SlashSkipped(env.op1.address))
    expect(skipped.length).to.equal(1)
  })

  it('5. governance: every parameter a deploy option, public defaults; the public preset refuses one address holding a quorum unless told to', async () => {
    const [deployer, a, b, c] = await ethers.getSigners()
    // the default deployment (no --distribute: the deployer keeps the supply) is refused …
    await assert.rejects(
      deployAll(deployer, { preset: 'public' }),
      (e: Error) => e.name === 'QuorumHolderError' && /alone can pass any proposal/.test(e.message)
    )
    // … unless explicitly allowed (a test network); the local preset only warns
    const single = await deployAll(deployer, { preset: 'public', allowQuorumHolder: true })
    expect(single.deployment.params.votingDelay).to.equal(PRESETS.public.votingDelay)
    expect(single.deployment.params.quorumPercent).to.equal(10)
    expect(BigInt(single.deployment.params.proposalThreshold)).to.be.greaterThan(0n)
    expect(single.warnings.join('\n')).to.match(/WARNING: .* alone can pass any proposal/)
    const local = await deployAll(deployer, { preset: 'local' })
    expect(local.warnings.length).to.equal(1)
    const third = POV(330_000_000)
    const spreadOpts = {
      preset: 'public' as const,
      distribution: [
        { to: a.address, amount: POV(90_000_000) },
        { to: b.address, amount: POV(90_000_000) },
        { to: c.address, amount: POV(90_000_000) }
      ],
      treasury: deployer.address,
      initialSupply: third
    }
    // 90 of 330 M is 27 % each: every holder is above a 10 % quorum — refused, then allowed and warned
    await assert.rejects(deployAll(deployer, spreadOpts), /QuorumHolder|refused/)
    const spread = await deployAll(deployer, { ...spreadOpts, allowQuorumHolder: true })
    expect(await spread.contracts.token.balanceOf(a.address)).to.equal(POV(90_000_000))
    expect(await spread.contracts.token.balanceOf(deployer.address)).to.be.greaterThan(0n)
    expect(spread.warnings.length).to.equal(4)
    // a supply spread below the quorum deploys under the public preset without the flag
    const fair = await deployAll(deployer, {
      preset: 'public',
      initialSupply: POV(300),
      distribution: [a, b, c].map((s) => ({ to: s.address, amount: POV(95) })),
      treasury: deployer.address,
      quorumPercent: 50
    })
    expect(fair.warnings).to.deep.equal([])
    const args = parseDeployArgs([
      '--rpc',
      'http://127.0.0.1:1',
      '--voting-delay',
      '7',
      '--voting-period',
      '70',
      '--timelock-delay',
      '700',
      '--unbonding-period',
      '1000000',
      '--unlock-period',
      '7200',
      '--quorum',
      '20',
      '--proposal-threshold',
      '5',
      '--distribute',
      `${a.address}=12`,
      '--distribute',
      `${b.address}=13`,
      '--allow-quorum-holder'
    ])
    expect(args.opts).to.include({
      preset: 'public',
      votingDelay: 7,
      votingPeriod: 70,
      timelockDelay: 700,
      unbondingPeriod: 1_000_000,
      unlockPeriod: 7200,
      quorumPercent: 20,
      proposalThreshold: POV(5),
      allowQuorumHolder: true
    })
    expect(parseDeployArgs(['--rpc', 'http://127.0.0.1:1']).opts.allowQuorumHolder).to.equal(false)
    expect(args.opts.distribution).to.deep.equal([
      { to: a.address, amount: POV(12) },
      { to: b.address, amount: POV(13) }
    ])
  })

  it('6. bounded setters: no 0, no overflow freeze (escrow, registry, governor, timelock)', async () => {
    const env = await load()
    const { escrow, registry, governor, timelock } = env.contracts
    const max64 = 2n ** 64n - 1n
    for (const p of [0n, max64])
      await expect(by(escrow, env.timelock).setUnlockPeriod(p))
        .to.be.revertedWithCustomError(escrow, 'SettingOutOfRange')
        .withArgs('unlockPeriod', p, 3600, 90 * 86_400)
    for (const p of [0n, max64])
      await expect(by(registry, env.timelock).setUnbondingPeriod(p))
        .to.be.revertedWithCustomError(registry, 'SettingOutOfRange')
        .withArgs('unbondingPeriod', p, 3600, 365 * 86_400)
    // governor settings (set through a proposal, bounded in the setter the constructor uses too)
    const { abi, bytecode } = loadArtifact('PovGovernor')
    const factory = new ContractFactory(abi, bytecode, env.deployer)
    const t = env.deployment.contracts.token
    const tl = env.deployment.contracts.timelock
    for (const [delay, period, threshold, quorum] of [
      [1n, 0n, 1n, 4n], // voting period 0
      [1n, 2n ** 32n - 1n, 1n, 4n], // a voting period that stalls governance
      [2n ** 48n - 1n, 5n, 1n, 4n], // same for the delay
      [1n, 5n, 0n, 4n], // anyone proposes
      [1n, 5n, 1n, 0n] // no quorum
    ]) {
      await assert.rejects(
        factory.deploy(t, tl, delay, period, threshold, quorum, 12),
        (e: { data?: string }) =>
          governor.interface.parseError(e.data ?? '0x')?.name === 'GovernorSettingOutOfRange'
      )
    }
    await expect(by(timelock, env.timelock).updateDelay(0)).to.be.revertedWithCustomError(
      timelock,
      'TimelockDelayOutOfRange'
    )
    // the longest unlock still unlocks
    await by(escrow, env.timelock).setUnlockPeriod(await escrow.MAX_UNLOCK_PERIOD())
    await depositFor(env, env.alice, POV(1))
    await by(escrow, env.alice).unlock()
  })

  it('7. counters: fees cannot pass 2^128 with deposits; earnings counters rebase instead of blocking a payee', async () => {
    const env = await load()
    const { escrow, token } = env.contracts
    await by(token, env.timelock).setMintingEnabled(true)
    await by(token, env.timelock).mint(env.bob.address, 2n ** 129n)
    await by(token, env.bob).approve(escrow, ethers.MaxUint256)
    await by(escrow, env.timelock).setFeeBps(0)
    // earnings: credit up to the 120-bit cap, withdraw, be credited again
    const cap = 2n ** 120n - 1n
    await by(escrow, env.bob).deposit(cap + 100n)
    await by(escrow, env.bob).allocate([env.op1.address], [cap + 100n])
    await by(escrow, env.op1).redeem((await voucher(env, env.bob, env.op1.address, cap)).rv)
    await by(escrow, env.op1).withdrawEarnings()
    await expect(
      by(escrow, env.op1).redeem((await voucher(env, env.bob, env.op1.address, cap + 5n)).rv)
    )
      .to.emit(escrow, 'EarningsRebased')
      .withArgs(env.op1.address, cap)
    expect(await escrow.pendingEarnings(env.op1.address)).to.equal(5n)
    await expect(by(escrow, env.op1).withdrawEarnings()).to.changeTokenBalance(
      ethers,
      token,
      env.op1,
      5n
    )
    // fees: with fees accrued, deposits may not bring deposits + fees past 2^128
    await by(escrow, env.timelock).setFeeBps(2000)
    await by(escrow, env.op1).redeem((await voucher(env, env.bob, env.op1.address, cap + 100n)).rv)
    const fees = await escrow.accruedFees()
    expect(fees).to.be.greaterThan(0n)
    const room = 2n ** 128n - 1n - (await escrow.totalDeposits()) - fees
    await expect(by(escrow, env.bob).deposit(room + 1n))
      .to.be.revertedWithCustomError(escrow, 'EscrowAmountTooLarge')
      .withArgs(room + 1n)
    await by(escrow, env.bob).deposit(room)
  })

  it('8. a PeerId cannot be squatted: junk bindings do not block the owner, and routers skip them', async () => {
    const env = await load()
    const { registry } = env.contracts
    const victim = await registration(env, env.op1)
    // the squatter registers the victim's public PeerId with 64 junk bytes as its signature
    await by(env.contracts.token, env.attacker).approve(registry, MIN_STAKE * 90n)
    await by(registry, env.attacker).register(
      { ...victim, peerSignature: ethers.hexlify(new Uint8Array(64).fill(7)) },
      MIN_STAKE * 90n
    )
    await by(env.contracts.token, env.op1).approve(registry, MIN_STAKE)
    await expect(by(registry, env.op1).register(victim, MIN_STAKE)).to.emit(
      registry,
      'NodeRegistered'
    )
    const nodes = await selectPaidNodes(paidOpts(env, { replicas: 1, shardCount: 1 }))
    expect([...nodes.values()].map((n) => n.operator)).to.deep.equal([env.op1.address])
  })

  it('9. the router draws again from the seed when a selected node is unusable; the error says why when none is left', async () => {
    const env = await load()
    const { registry, token } = env.contracts
    // two honest nodes (10k stake) and three junk-binding nodes (90k) on shards 0 and 1
    await registerNode(env, env.op1, POV(5000))
    await registerNode(env, env.op2, POV(5000))
    const signers = await ethers.getSigners()
    for (const s of signers.slice(7, 10)) {
      await token.transfer(s.address, POV(30_000))
      const reg = await registration(env, s, { shards: [0, 1, 2] })
      await by(token, s).approve(registry, POV(30_000))
      await by(registry, s).register(
        { ...reg, peerSignature: ethers.hexlify(new Uint8Array(64).fill(1)) },
        POV(30_000)
      )
    }
    const honest = new Set([env.op1.address, env.op2.address])
    for (let i = 0; i < 12; i++) {
      const seed = ethers.id(`seed ${i}`)
      const nodes = await selectPaidNodes(paidOpts(env, { seed, replicas: 2, shardCount: 2 }))
      const ops = [...nodes.values()].map((n) => n.operator)
      expect(new Set(ops)).to.deep.equal(honest)
      // deterministic: the same seed gives the same order
      const again = await selectPaidNodes(paidOpts(env, { seed, replicas: 2, shardCount: 2 }))
      expect([...again.values()].map((n) => n.operator)).to.deep.equal(ops)
    }
    // none usable left: shard 2 has only junk; the message says so (no "max price undefined")
    await assert.rejects(selectPaidNodes(paidOpts(env, { replicas: 2, shardCount: 8 })), (e) => {
      assert.ok(e instanceof PaymentSetupError)
      assert.match(
        e.message,
        /no node with a valid PeerId binding serves shard 2 .*: 3 active, all with bindings that do not verify/
      )
      return true
    })
    await assert.rejects(
      selectPaidNodes(paidOpts(env, { replicas: 2, shardCount: 1, maxPrice: 1n })),
      /under the max price of 0.000000000000000001 POV per unit \(5 active above it\)/
    )
  })
})

function paidOpts(
  env: Env,
  o: { replicas: number; shardCount: number; seed?: string; maxPrice?: bigint }
): Parameters<typeof selectPaidNodes>[0] {
  return {
    contracts: env.contracts,
    chainId: env.deployment.chainId,
    registryAddress: env.deployment.contracts.registry,
    signer: env.alice,
    modelId: MODEL_ID,
    hidden: 8,
    shardCount: o.shardCount,
    replicas: o.replicas,
    seed: o.seed ?? ethers.id('a seed'),
    maxPrice: o.maxPrice
  }
}
