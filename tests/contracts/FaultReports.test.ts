import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { expect } from 'chai'
import {
  by,
  ethers,
  load,
  networkHelpers,
  POV,
  registerNode,
  UNBONDING_PERIOD,
  type Env
} from './fixture.js'
import { defaultDecisionPeriod, deployFaultReports } from '../../deploy/fault-reports.js'
import { deployAll, governancePathSeconds, PRESETS } from '../../deploy/deploy.js'
import { slashAction } from '../../chain/gov-actions.js'
import { connectContracts } from '../../chain/contracts.js'
import type { FaultReportsContract, PovContracts } from '../../chain/contracts.js'
import {
  faultReportsOf,
  upholdFaultActions,
  upholdFaultProposal,
  rejectFaultActions,
  wireFaultReportsActions
} from '../../chain/faults.js'

const { time } = networkHelpers
const BOND = POV(100)
const PERIOD = 3 * 24 * 3600
const SHARE_BPS = 2000n
const EVIDENCE = ethers.id('evidence file bytes')

/** The fixture plus FaultReports, wired into the registry as governance would (through the timelock). */
async function setup(): Promise<Env & { fr: FaultReportsContract; all: PovContracts }> {
  const env = await load()
  const deployment = await deployFaultReports(env.deployer, env.deployment, {
    reportBond: BOND,
    decisionPeriod: PERIOD,
    reporterShareBps: Number(SHARE_BPS)
  })
  const contracts = connectContracts(deployment.contracts, env.deployer)
  for (const a of wireFaultReportsActions(contracts, deployment.faultReports!))
    await env.timelock.sendTransaction({ to: a.target, data: a.data })
  return { ...env, fr: faultReportsOf(deployment, env.deployer), all: contracts }
}

async function report(env: Env & { fr: FaultReportsContract }, evidence = EVIDENCE) {
  await by(env.contracts.token, env.alice).approve(env.fr, BOND)
  return by(env.fr, env.alice).reportFault(env.op1.address, evidence, 'file://fault.json')
}

describe('FaultReports', () => {
  it('a bonded report freezes the accused operator’s withdrawal until the deadline', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    const t0 = await time.latest()
    await expect(report(env))
      .to.emit(env.fr, 'FaultReported')
      .withArgs(
        0,
        env.op1.address,
        env.alice.address,
        EVIDENCE,
        'file://fault.json',
        BOND,
        t0 + 2 + PERIOD // the approve is mined first, the report in the block after
      )
      .and.to.emit(registry, 'WithdrawalFrozen')
    expect(await token.balanceOf(env.fr)).to.equal(BOND)
    expect(await env.fr.pendingReports(env.op1.address)).to.equal(1n)
    // unbonding does not escape: the withdrawal stays frozen past the unbonding period
    await by(registry, env.op1).unbond()
    await time.increase(UNBONDING_PERIOD + 1)
    await expect(by(registry, env.op1).withdraw()).to.be.revertedWithCustomError(
      registry,
      'RegistryWithdrawalFrozen'
    )
    const r = await env.fr.reportOf(0)
    expect([r.reporter, r.operator, r.evidenceHash, r.status]).to.deep.equal([
      env.alice.address,
      env.op1.address,
      EVIDENCE,
      1n
    ])
  })

  it('upheld: the slash is split — reporter gets bond + share, treasury the rest — and the freeze lifts', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    await registerNode(env, env.op2, POV(2000))
    await report(env)
    // an earlier slash that no report claims waits in FaultReports: the uphold proposal sweeps it
    // to the treasury first, so the reporter's share is of this report's slash only
    const earlier = POV(700)
    await by(registry, env.timelock).slash(env.op2.address, earlier, 'unrelated')
    const treasury = env.deployment.params.treasury
    const [aliceBefore, treasuryBefore] = [
      await token.balanceOf(env.alice),
      await token.balanceOf(treasury)
    ]
    const slash = POV(1000)
    const reward = (slash * SHARE_BPS) / 10_000n
    const built = await upholdFaultProposal(env.all, env.fr, 0, slash)
    assert.match(built.description, /^Uphold fault report #0: slash 1000\.0 POV of /)
    const actions = upholdFaultActions(
      env.all,
      env.fr,
      { id: 0, operator: env.op1.address, evidenceHash: EVIDENCE },
      slash
    )
    expect(actions.length).to.equal(3)
    await expect(env.timelock.sendTransaction({ to: actions[0].target, data: actions[0].data }))
      .to.emit(env.fr, 'Swept')
      .withArgs(treasury, earlier)
    await expect(env.timelock.sendTransaction({ to: actions[1].target, data: actions[1].data }))
      .to.emit(registry, 'Slashed')
      .withArgs(
        env.op1.address,
        slash,
        POV(4000),
        await env.fr.getAddress(),
        `fault report #0 (evidence ${EVIDENCE})`
      )
    await expect(by(env.fr, env.timelock).upholdFault(0))
      .to.emit(env.fr, 'FaultUpheld')
      .withArgs(0, env.op1.address, env.alice.address, slash, reward)
    expect(await token.balanceOf(env.alice)).to.equal(aliceBefore + BOND + reward)
    expect(await token.balanceOf(treasury)).to.equal(treasuryBefore + earlier + slash - reward)
    expect(await token.balanceOf(env.fr)).to.equal(0n)
    const r = await env.fr.reportOf(0)
    expect([r.status, r.slashed, r.reward]).to.deep.equal([2n, slash, reward])
    expect(await env.fr.pendingReports(env.op1.address)).to.equal(0n)
    await by(registry, env.op1).unbond()
    await time.increase(UNBONDING_PERIOD + 1)
    await expect(by(registry, env.op1).withdraw())
      .to.emit(registry, 'StakeWithdrawn')
      .withArgs(env.op1.address, POV(4000))
  })

  it('rejected: the reporter loses its bond to the treasury', async () => {
    const env = await setup()
    const { token } = env.contracts
    await registerNode(env, env.op1)
    await report(env)
    const treasury = env.deployment.params.treasury
    const before = await token.balanceOf(treasury)
    const [a] = rejectFaultActions(env.fr, 0)
    await expect(env.timelock.sendTransaction({ to: a.target, data: a.data }))
      .to.emit(env.fr, 'FaultRejected')
      .withArgs(0, env.op1.address, env.alice.address, BOND)
    expect(await token.balanceOf(treasury)).to.equal(before + BOND)
    await expect(by(env.fr, env.timelock).upholdFault(0))
      .to.be.revertedWithCustomError(env.fr, 'FaultsNotPending')
      .withArgs(0, 3)
    // the proposal builders (pov gov propose uphold-fault) refuse a decided or unknown report
    await assert.rejects(
      upholdFaultProposal(env.all, env.fr, 0, POV(1)),
      /is Rejected, not pending/
    )
    await assert.rejects(upholdFaultProposal(env.all, env.fr, 5, POV(1)), /no fault report #5/)
  })

  it('undecided by the deadline: anyone expires it and the bond goes back', async () => {
    const env = await setup()
    const { token } = env.contracts
    await registerNode(env, env.op1)
    await report(env)
    const deadline = (await env.fr.reportOf(0)).deadline
    await expect(by(env.fr, env.bob).expireFault(0)).to.be.revertedWithCustomError(
      env.fr,
      'FaultsDeadlineNotReached'
    )
    await time.increaseTo(deadline)
    const before = await token.balanceOf(env.alice)
    await expect(by(env.fr, env.bob).expireFault(0))
      .to.emit(env.fr, 'FaultExpired')
      .withArgs(0, env.op1.address, env.alice.address)
    expect(await token.balanceOf(env.alice)).to.equal(before + BOND)
  })

  it('reverts: zero or reused evidence, self-report, unregistered operator, no bond; governance only', async () => {
    const env = await setup()
    await registerNode(env, env.op1)
    await by(env.contracts.token, env.alice).approve(env.fr, BOND * 3n)
    await expect(
      by(env.fr, env.alice).reportFault(env.op1.address, ethers.ZeroHash, '')
    ).to.be.revertedWithCustomError(env.fr, 'FaultsZeroEvidence')
    await report(env)
    await expect(report(env))
      .to.be.revertedWithCustomError(env.fr, 'FaultsDuplicateEvidence')
      .withArgs(EVIDENCE, 0)
    await expect(by(env.fr, env.op1).reportFault(env.op1.address, ethers.id('x'), ''))
      .to.be.revertedWithCustomError(env.fr, 'FaultsSelfReport')
      .withArgs(env.op1.address)
    await expect(
      by(env.fr, env.alice).reportFault(env.op2.address, ethers.id('y'), '')
    ).to.be.revertedWithCustomError(env.contracts.registry, 'RegistryNotRegistered')
    await expect(by(env.fr, env.bob).reportFault(env.op1.address, ethers.id('z'), '')).to.be.revert(
      ethers
    )
    for (const call of [
      () => by(env.fr, env.alice).upholdFault(0),
      () => by(env.fr, env.alice).rejectFault(0),
      () => by(env.fr, env.alice).setReportBond(1n),
      () => by(env.fr, env.alice).setReporterShare(1),
      () => by(env.fr, env.alice).setDecisionPeriod(7200),
      () => by(env.fr, env.alice).setTreasury(env.alice.address)
    ])
      await expect(call()).to.be.revertedWithCustomError(env.fr, 'OwnableUnauthorizedAccount')
    await expect(by(env.fr, env.timelock).upholdFault(7))
      .to.be.revertedWithCustomError(env.fr, 'FaultsUnknownReport')
      .withArgs(7)
  })

  it('parameters: bounded setters with events', async () => {
    const env = await setup()
    const fr = by(env.fr, env.timelock)
    await expect(fr.setReportBond(POV(5)))
      .to.emit(fr, 'ReportBondSet')
      .withArgs(BOND, POV(5))
    await expect(fr.setReporterShare(5000))
      .to.emit(fr, 'ReporterShareSet')
      .withArgs(SHARE_BPS, 5000)
    await expect(fr.setReporterShare(5001))
      .to.be.revertedWithCustomError(fr, 'FaultsShareTooHigh')
      .withArgs(5001, 5000)
    await expect(fr.setDecisionPeriod(60)).to.be.revertedWithCustomError(
      fr,
      'FaultsPeriodOutOfRange'
    )
    await expect(fr.setDecisionPeriod(31 * 24 * 3600)).to.be.revertedWithCustomError(
      fr,
      'FaultsPeriodOutOfRange'
    )
    await expect(fr.setDecisionPeriod(7200)).to.emit(fr, 'DecisionPeriodSet').withArgs(PERIOD, 7200)
    await expect(fr.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
      fr,
      'FaultsInvalidTreasury'
    )
    await expect(fr.setTreasury(env.bob.address)).to.emit(fr, 'TreasurySet')
  })

  it('a slash made outside any report is swept on to the treasury, not paid to a reporter', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(2000))
    await by(registry, env.timelock).slash(env.op1.address, POV(500), 'direct')
    const treasury = env.deployment.params.treasury
    const before = await token.balanceOf(treasury)
    await expect(by(env.fr, env.bob).sweep()).to.emit(env.fr, 'Swept').withArgs(treasury, POV(500))
    expect(await token.balanceOf(treasury)).to.equal(before + POV(500))
  })

  it('deployAll deploys it wired: freezer and treasury of the registry, both owned by the timelock; a slash proposal sweeps', async () => {
    const env = await load()
    const { registry, token, timelock } = env.contracts
    const address = env.deployment.faultReports
    assert.ok(address != null, 'deployAll left FaultReports out')
    const fr = faultReportsOf(env.deployment, env.deployer)
    expect(await registry.freezer()).to.equal(address)
    expect(await registry.treasury()).to.equal(address)
    expect(await registry.owner()).to.equal(await timelock.getAddress())
    expect(await fr.owner()).to.equal(await timelock.getAddress())
    expect(await fr.treasury()).to.equal(env.deployment.params.treasury)
    // twice the governance path, at least the contract's 1 hour
    const path = governancePathSeconds({ ...env.deployment.params, blockTime: 1 }) // local preset
    expect(await fr.decisionPeriod()).to.equal(BigInt(defaultDecisionPeriod(path)))
    expect(defaultDecisionPeriod(governancePathSeconds(PRESETS.public))).to.equal(
      2 * governancePathSeconds(PRESETS.public)
    )
    // `pov gov propose slash` ends with a sweep: the stake reaches the treasury in the same proposal
    await registerNode(env, env.op1, POV(2000))
    const built = slashAction(env.contracts, {
      operator: env.op1.address,
      amount: '400',
      reason: 'wrong outputs',
      faultReports: address
    })
    expect(built.actions.length).to.equal(2)
    const treasury = env.deployment.params.treasury
    const before = await token.balanceOf(treasury)
    for (const a of built.actions)
      await env.timelock.sendTransaction({ to: a.target, data: a.data })
    expect(await token.balanceOf(treasury)).to.equal(before + POV(400))
    expect(await token.balanceOf(address)).to.equal(0n)
  })

  it('deployAll without it (faultReports: false) keeps the old wiring; a decision period inside the governance path is refused', async () => {
    const [deployer] = await ethers.getSigners()
    const plain = await deployAll(deployer, { preset: 'local', faultReports: false })
    expect(plain.deployment.faultReports).to.equal(undefined)
    expect(await plain.contracts.registry.treasury()).to.equal(deployer.address)
    expect(await plain.contracts.registry.freezer()).to.equal(ethers.ZeroAddress)
    expect(await plain.contracts.registry.owner()).to.equal(plain.deployment.contracts.timelock)
    const path = governancePathSeconds(PRESETS.local)
    await assert.rejects(
      deployAll(deployer, { preset: 'local', faultReports: { decisionPeriod: path } }),
      /decision period .* does not outlast the governance path/
    )
  })
})
