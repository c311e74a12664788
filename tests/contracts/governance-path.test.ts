// The unbonding period outlasts the governance path (with half of it again as margin) whatever
// governance changes later, enforced on-chain in both directions: the registry refuses a shorter
// unbonding period, the governor a longer voting path, the timelock a longer delay.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { expect } from 'chai'
import { by, ethers, load, TIMELOCK_DELAY, UNBONDING_PERIOD, VOTING_DELAY } from './fixture.js'
import { devChainClock, governanceRound } from '../../chain/governance.js'
import { unbondingFloorSeconds } from '../../deploy/deploy.js'

describe('governance path vs unbonding period', () => {
  it('the governor refuses a voting period whose path (with its margin) reaches the unbonding period', async () => {
    const env = await load()
    const { governor, registry } = env.contracts
    expect(await governor.registry()).to.equal(env.deployment.contracts.registry)
    expect(await registry.governance()).to.equal(env.deployment.contracts.governor)
    expect(await governor.SECONDS_PER_BLOCK()).to.equal(1n)
    expect(await governor.governancePath()).to.equal(BigInt(VOTING_DELAY + 5 + TIMELOCK_DELAY))
    const round = (votingPeriod: number) =>
      governanceRound({
        contracts: env.contracts,
        proposer: env.deployer,
        voters: [env.deployer],
        actions: [
          {
            target: env.deployment.contracts.governor,
            data: governor.interface.encodeFunctionData('setVotingPeriod', [votingPeriod])
          }
        ],
        description: `voting period ${votingPeriod}`,
        clock: devChainClock(ethers.provider)
      })
    // (1 + 5000) × 1 s + 60 s = 5061 s; × 1.5 = 7591 s > 7200 s of unbonding: refused
    const tooLong = 5000
    assert.ok(unbondingFloorSeconds(VOTING_DELAY + tooLong + TIMELOCK_DELAY) > UNBONDING_PERIOD)
    await assert.rejects(round(tooLong))
    expect(await governor.votingPeriod()).to.equal(5n)
    // 4000 blocks: 4061 s × 1.5 = 6091 s ≤ 7200 s: accepted
    await round(4000)
    expect(await governor.votingPeriod()).to.equal(4000n)
    const path = BigInt(VOTING_DELAY + 4000 + TIMELOCK_DELAY)
    expect(await governor.governancePath()).to.equal(path)
    // … and now the registry's floor follows it: 6091 s, above the 3600 s deployment floor
    const floor = BigInt(unbondingFloorSeconds(Number(path)))
    expect(await registry.unbondingFloor()).to.equal(floor)
    await expect(by(registry, env.timelock).setUnbondingPeriod(floor - 1n))
      .to.be.revertedWithCustomError(registry, 'SettingOutOfRange')
      .withArgs('unbondingPeriod', floor - 1n, floor, 365n * 86_400n)
    await expect(by(registry, env.timelock).setUnbondingPeriod(floor)).to.emit(
      registry,
      'UnbondingPeriodSet'
    )
  })

  it('the timelock refuses a delay that would make the path reach the unbonding period', async () => {
    const env = await load()
    const { timelock, governor } = env.contracts
    expect(await timelock.guard()).to.equal(env.deployment.contracts.governor)
    const tl = env.deployment.contracts.timelock
    // (1 + 5) + 4800 = 4806 s; × 1.5 = 7209 s > 7200 s
    const call = (delay: number) =>
      env.timelock.sendTransaction({
        to: tl,
        data: timelock.interface.encodeFunctionData('updateDelay', [delay])
      })
    await expect(call(4800))
      .to.be.revertedWithCustomError(governor, 'GovernorPathOutlastsUnbonding')
      .withArgs(7209, UNBONDING_PERIOD)
    await expect(call(4700)).to.emit(timelock, 'MinDelayChange')
    expect(await governor.governancePath()).to.equal(4706n)
  })

  it('the bindings are made once, by the deployer / the admin only', async () => {
    const env = await load()
    const { timelock, governor } = env.contracts
    await expect(by(governor, env.deployer).bindRegistry(env.deployment.contracts.escrow))
      .to.be.revertedWithCustomError(governor, 'GovernorRegistryBound')
      .withArgs(env.deployer.address)
    await expect(
      by(timelock, env.deployer).bindGuard(env.deployment.contracts.escrow)
    ).to.be.revertedWithCustomError(timelock, 'AccessControlUnauthorizedAccount')
  })
})
