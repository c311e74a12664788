import { describe, it } from 'node:test'
import { expect } from 'chai'
import {
  by,
  ethers,
  load,
  MIN_STAKE,
  networkHelpers,
  OTHER_MODEL_ID,
  POV,
  registerNode,
  TIMELOCK_DELAY,
  VOTING_DELAY,
  VOTING_PERIOD
} from './fixture.js'

const { mine, time } = networkHelpers
// Governor ProposalState enum
const State = {
  Pending: 0n,
  Active: 1n,
  Canceled: 2n,
  Defeated: 3n,
  Succeeded: 4n,
  Queued: 5n,
  Expired: 6n,
  Executed: 7n
}

describe('PovGovernor + PovTimelock', () => {
  it('is wired: governor proposes/cancels, anyone executes, the deployer holds no admin role', async () => {
    const env = await load()
    const { governor, timelock } = env.contracts
    expect(await governor.name()).to.equal('POV Governor')
    expect(await governor.token()).to.equal(env.deployment.contracts.token)
    expect(await governor.timelock()).to.equal(env.deployment.contracts.timelock)
    expect(await governor.votingDelay()).to.equal(VOTING_DELAY)
    expect(await governor.votingPeriod()).to.equal(VOTING_PERIOD)
    expect(await governor['quorumNumerator()']()).to.equal(4)
    expect(await governor.CLOCK_MODE()).to.equal('mode=blocknumber&from=default')
    expect(await timelock.getMinDelay()).to.equal(TIMELOCK_DELAY)
    expect(await timelock.hasRole(await timelock.PROPOSER_ROLE(), governor)).to.equal(true)
    expect(await timelock.hasRole(await timelock.CANCELLER_ROLE(), governor)).to.equal(true)
    expect(await timelock.hasRole(await timelock.EXECUTOR_ROLE(), ethers.ZeroAddress)).to.equal(
      true
    )
    expect(
      await timelock.hasRole(await timelock.DEFAULT_ADMIN_ROLE(), env.deployer.address)
    ).to.equal(false)
    for (const c of [
      env.contracts.token,
      env.contracts.models,
      env.contracts.registry,
      env.contracts.escrow
    ]) {
      expect(await c.owner()).to.equal(env.deployment.contracts.timelock)
    }
    await expect(
      by(timelock, env.deployer).schedule(
        env.deployment.contracts.models,
        0,
        '0x',
        ethers.ZeroHash,
        ethers.ZeroHash,
        TIMELOCK_DELAY
      )
    ).to.be.revertedWithCustomError(timelock, 'AccessControlUnauthorizedAccount')
  })

  it('a full round — propose, vote, queue, execute — approves a model, slashes an operator and sets the fee', async () => {
    const env = await load()
    const { governor, models, registry, escrow, token } = env.contracts
    await registerNode(env, env.op1, POV(2000))
    await by(token, env.alice).delegate(env.alice.address)

    const info = {
      name: 'mixtral-8x7b',
      layers: 32,
      experts: 8,
      shardCount: 8,
      uri: 'ipfs://bundle'
    }
    const targets = [
      env.deployment.contracts.models,
      env.deployment.contracts.registry,
      env.deployment.contracts.escrow
    ]
    const calldatas = [
      models.interface.encodeFunctionData('approveModel', [OTHER_MODEL_ID, info]),
      registry.interface.encodeFunctionData('slash', [
        env.op1.address,
        POV(500),
        'served wrong outputs'
      ]),
      escrow.interface.encodeFunctionData('setFeeBps', [300])
    ]
    const values = [0, 0, 0]
    const description = 'Approve mixtral-8x7b, slash op1, fee 3 %'
    const descHash = ethers.id(description)
    const proposalId = await governor.hashProposal(targets, values, calldatas, descHash)

    await expect(by(governor, env.alice).propose(targets, values, calldatas, description)).to.emit(
      governor,
      'ProposalCreated'
    )
    expect(await governor.state(proposalId)).to.equal(State.Pending)
    await mine(VOTING_DELAY + 1)
    expect(await governor.state(proposalId)).to.equal(State.Active)
    await expect(by(governor, env.deployer).castVote(proposalId, 1)).to.emit(governor, 'VoteCast')
    await expect(by(governor, env.alice).castVoteWithReason(proposalId, 0, 'no')).to.emit(
      governor,
      'VoteCast'
    )
    await mine(VOTING_PERIOD)
    expect(await governor.state(proposalId)).to.equal(State.Succeeded)
    await expect(governor.queue(targets, values, calldatas, descHash)).to.emit(
      governor,
      'ProposalQueued'
    )
    expect(await governor.state(proposalId)).to.equal(State.Queued)
    await expect(
      governor.execute(targets, values, calldatas, descHash)
    ).to.be.revertedWithCustomError(env.contracts.timelock, 'TimelockUnexpectedOperationState')
    await time.increase(TIMELOCK_DELAY)
    const tx = by(governor, env.attacker).execute(targets, values, calldatas, descHash) // anyone may execute
    await expect(tx).to.emit(governor, 'ProposalExecuted').withArgs(proposalId)
    await expect(tx)
      .to.emit(models, 'ModelApproved')
      .withArgs(OTHER_MODEL_ID, info.name, 32, 8, 8, info.uri)
    await expect(tx).to.emit(registry, 'Slashed').withArgs(
      env.op1.address,
      POV(500),
      POV(1500),
      env.deployment.faultReports, // the registry's treasury; it sends stake on (sweep)
      'served wrong outputs'
    )
    await expect(tx).to.emit(escrow, 'FeeBpsSet').withArgs(100, 300)
    expect(await governor.state(proposalId)).to.equal(State.Executed)
    expect(await models.isApproved(OTHER_MODEL_ID)).to.equal(true)
    expect((await registry.nodeOf(env.op1.address)).stake).to.equal(POV(1500))
    expect(await registry.isActive(env.op1.address)).to.equal(true) // 1500 ≥ MIN_STAKE
    expect(MIN_STAKE).to.equal(POV(1000))
  })

  it('a proposal below quorum is defeated', async () => {
    const env = await load()
    const { governor, token, models } = env.contracts
    await by(token, env.alice).delegate(env.alice.address) // 100k of 1e9: below the 4 % quorum
    const targets = [env.deployment.contracts.models]
    const calldatas = [models.interface.encodeFunctionData('revokeModel', [OTHER_MODEL_ID])]
    await by(governor, env.alice).propose(targets, [0], calldatas, 'revoke')
    const id = await governor.hashProposal(targets, [0], calldatas, ethers.id('revoke'))
    await mine(VOTING_DELAY + 1)
    await by(governor, env.alice).castVote(id, 1)
    await mine(VOTING_PERIOD)
    expect(await governor.state(id)).to.equal(State.Defeated)
  })
})
