import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { expect } from 'chai'
import type { Signer } from 'ethers'
import {
  by,
  expectTreasurySetter,
  ethers,
  load,
  networkHelpers,
  POV,
  registerNode,
  UNBONDING_PERIOD,
  type Env
} from './fixture.js'
import {
  defaultDecisionPeriod,
  deployFaultReports,
  MAX_DECISION_PERIOD,
  MIN_DECISION_PERIOD
} from '../../deploy/fault-reports.js'
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
// the fixture's governance path: (1 + 5 blocks) × 1 s + 60 s; the freeze adds it and half again
const PATH = 66
const WINDOW = PERIOD + PATH + PATH / 2

/** The fixture plus FaultReports, wired into the registry as governance would (through the timelock). */
async function setup(): Promise<FrEnv> {
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

type FrEnv = Env & { fr: FaultReportsContract; all: PovContracts }

/** Commits (one block), approves the bond (the next), and returns the reveal's promise. */
async function report(
  env: FrEnv,
  o: {
    by?: Signer
    operator?: string
    evidence?: string
    refund?: bigint
    salt?: string
  } = {}
) {
  const reporter = o.by ?? env.alice
  const operator = o.operator ?? env.op1.address
  const evidence = o.evidence ?? EVIDENCE
  const refund = o.refund ?? 0n
  const salt = o.salt ?? ethers.id('salt')
  await commit(env, reporter, operator, evidence, refund, salt)
  await by(env.contracts.token, reporter).approve(env.fr, await env.fr.bondFor(operator))
  return by(env.fr, reporter).reportFault(operator, evidence, refund, salt, 'file://fault.json')
}

async function commit(
  env: FrEnv,
  reporter: Signer,
  operator: string,
  evidence: string,
  refund: bigint,
  salt: string
) {
  const c = await env.fr.commitmentOf(await reporter.getAddress(), operator, evidence, refund, salt)
  await by(env.fr, reporter).commitReport(c)
  return c
}

describe('FaultReports', () => {
  it('a committed report freezes the accused operator’s withdrawal for the decision period plus the governance path and half again', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    expect(await env.fr.freezeWindow()).to.equal(BigInt(WINDOW))
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
        t0 + 3 + WINDOW // commit, approve, then the reveal in the block after
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

  it('upheld: the reporter gets its bond, the price of the convicted calls (refund) and a share of the rest; the treasury the remainder', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    await registerNode(env, env.op2, POV(2000))
    const refund = POV(3) // what the client paid for the wrong answers
    await report(env, { refund })
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
    const reward = ((slash - refund) * SHARE_BPS) / 10_000n
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
      .and.to.emit(env.fr, 'FaultRefunded')
      .withArgs(0, env.alice.address, refund)
    expect(await token.balanceOf(env.alice)).to.equal(aliceBefore + BOND + refund + reward)
    expect(await token.balanceOf(treasury)).to.equal(
      treasuryBefore + earlier + slash - refund - reward
    )
    expect(await token.balanceOf(env.fr)).to.equal(0n)
    const r = await env.fr.reportOf(0)
    expect([r.status, r.slashed, r.reward, r.refund]).to.deep.equal([2n, slash, reward, refund])
    expect(await env.fr.pendingReports(env.op1.address)).to.equal(0n)
    // the same evidence cannot be reported again once upheld
    await expect(report(env, { by: env.bob, salt: ethers.id('again') }))
      .to.be.revertedWithCustomError(env.fr, 'FaultsEvidenceUpheld')
      .withArgs(EVIDENCE)
    await by(registry, env.op1).unbond()
    await time.increase(UNBONDING_PERIOD + 1)
    await expect(by(registry, env.op1).withdraw())
      .to.emit(registry, 'StakeWithdrawn')
      .withArgs(env.op1.address, POV(4000))
  })

  it('a refund larger than the slash is capped at what arrived', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    await report(env, { refund: POV(10_000) })
    const before = await token.balanceOf(env.alice)
    await by(registry, env.timelock).slash(env.op1.address, POV(50), 'fault')
    await expect(by(env.fr, env.timelock).upholdFault(0))
      .to.emit(env.fr, 'FaultRefunded')
      .withArgs(0, env.alice.address, POV(50))
    expect(await token.balanceOf(env.alice)).to.equal(before + BOND + POV(50))
  })

  it('rejected: the reporter loses its bond to the accused operator', async () => {
    const env = await setup()
    const { token } = env.contracts
    await registerNode(env, env.op1)
    await report(env)
    const before = await token.balanceOf(env.op1)
    const [a] = rejectFaultActions(env.fr, 0)
    await expect(env.timelock.sendTransaction({ to: a.target, data: a.data }))
      .to.emit(env.fr, 'FaultRejected')
      .withArgs(0, env.op1.address, env.alice.address, BOND)
    expect(await token.balanceOf(env.op1)).to.equal(before + BOND)
    await expect(by(env.fr, env.timelock).upholdFault(0))
      .to.be.revertedWithCustomError(env.fr, 'FaultsAlreadyDecided')
      .withArgs(0, 3)
    // the proposal builders (pov gov propose uphold-fault) refuse a decided or unknown report
    await assert.rejects(upholdFaultProposal(env.all, env.fr, 0, POV(1)), /is Rejected: already/)
    await assert.rejects(upholdFaultProposal(env.all, env.fr, 5, POV(1)), /no fault report #5/)
  })

  it('undecided by the deadline: anyone expires it, and the bond goes to the accused, not back to the reporter', async () => {
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
    const [alice, op] = [await token.balanceOf(env.alice), await token.balanceOf(env.op1)]
    await expect(by(env.fr, env.bob).expireFault(0))
      .to.emit(env.fr, 'FaultExpired')
      .withArgs(0, env.op1.address, env.alice.address, BOND)
    expect(await token.balanceOf(env.alice)).to.equal(alice)
    expect(await token.balanceOf(env.op1)).to.equal(op + BOND)
    // a late rejection only records the verdict: nothing left to move
    await expect(by(env.fr, env.timelock).rejectFault(0))
      .to.emit(env.fr, 'FaultRejected')
      .withArgs(0, env.op1.address, env.alice.address, 0)
  })

  it('griefing costs the attacker a stake-scaled bond per freeze window, paid to the victim: 30 days cost ⌈30 d / window⌉ bonds', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    const stake = POV(50_000)
    await registerNode(env, env.op1, stake)
    const bps = await env.fr.bondBps()
    expect(bps).to.equal(100n)
    const bond = (stake * bps) / 10_000n // 500 POV: above the 100 POV floor
    expect(await env.fr.bondFor(env.op1.address)).to.equal(bond)
    await by(registry, env.op1).unbond()
    // the attacker chains reports, each expiring undecided (governance idle)
    const start = await time.latest()
    const [attacker0, victim0] = [
      await token.balanceOf(env.attacker),
      await token.balanceOf(env.op1)
    ]
    const goal = start + 30 * 86_400
    let reports = 0
    while ((await time.latest()) < goal) {
      await expect(
        report(env, {
          by: env.attacker,
          evidence: ethers.id(`junk ${reports}`),
          salt: ethers.id(`s${reports}`)
        })
      ).to.emit(env.fr, 'FaultReported')
      const r = await env.fr.reportOf(reports)
      expect(r.bond).to.equal(bond)
      await time.increaseTo(r.deadline)
      await by(env.fr, env.bob).expireFault(reports)
      reports++
    }
    const window = Number(await env.fr.freezeWindow())
    expect(reports).to.equal(Math.ceil((30 * 86_400) / window))
    const spent = attacker0 - (await token.balanceOf(env.attacker))
    expect(spent).to.equal(bond * BigInt(reports))
    expect((await token.balanceOf(env.op1)) - victim0).to.equal(spent) // the victim is paid for it
    // the factor: each frozen POV-day costs bondBps / window-days of a POV, never 0
    expect(spent >= (stake * bps * BigInt(reports)) / 10_000n).to.equal(true)
  })

  it('the reporter is bound to its report: a copied evidence hash neither front-runs the reward nor blocks the evidence', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    // alice commits first; bob (the accused's accomplice) sees her reveal in the mempool, commits
    // and reveals a copy of her evidence ahead of it
    const aliceSalt = ethers.id('alice')
    await commit(env, env.alice, env.op1.address, EVIDENCE, 0n, aliceSalt)
    const copy = await report(env, { by: env.bob, salt: ethers.id('bob') })
    await expect(copy).to.emit(env.fr, 'FaultReported')
    expect(await env.fr.firstReportOf(EVIDENCE)).to.equal(1n) // bob's copy, for now
    await by(token, env.alice).approve(env.fr, BOND)
    await by(env.fr, env.alice).reportFault(env.op1.address, EVIDENCE, 0n, aliceSalt, 'file://a')
    expect(await env.fr.firstReportOf(EVIDENCE)).to.equal(2n) // alice's: committed earlier
    // the copy cannot be upheld; rejecting it costs bob his bond and leaves alice's report open
    await by(registry, env.timelock).slash(env.op1.address, POV(1000), 'fault')
    await expect(by(env.fr, env.timelock).upholdFault(0))
      .to.be.revertedWithCustomError(env.fr, 'FaultsNotFirstReport')
      .withArgs(0, 1)
    await by(env.fr, env.timelock).rejectFault(0)
    const before = await token.balanceOf(env.alice)
    await expect(by(env.fr, env.timelock).upholdFault(1)).to.emit(env.fr, 'FaultUpheld')
    expect((await token.balanceOf(env.alice)) - before).to.equal(BOND + POV(200))
    // a reveal needs its own commitment, made in an earlier block
    const salt = ethers.id('late')
    await by(token, env.bob).approve(env.fr, BOND)
    const c = await env.fr.commitmentOf(env.bob.address, env.op1.address, ethers.id('e2'), 0n, salt)
    await expect(by(env.fr, env.bob).reportFault(env.op1.address, ethers.id('e2'), 0n, salt, ''))
      .to.be.revertedWithCustomError(env.fr, 'FaultsNotCommitted')
      .withArgs(c)
    await expect(
      by(env.fr, env.alice).reportFault(env.op1.address, ethers.id('e2'), 0n, salt, '')
    ).to.be.revertedWithCustomError(env.fr, 'FaultsNotCommitted') // bob's salt is not alice's commitment
    await ethers.provider.send('evm_setAutomine', [false])
    try {
      const tx1 = await by(env.fr, env.bob).commitReport(c)
      const tx2 = await by(env.fr, env.bob).reportFault(
        env.op1.address,
        ethers.id('e2'),
        0n,
        salt,
        '',
        {
          gasLimit: 1_000_000
        }
      )
      await networkHelpers.mine()
      await tx1.wait()
      await assert.rejects(tx2.wait()) // same block as the commitment
    } finally {
      await ethers.provider.send('evm_setAutomine', [true])
    }
    await expect(by(env.fr, env.bob).commitReport(c))
      .to.be.revertedWithCustomError(env.fr, 'FaultsAlreadyCommitted')
      .withArgs(c)
  })

  it('a verdict reaching an expired report is still carried out: the queued uphold does not revert and the reporter is made whole from the slash', async () => {
    const env = await setup()
    const { registry, token } = env.contracts
    await registerNode(env, env.op1, POV(5000))
    await report(env, { refund: POV(2) })
    await time.increaseTo((await env.fr.reportOf(0)).deadline)
    await by(env.fr, env.op1).expireFault(0) // the accused expires it first
    const before = await token.balanceOf(env.alice)
    const slash = POV(1000)
    for (const a of upholdFaultActions(
      env.all,
      env.fr,
      { id: 0, operator: env.op1.address, evidenceHash: EVIDENCE },
      slash
    ))
      await env.timelock.sendTransaction({ to: a.target, data: a.data })
    const reward = ((slash - BOND - POV(2)) * SHARE_BPS) / 10_000n
    expect((await env.fr.reportOf(0)).status).to.equal(2n)
    expect((await token.balanceOf(env.alice)) - before).to.equal(BOND + POV(2) + reward)
    expect(await registry.stakeOf(env.op1.address)).to.equal(POV(4000))
  })

  it('a report filed just before unbonding ends keeps the stake until a verdict proposed within the decision period executes', async () => {
    const env = await setup()
    const { registry } = env.contracts
    await by(env.fr, env.timelock).setDecisionPeriod(3600) // shorter than the 7200 s unbonding
    await registerNode(env, env.op1, POV(5000))
    await by(registry, env.op1).unbond()
    const ends = (await registry.nodeOf(env.op1.address)).unbondingEnds
    await time.increaseTo(ends - 10n)
    await report(env)
    const filed = (await env.fr.reportOf(0)).createdAt
    // governance proposes at the last second of the decision period; its path takes PATH seconds
    await time.increaseTo(filed + 3600n - 1n + BigInt(PATH))
    await expect(by(registry, env.op1).withdraw()).to.be.revertedWithCustomError(
      registry,
      'RegistryWithdrawalFrozen'
    )
    await expect(by(env.fr, env.op1).expireFault(0)).to.be.revertedWithCustomError(
      env.fr,
      'FaultsDeadlineNotReached'
    )
    await by(registry, env.timelock).slash(env.op1.address, POV(1000), 'fault report #0')
    await by(env.fr, env.timelock).upholdFault(0)
    await expect(by(registry, env.op1).withdraw())
      .to.emit(registry, 'StakeWithdrawn')
      .withArgs(env.op1.address, POV(4000))
  })

  it('reverts: zero evidence, self-report, unregistered operator, no bond; governance only', async () => {
    const env = await setup()
    await registerNode(env, env.op1)
    await expect(report(env, { evidence: ethers.ZeroHash })).to.be.revertedWithCustomError(
      env.fr,
      'FaultsZeroEvidence'
    )
    await expect(report(env, { by: env.op1, evidence: ethers.id('x') }))
      .to.be.revertedWithCustomError(env.fr, 'FaultsSelfReport')
      .withArgs(env.op1.address)
    await expect(
      report(env, { operator: env.op2.address, evidence: ethers.id('y') })
    ).to.be.revertedWithCustomError(env.contracts.registry, 'RegistryNotRegistered')
    const salt = ethers.id('z')
    await commit(env, env.bob, env.op1.address, ethers.id('z'), 0n, salt)
    await by(env.contracts.token, env.bob).approve(env.fr, 0n)
    await expect(
      by(env.fr, env.bob).reportFault(env.op1.address, ethers.id('z'), 0n, salt, '')
    ).to.be.revert(ethers)
    await report(env)
    for (const call of [
      () => by(env.fr, env.alice).upholdFault(0),
      () => by(env.fr, env.alice).rejectFault(0),
      () => by(env.fr, env.alice).setReportBond(POV(1)),
      () => by(env.fr, env.alice).setBondBps(100),
      () => by(env.fr, env.alice).setReporterShare(1),
      () => by(env.fr, env.alice).setDecisionPeriod(7200),
      () => by(env.fr, env.alice).setTreasury(env.alice.address)
    ])
      await expect(call()).to.be.revertedWithCustomError(env.fr, 'OwnableUnauthorizedAccount')
    await expect(by(env.fr, env.timelock).upholdFault(7))
      .to.be.revertedWithCustomError(env.fr, 'FaultsUnknownReport')
      .withArgs(7)
  })

  it('parameters: bounded setters with events; no setter makes a report free', async () => {
    const env = await setup()
    const fr = by(env.fr, env.timelock)
    await expect(fr.setReportBond(POV(5)))
      .to.emit(fr, 'ReportBondSet')
      .withArgs(BOND, POV(5))
    for (const bad of [0n, POV(1) - 1n])
      await expect(fr.setReportBond(bad))
        .to.be.revertedWithCustomError(fr, 'SettingOutOfRange')
        .withArgs('reportBond', bad, POV(1), ethers.MaxUint256)
    for (const bad of [0, 9, 10_001])
      await expect(fr.setBondBps(bad))
        .to.be.revertedWithCustomError(fr, 'SettingOutOfRange')
        .withArgs('bondBps', bad, 10, 10_000)
    await expect(fr.setBondBps(250)).to.emit(fr, 'BondBpsSet').withArgs(100, 250)
    await expect(fr.setReporterShare(5000))
      .to.emit(fr, 'ReporterShareSet')
      .withArgs(SHARE_BPS, 5000)
    await expect(fr.setReporterShare(5001))
      .to.be.revertedWithCustomError(fr, 'FaultsShareTooHigh')
      .withArgs(5001, 5000)
    await expect(fr.setDecisionPeriod(60))
      .to.be.revertedWithCustomError(fr, 'SettingOutOfRange')
      .withArgs('decisionPeriod', 60, 3600, 30 * 86_400)
    await expect(fr.setDecisionPeriod(31 * 24 * 3600)).to.be.revertedWithCustomError(
      fr,
      'SettingOutOfRange'
    )
    await expect(fr.setDecisionPeriod(7200)).to.emit(fr, 'DecisionPeriodSet').withArgs(PERIOD, 7200)
    // the treasury (BondCustody): owner only, never 0 nor the contract itself, with its own error
    await expectTreasurySetter(
      fr,
      env.bob,
      'FaultsInvalidTreasury',
      env.deployment.params.treasury,
      env.bob.address
    )
    // the TypeScript bounds are the contract's (deploy/fault-reports.ts defaults inside them)
    expect(await fr.MIN_DECISION_PERIOD()).to.equal(BigInt(MIN_DECISION_PERIOD))
    expect(await fr.MAX_DECISION_PERIOD()).to.equal(BigInt(MAX_DECISION_PERIOD))
    assert.equal(defaultDecisionPeriod(100), MIN_DECISION_PERIOD)
    assert.equal(defaultDecisionPeriod(20 * 86_400), MAX_DECISION_PERIOD)
    // a zero treasury is refused at construction too, with the same error
    await expect(deployFaultReports(env.deployer, env.deployment, { treasury: ethers.ZeroAddress }))
      .to.be.revertedWithCustomError(fr, 'FaultsInvalidTreasury')
      .withArgs(ethers.ZeroAddress)
  })

  it('the registry takes as freezer only a contract that freezes this registry (or 0)', async () => {
    const env = await setup()
    const { registry } = env.contracts
    const r = by(registry, env.timelock)
    for (const bad of [env.bob.address, env.deployment.contracts.token])
      await expect(r.setFreezer(bad))
        .to.be.revertedWithCustomError(registry, 'RegistryInvalidFreezer')
        .withArgs(bad)
    // a FaultReports of another registry
    const other = await deployFaultReports(env.deployer, {
      ...env.deployment,
      contracts: { ...env.deployment.contracts, registry: env.deployment.contracts.escrow }
    })
    await expect(r.setFreezer(other.faultReports!)).to.be.revertedWithCustomError(
      registry,
      'RegistryInvalidFreezer'
    )
    await expect(r.setFreezer(ethers.ZeroAddress)).to.emit(registry, 'FreezerSet')
    await expect(r.setFreezer(await env.fr.getAddress())).to.emit(registry, 'FreezerSet')
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
