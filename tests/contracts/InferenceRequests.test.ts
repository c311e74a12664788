// InferenceRequests (contracts/inference/): every path of a request — fulfil, finalise with its
// callback (failing, gas-burning, return-bombing, re-entering), deadline, disputes decided each
// way, the near-tie rule, bond accounting — and the example bounty consumer. The requests go
// through chain/oracle.ts, the client the CLI uses, so event decoding is tested with them.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { expect } from 'chai'
import type { Signer } from 'ethers'
import {
  by,
  ethers,
  expectTreasurySetter,
  load,
  networkHelpers,
  MODEL_ID,
  OTHER_MODEL_ID,
  POV
} from './fixture.js'
import { connectInferenceBounty } from '../../chain/contracts.js'
import {
  challengeRequest,
  finalizeRequest,
  fulfilRequest,
  hashRequest,
  hashResult,
  inferenceRequestsOf,
  listRequests,
  postRequest,
  readRequest,
  resolveDisputeProposal,
  type OracleResult,
  type RequestView
} from '../../chain/oracle.js'
import { TIE_MARGIN_MICRO } from '../../chain/oracle.js'
import { deployAll, parseDeployArgs } from '../../deploy/deploy.js'
import {
  defaultDisputePeriod,
  deployInferenceRequests,
  MAX_DISPUTE_PERIOD,
  MIN_DISPUTE_PERIOD
} from '../../deploy/inference-requests.js'

const { time } = networkHelpers
const FEE = POV(5)
const BOND = POV(100) // deploy/inference-requests.ts default
const WINDOW = 60 // the local preset's challenge window
const EVIDENCE = ethers.id('evidence file')
const SELECTOR = ethers.id('onInferenceResult(uint256,uint32[])').slice(0, 10)
const Mode = { Record: 0, Revert: 1, BurnGas: 2, ReturnBomb: 3, Reenter: 4, FollowUp: 5 }
const Outcome = { None: 0, FulfillerRight: 1, ChallengerRight: 2, Tie: 3, BothWrong: 4 }

/** A result whose every margin is well above the near-tie threshold. */
function result(tokens: number[], margins?: number[], evidence = EVIDENCE): OracleResult {
  return { tokens, margins: margins ?? tokens.map(() => 2_000_000), evidenceHash: evidence }
}
const HONEST = result([5, 17, 42, 9])
const WRONG = result([5, 17, 43, 9])

async function setup() {
  const env = await load()
  const ir = inferenceRequestsOf(env.deployment, env.deployer)
  const consumer = await ethers.deployContract('OracleConsumerMock', [ir.target])
  return { ...env, ir, consumer }
}
type Setup = Awaited<ReturnType<typeof setup>>

async function ask(
  s: Setup,
  o: { callback?: boolean; gas?: number; maxTokens?: number; by?: Signer } = {}
): Promise<RequestView> {
  const deadline = (await time.latest()) + 600
  const callback = o.callback ?? true
  const { id } = await postRequest(s.contracts, s.ir, o.by ?? s.alice, {
    modelId: MODEL_ID,
    prompt: 'Is the sky blue? Answer yes or no.',
    maxTokens: o.maxTokens ?? 8,
    fee: FEE,
    deadline,
    ...(callback
      ? {
          callback: await s.consumer.getAddress(),
          selector: SELECTOR,
          callbackGasLimit: o.gas ?? 200_000
        }
      : {})
  })
  return await readRequest(s.ir, id)
}

async function balances(s: Setup, who: Signer[]) {
  return await Promise.all(who.map(async (w) => await s.contracts.token.balanceOf(w)))
}

describe('InferenceRequests', () => {
  it('request: the fee is escrowed, the parameters come back from the event and hash to the record', async () => {
    const s = await setup()
    const before = await s.contracts.token.balanceOf(s.alice)
    const v = await ask(s)
    expect(await s.contracts.token.balanceOf(s.alice)).to.equal(before - FEE)
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(FEE)
    assert.equal(v.status, 'Open')
    assert.equal(v.prompt, 'Is the sky blue? Answer yes or no.')
    assert.equal(v.params.requester, s.alice.address)
    assert.equal(v.params.bond, BOND)
    assert.equal(v.params.challengeWindow, WINDOW)
    assert.equal(v.params.promptHash, ethers.keccak256(ethers.toUtf8Bytes(v.prompt!)))
    const rec = await s.ir.recordOf(v.id)
    assert.equal(rec.paramsHash, hashRequest(v.params))
    assert.equal(await s.ir.hashRequest(v.params), hashRequest(v.params))
    assert.equal(await s.ir.hashResult(HONEST), hashResult(HONEST))
  })

  it('request: refuses an unapproved model, a missing prompt, bad max tokens, deadline and callback', async () => {
    const s = await setup()
    const now = await time.latest()
    const base = {
      modelId: MODEL_ID,
      prompt: ethers.toUtf8Bytes('hi'),
      promptHash: ethers.ZeroHash,
      promptUri: '',
      maxTokens: 4,
      fee: 0n,
      deadline: now + 600,
      callback: ethers.ZeroAddress,
      selector: '0x00000000',
      callbackGasLimit: 0
    }
    const ir = by(s.ir, s.alice)
    await expect(ir.request({ ...base, modelId: OTHER_MODEL_ID }))
      .to.be.revertedWithCustomError(ir, 'OracleModelNotApproved')
      .withArgs(OTHER_MODEL_ID)
    await expect(ir.request({ ...base, prompt: '0x' })).to.be.revertedWithCustomError(
      ir,
      'OracleBadPrompt'
    )
    await expect(ir.request({ ...base, prompt: '0x', promptHash: ethers.id('p') })) // no URI
      .to.be.revertedWithCustomError(ir, 'OracleBadPrompt')
    await expect(ir.request({ ...base, maxTokens: 0 })).to.be.revertedWithCustomError(
      ir,
      'OracleBadMaxTokens'
    )
    await expect(ir.request({ ...base, maxTokens: 1025 }))
      .to.be.revertedWithCustomError(ir, 'OracleBadMaxTokens')
      .withArgs(1025, 1024)
    await expect(ir.request({ ...base, deadline: now })).to.be.revertedWithCustomError(
      ir,
      'OracleBadDeadline'
    )
    // a callback into the token would spend the escrowed fees: transfer(requestId, 64)
    await expect(
      ir.request({ ...base, callback: s.contracts.token.target, selector: '0xa9059cbb' })
    ).to.be.revertedWithCustomError(ir, 'OracleBadCallback')
    await expect(
      ir.request({ ...base, callback: s.consumer.target, callbackGasLimit: 2_000_001 })
    ).to.be.revertedWithCustomError(ir, 'OracleBadCallback')
    // by hash + URI: accepted, the prompt stays off-chain
    await expect(
      ir.request({ ...base, prompt: '0x', promptHash: ethers.id('p'), promptUri: 'ipfs://p' })
    ).to.emit(ir, 'RequestPosted')
  })

  it('fulfil → window → finalise: fee and bond to the fulfiller, the callback gets the tokens', async () => {
    const s = await setup()
    const v = await ask(s)
    const [op1Before] = await balances(s, [s.op1])
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST, 'file://evidence.json')
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(FEE + BOND)
    const posted = await readRequest(s.ir, v.id)
    assert.equal(posted.status, 'Fulfilled')
    assert.deepEqual(posted.result?.tokens, HONEST.tokens)
    assert.equal(posted.result?.evidenceUri, 'file://evidence.json')
    // a second result, or finalising inside the window, is refused
    await expect(fulfilRequest(s.contracts, s.ir, s.op2, v, HONEST))
      .to.be.revertedWithCustomError(s.ir, 'OracleWrongStatus')
      .withArgs(v.id, 2)
    await expect(finalizeRequest(s.ir, s.bob, posted)).to.be.revertedWithCustomError(
      s.ir,
      'OracleWindowOpen'
    )
    await time.increase(WINDOW + 1)
    // anyone finalises; a wrong result or wrong parameters are refused
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, WRONG)).to.be.revertedWithCustomError(
      s.ir,
      'OracleResultMismatch'
    )
    await expect(
      by(s.ir, s.bob).finalize(v.id, { ...v.params, fee: 1n }, HONEST)
    ).to.be.revertedWithCustomError(s.ir, 'OracleParamsMismatch')
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, HONEST))
      .to.emit(s.ir, 'Finalised')
      .withArgs(v.id, s.op1.address, FEE, BOND)
      .and.to.emit(s.ir, 'CallbackRun')
      .withArgs(v.id, s.consumer.target, true)
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(op1Before + FEE)
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(0n)
    expect(await s.consumer.lastTokens()).to.deep.equal(HONEST.tokens.map(BigInt))
    expect(await s.consumer.lastRequestId()).to.equal(BigInt(v.id))
    const done = await readRequest(s.ir, v.id)
    assert.equal(done.status, 'Finalised')
    assert.equal(done.finalised?.callbackOk, true)
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, HONEST)).to.be.revertedWithCustomError(
      s.ir,
      'OracleWrongStatus'
    )
  })

  it('fulfil: refuses after the deadline, an empty or oversize result, and margins that do not match', async () => {
    const s = await setup()
    const v = await ask(s, { maxTokens: 4 })
    await by(s.contracts.token, s.op1).approve(s.ir, BOND * 10n)
    const ir = by(s.ir, s.op1)
    await expect(ir.fulfil(v.id, v.params, result([]), ''))
      .to.be.revertedWithCustomError(ir, 'OracleBadResult')
      .withArgs(0, 0, 4)
    await expect(ir.fulfil(v.id, v.params, result([1, 2, 3, 4, 5]), ''))
      .to.be.revertedWithCustomError(ir, 'OracleBadResult')
      .withArgs(5, 5, 4)
    await expect(
      ir.fulfil(v.id, v.params, { ...HONEST, margins: [1, 2] }, '')
    ).to.be.revertedWithCustomError(ir, 'OracleBadResult')
    await expect(ir.fulfil(99, v.params, HONEST, ''))
      .to.be.revertedWithCustomError(ir, 'OracleUnknownRequest')
      .withArgs(99)
    await time.increaseTo(v.params.deadline + 1)
    await expect(ir.fulfil(v.id, v.params, HONEST, '')).to.be.revertedWithCustomError(
      ir,
      'OracleDeadlinePassed'
    )
  })

  it('deadline: an unfulfilled request is cancelled after it and the fee refunded, not before', async () => {
    const s = await setup()
    const v = await ask(s)
    const [before] = await balances(s, [s.alice])
    await expect(by(s.ir, s.bob).cancel(v.id, v.params)).to.be.revertedWithCustomError(
      s.ir,
      'OracleDeadlineNotReached'
    )
    await time.increaseTo(v.params.deadline + 1)
    await expect(by(s.ir, s.bob).cancel(v.id, v.params))
      .to.emit(s.ir, 'RequestCancelled')
      .withArgs(v.id, s.alice.address, FEE)
    expect(await s.contracts.token.balanceOf(s.alice)).to.equal(before + FEE)
    expect((await readRequest(s.ir, v.id)).status).to.equal('Cancelled')
  })

  for (const [name, mode] of [
    ['reverts', Mode.Revert],
    ['burns all its gas', Mode.BurnGas],
    ['returns a megabyte', Mode.ReturnBomb]
  ] as const)
    it(`callback failure: a callback that ${name} locks neither the fee nor the result`, async () => {
      const s = await setup()
      await s.consumer.setMode(mode)
      const v = await ask(s, { gas: 300_000 })
      await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
      await time.increase(WINDOW + 1)
      const [before] = await balances(s, [s.op1])
      const tx = by(s.ir, s.bob).finalize(v.id, v.params, HONEST)
      await expect(tx).to.emit(s.ir, 'CallbackRun').withArgs(v.id, s.consumer.target, false)
      expect(await s.contracts.token.balanceOf(s.op1)).to.equal(before + FEE + BOND)
      expect((await s.ir.recordOf(v.id)).status).to.equal(5n) // Finalised
      expect(await s.consumer.calls()).to.equal(0n)
      const gas = (await (await tx).wait())!.gasUsed
      assert.ok(gas < 300_000n + 120_000n, `finalise used ${gas} gas`)
    })

  it('callback gas: a finaliser cannot starve the callback by sending too little gas', async () => {
    const s = await setup()
    const v = await ask(s, { gas: 1_000_000 })
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
    await time.increase(WINDOW + 1)
    await expect(
      by(s.ir, s.bob).finalize(v.id, v.params, HONEST, { gasLimit: 600_000 })
    ).to.be.revertedWithCustomError(s.ir, 'OracleCallbackGasShort')
    expect((await s.ir.recordOf(v.id)).status).to.equal(2n) // still Fulfilled
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, HONEST, { gasLimit: 1_200_000 }))
      .to.emit(s.ir, 'CallbackRun')
      .withArgs(v.id, s.consumer.target, true)
  })

  it('reentrancy: a callback re-entering finalize fails and nothing is paid twice; it may post a follow-up', async () => {
    const s = await setup()
    await s.consumer.setMode(Mode.Reenter)
    const v = await ask(s, { gas: 500_000 })
    await s.consumer.setReplay(v.params, HONEST)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
    await time.increase(WINDOW + 1)
    const [before] = await balances(s, [s.op1])
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, HONEST))
      .to.emit(s.ir, 'CallbackRun')
      .withArgs(v.id, s.consumer.target, true)
    expect(await s.consumer.reentryFailed()).to.equal(true)
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(before + FEE + BOND)
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(0n)

    // chaining: the consumer, as requester, posts its next request from inside the callback
    await s.contracts.token.transfer(s.consumer, FEE * 2n)
    const first = await s.consumer.ask.staticCall(followUp(await time.latest()))
    await s.consumer.ask(followUp(await time.latest()))
    await s.consumer.setMode(Mode.FollowUp)
    await s.consumer.setFollowUp(followUp(await time.latest()))
    const w = await readRequest(s.ir, Number(first))
    await fulfilRequest(s.contracts, s.ir, s.op1, w, HONEST)
    await time.increase(WINDOW + 1)
    await expect(by(s.ir, s.bob).finalize(w.id, w.params, HONEST))
      .to.emit(s.ir, 'RequestPosted')
      .and.to.emit(s.ir, 'CallbackRun')
      .withArgs(w.id, s.consumer.target, true)
    expect(await s.consumer.followUpId()).to.equal(BigInt(w.id + 1))
    expect((await readRequest(s.ir, w.id + 1)).params.requester).to.equal(s.consumer.target)

    function followUp(now: number) {
      return {
        modelId: MODEL_ID,
        prompt: ethers.toUtf8Bytes('and then?'),
        promptHash: ethers.ZeroHash,
        promptUri: '',
        maxTokens: 4,
        fee: FEE,
        deadline: now + 3600,
        callback: s.consumer.target,
        selector: SELECTOR,
        callbackGasLimit: 400_000
      }
    }
  })

  it('dispute won by the honest side: the challenger’s result is delivered, bonds move to it', async () => {
    const s = await setup()
    const v = await ask(s)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, WRONG)
    const posted = await readRequest(s.ir, v.id)
    const [op1Before, op2Before] = await balances(s, [s.op1, s.op2])
    await challengeRequest(s.contracts, s.ir, s.op2, posted, HONEST, 'file://mine.json')
    const disputed = await readRequest(s.ir, v.id)
    assert.equal(disputed.status, 'Disputed')
    assert.equal(disputed.dispute?.position, 2)
    assert.equal(disputed.dispute?.by, s.op2.address)
    // nobody finalises a disputed request, whatever the window says
    await time.increase(WINDOW + 1)
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, WRONG)).to.be.revertedWithCustomError(
      s.ir,
      'OracleWrongStatus'
    )
    // only governance decides
    await expect(
      by(s.ir, s.op2).resolveDispute(v.id, v.params, Outcome.ChallengerRight)
    ).to.be.revertedWithCustomError(s.ir, 'OwnableUnauthorizedAccount')
    const { actions, description } = await resolveDisputeProposal(s.ir, v.id, 'ChallengerRight')
    assert.match(
      description,
      /^Resolve inference request #0: ChallengerRight \(first difference at token 2/
    )
    await expect(s.timelock.sendTransaction({ to: actions[0].target, data: actions[0].data }))
      .to.emit(s.ir, 'DisputeResolved')
      .withArgs(v.id, Outcome.ChallengerRight, s.op1.address, s.op2.address, 0n, 2n * BOND)
    const decided = await readRequest(s.ir, v.id)
    assert.equal(decided.status, 'Decided')
    // the fulfiller's (wrong) result can no longer be delivered; the challenger's is
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, WRONG)).to.be.revertedWithCustomError(
      s.ir,
      'OracleResultMismatch'
    )
    await expect(by(s.ir, s.bob).finalize(v.id, v.params, HONEST))
      .to.emit(s.ir, 'Finalised')
      .withArgs(v.id, s.op2.address, FEE, 0n)
    expect(await s.consumer.lastTokens()).to.deep.equal(HONEST.tokens.map(BigInt))
    const [op1After, op2After] = await balances(s, [s.op1, s.op2])
    expect(op1After).to.equal(op1Before) // its bond is gone (paid before the snapshot)
    expect(op2After).to.equal(op2Before + BOND + FEE) // own bond back + the fulfiller's + fee
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(0n)
  })

  it('dispute won by the fulfiller: a dishonest challenger loses its bond to it', async () => {
    const s = await setup()
    const v = await ask(s)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
    const [op1Before] = await balances(s, [s.op1])
    await challengeRequest(s.contracts, s.ir, s.op2, await readRequest(s.ir, v.id), WRONG)
    await by(s.ir, s.timelock).resolveDispute(v.id, v.params, Outcome.FulfillerRight)
    await finalizeRequest(s.ir, s.bob, await readRequest(s.ir, v.id))
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(op1Before + 2n * BOND + FEE)
    expect(await s.consumer.lastTokens()).to.deep.equal(HONEST.tokens.map(BigInt))
    const view = (await listRequests(s.ir))[v.id]
    assert.equal(view.dispute?.outcome, 'FulfillerRight')
    assert.equal(view.resolved?.fulfillerPaid, 2n * BOND)
    assert.equal(view.finalised?.paidTo, s.op1.address)
  })

  it('challenge: refused when it agrees, misquotes the posted result, or comes after the window', async () => {
    const s = await setup()
    const v = await ask(s)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
    await by(s.contracts.token, s.op2).approve(s.ir, BOND)
    const ir = by(s.ir, s.op2)
    // same tokens, other margins and evidence: not a disagreement about the answer
    await expect(
      ir.challenge(v.id, v.params, HONEST, result(HONEST.tokens, [1, 1, 1, 1], ethers.id('x')), '')
    )
      .to.be.revertedWithCustomError(ir, 'OracleSameResult')
      .withArgs(v.id)
    await expect(ir.challenge(v.id, v.params, WRONG, HONEST, '')).to.be.revertedWithCustomError(
      ir,
      'OracleResultMismatch'
    )
    await time.increase(WINDOW + 1)
    await expect(ir.challenge(v.id, v.params, HONEST, WRONG, '')).to.be.revertedWithCustomError(
      ir,
      'OracleWindowClosed'
    )
  })

  it('near-tie: two honest results that split where both margins are below the tolerance — the challenge is refused, the fulfiller keeps its bond', async () => {
    const s = await setup()
    assert.equal(await s.ir.tieMargin(), BigInt(TIE_MARGIN_MICRO))
    const v = await ask(s)
    // CPU run: token 42 by 0.004 logits at position 2; GPU run: token 43 by 0.003
    const cpu = result([5, 17, 42, 8], [900_000, 1_500_000, 4_000, 700_000])
    const gpu = result([5, 17, 43, 11], [900_010, 1_499_990, 3_000, 2_000_000])
    await fulfilRequest(s.contracts, s.ir, s.op1, v, cpu)
    const [op1Before] = await balances(s, [s.op1])
    await by(s.contracts.token, s.op2).approve(s.ir, BOND)
    await expect(by(s.ir, s.op2).challenge(v.id, v.params, cpu, gpu, ''))
      .to.be.revertedWithCustomError(s.ir, 'OracleNearTie')
      .withArgs(v.id, 2, 4_000, 3_000)
    await time.increase(WINDOW + 1)
    await finalizeRequest(s.ir, s.bob, await readRequest(s.ir, v.id))
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(op1Before + FEE + BOND)
  })

  it('near-tie claimed by one side only goes to governance; a Tie verdict returns both bonds and delivers the fulfiller’s result', async () => {
    const s = await setup()
    const v = await ask(s)
    // the fulfiller recorded a near-tie; the challenger claims a clear margin there
    const mine = result([5, 17, 42, 8], [900_000, 1_500_000, 4_000, 700_000])
    const theirs = result([5, 17, 43, 11], [900_000, 1_500_000, 300_000, 700_000])
    await fulfilRequest(s.contracts, s.ir, s.op1, v, mine)
    const [op1Before, op2Before] = await balances(s, [s.op1, s.op2])
    await challengeRequest(s.contracts, s.ir, s.op2, await readRequest(s.ir, v.id), theirs)
    await expect(by(s.ir, s.timelock).resolveDispute(v.id, v.params, Outcome.Tie))
      .to.emit(s.ir, 'DisputeResolved')
      .withArgs(v.id, Outcome.Tie, s.op1.address, s.op2.address, BOND, BOND)
    await finalizeRequest(s.ir, s.bob, await readRequest(s.ir, v.id))
    const [op1After, op2After] = await balances(s, [s.op1, s.op2])
    expect(op1After).to.equal(op1Before + BOND + FEE)
    expect(op2After).to.equal(op2Before) // bond posted, then returned
    expect(await s.consumer.lastTokens()).to.deep.equal(mine.tokens.map(BigInt))
  })

  it('a challenge may disagree on length: a truncated result is challengeable at its end', async () => {
    const s = await setup()
    const v = await ask(s)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, result([5, 17]))
    await challengeRequest(s.contracts, s.ir, s.op2, await readRequest(s.ir, v.id), HONEST)
    assert.equal((await readRequest(s.ir, v.id)).dispute?.position, 2)
  })

  it('bond accounting: both wrong → bonds to the treasury and the fee back; undecided → everything back', async () => {
    const s = await setup()
    const treasury = s.deployment.params.treasury
    const v = await ask(s)
    await fulfilRequest(s.contracts, s.ir, s.op1, v, WRONG)
    await challengeRequest(
      s.contracts,
      s.ir,
      s.op2,
      await readRequest(s.ir, v.id),
      result([5, 17, 44, 9])
    )
    const w = await ask(s, { by: s.bob })
    await fulfilRequest(s.contracts, s.ir, s.op1, w, HONEST)
    await challengeRequest(s.contracts, s.ir, s.op3, await readRequest(s.ir, w.id), WRONG)
    // two requests, two disputes: the contract holds exactly 2 fees and 4 bonds
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(2n * FEE + 4n * BOND)
    const [tBefore, aliceBefore, bobBefore, op1Before, op3Before] = await balances(s, [
      await ethers.getSigner(treasury),
      s.alice,
      s.bob,
      s.op1,
      s.op3
    ])
    await expect(by(s.ir, s.timelock).resolveDispute(v.id, v.params, Outcome.None))
      .to.be.revertedWithCustomError(s.ir, 'OracleBadOutcome')
      .withArgs(0)
    await expect(by(s.ir, s.timelock).resolveDispute(v.id, v.params, Outcome.BothWrong))
      .to.emit(s.ir, 'RequestCancelled')
      .withArgs(v.id, s.alice.address, FEE)
    expect(await s.contracts.token.balanceOf(treasury)).to.equal(tBefore + 2n * BOND)
    expect(await s.contracts.token.balanceOf(s.alice)).to.equal(aliceBefore + FEE)
    expect((await readRequest(s.ir, v.id)).status).to.equal('Cancelled')
    // governance lets the second dispute run out: anyone expires it, all is returned
    await expect(by(s.ir, s.bob).expireDispute(w.id, w.params)).to.be.revertedWithCustomError(
      s.ir,
      'OracleDeadlineNotReached'
    )
    await time.increase(Number(await s.ir.disputePeriod()))
    await expect(by(s.ir, s.bob).expireDispute(w.id, w.params))
      .to.emit(s.ir, 'DisputeExpired')
      .withArgs(w.id, s.op1.address, s.op3.address)
    expect(await s.contracts.token.balanceOf(s.bob)).to.equal(bobBefore + FEE)
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(op1Before + BOND)
    expect(await s.contracts.token.balanceOf(s.op3)).to.equal(op3Before + BOND)
    expect(await s.contracts.token.balanceOf(s.ir)).to.equal(0n)
    // neither can be finalised now
    await expect(by(s.ir, s.bob).finalize(w.id, w.params, HONEST)).to.be.revertedWithCustomError(
      s.ir,
      'OracleWrongStatus'
    )
  })

  it('governance parameters: owner only, within bounds, and in-flight requests keep theirs', async () => {
    const s = await setup()
    const v = await ask(s)
    const ir = by(s.ir, s.timelock)
    await expect(by(s.ir, s.alice).setFulfilBond(1n)).to.be.revertedWithCustomError(
      s.ir,
      'OwnableUnauthorizedAccount'
    )
    await expect(ir.setFulfilBond(POV(7)))
      .to.emit(ir, 'FulfilBondSet')
      .withArgs(BOND, POV(7))
    await expect(ir.setChallengeWindow(59))
      .to.be.revertedWithCustomError(ir, 'OracleParamOutOfRange')
      .withArgs(59, 60, 7 * 86400)
    await expect(ir.setDisputePeriod(3599)).to.be.revertedWithCustomError(
      ir,
      'OracleParamOutOfRange'
    )
    await expect(ir.setTieMargin(10_000_001)).to.be.revertedWithCustomError(
      ir,
      'OracleParamOutOfRange'
    )
    await expect(ir.setChallengeWindow(120)).to.emit(ir, 'ChallengeWindowSet').withArgs(60, 120)
    // the treasury (BondCustody): owner only, never 0 nor the contract itself, with its own error
    await expectTreasurySetter(
      ir,
      s.alice,
      'OracleInvalidTreasury',
      s.deployment.params.treasury,
      s.bob.address
    )
    // the request posted before still uses bond 100 and window 60
    const [op1Before] = await balances(s, [s.op1])
    await fulfilRequest(s.contracts, s.ir, s.op1, v, HONEST)
    expect(await s.contracts.token.balanceOf(s.op1)).to.equal(op1Before - BOND)
    const next = await ask(s)
    assert.equal(next.params.bond, POV(7))
    assert.equal(next.params.challengeWindow, 120)
  })
})

describe('InferenceRequests deployment', () => {
  it('deployInferenceRequests adds it to a deployment: owned by the timelock, the deployment’s token, approvals and treasury', async () => {
    const env = await load()
    const before = { ...env.deployment, inferenceRequests: undefined }
    const added = await deployInferenceRequests(env.deployer, before, {
      fulfilBond: POV(3),
      disputePeriod: 7200
    })
    assert.notEqual(added.inferenceRequests, undefined)
    assert.notEqual(added.inferenceRequests, env.deployment.inferenceRequests)
    assert.deepEqual({ ...added, inferenceRequests: undefined }, before)
    const ir = inferenceRequestsOf(added, env.deployer)
    const c = env.deployment.contracts
    expect(await ir.owner()).to.equal(c.timelock)
    expect(await ir.token()).to.equal(c.token)
    expect(await ir.models()).to.equal(c.models)
    expect(await ir.treasury()).to.equal(env.deployment.params.treasury)
    expect(await ir.fulfilBond()).to.equal(POV(3))
    expect(await ir.disputePeriod()).to.equal(7200n)
    // the TypeScript bounds are the contract's, and the default stays inside them
    expect(await ir.MIN_DISPUTE_PERIOD()).to.equal(BigInt(MIN_DISPUTE_PERIOD))
    expect(await ir.MAX_DISPUTE_PERIOD()).to.equal(BigInt(MAX_DISPUTE_PERIOD))
    assert.equal(defaultDisputePeriod(100), MIN_DISPUTE_PERIOD)
    assert.equal(defaultDisputePeriod(8 * 86_400), 16 * 86_400)
    assert.equal(defaultDisputePeriod(20 * 86_400), MAX_DISPUTE_PERIOD)
    // a zero treasury is refused at construction with the contract's own error
    await expect(
      deployInferenceRequests(env.deployer, before, {
        disputePeriod: 7200,
        treasury: ethers.ZeroAddress
      })
    )
      .to.be.revertedWithCustomError(ir, 'OracleInvalidTreasury')
      .withArgs(ethers.ZeroAddress)
  })

  it('deployAll refuses a dispute period that does not outlast the governance path; the script maps its flags', async () => {
    const [deployer] = await ethers.getSigners()
    // local preset path: (1 + 20) × 1 s + 60 s = 81 s
    await assert.rejects(
      deployAll(deployer, { preset: 'local', inferenceRequests: { disputePeriod: 81 } }),
      /inference dispute period 81 s does not outlast the governance path of 81 s/
    )
    const args = parseDeployArgs([
      '--rpc',
      'http://127.0.0.1:1',
      '--fulfil-bond',
      '5',
      '--challenge-window',
      '120',
      '--dispute-period',
      '7200',
      '--tie-margin',
      '1000'
    ])
    assert.deepEqual(args.opts.inferenceRequests, {
      fulfilBond: POV(5),
      challengeWindow: 120,
      disputePeriod: 7200,
      tieMargin: 1000
    })
    assert.equal(
      parseDeployArgs(['--rpc', 'http://127.0.0.1:1', '--no-inference-requests']).opts
        .inferenceRequests,
      false
    )
  })
})

describe('InferenceBounty (contracts/examples/)', () => {
  const YES = 3924

  async function bountySetup() {
    const s = await setup()
    const f = await ethers.getContractFactory('InferenceBounty')
    const deployed = await f.deploy(s.ir.target, MODEL_ID, 'What is 2 + 2?', YES)
    const bounty = connectInferenceBounty(await deployed.getAddress(), s.deployer)
    await by(s.contracts.token, s.alice).approve(bounty.target as string, POV(50))
    await by(bounty, s.alice).fund(POV(50))
    return { ...s, bounty }
  }

  async function claim(s: Awaited<ReturnType<typeof bountySetup>>, who: Signer, answer: string) {
    await by(s.contracts.token, who).approve(s.bounty.target as string, FEE)
    await by(s.bounty, who).claim(answer, FEE, (await time.latest()) + 600)
    const id = Number(await s.bounty.judging())
    return await readRequest(s.ir, id)
  }

  async function answer(s: Awaited<ReturnType<typeof bountySetup>>, v: RequestView, token: number) {
    await fulfilRequest(s.contracts, s.ir, s.op1, v, result([token]))
    await time.increase(WINDOW + 1)
    await finalizeRequest(s.ir, s.op1, await readRequest(s.ir, v.id))
  }

  it('the model says yes: the claimant is paid the reward', async () => {
    const s = await bountySetup()
    const v = await claim(s, s.bob, '4')
    assert.equal(v.prompt, 'What is 2 + 2?\nAnswer: 4\nCorrect? ')
    assert.equal(v.params.requester, s.bounty.target)
    assert.equal(v.params.maxTokens, 1)
    const [bobBefore] = await balances(s, [s.bob])
    await answer(s, v, YES)
    expect(await s.contracts.token.balanceOf(s.bob)).to.equal(bobBefore + POV(50))
    expect(await s.bounty.state()).to.equal(2n) // Paid
  })

  it('the model says anything else: the claim is rejected and the bounty reopens', async () => {
    const s = await bountySetup()
    const v = await claim(s, s.bob, '5')
    await expect(by(s.bounty, s.alice).claim('4', FEE, (await time.latest()) + 600))
      .to.be.revertedWithCustomError(s.bounty, 'BountyNotOpen')
      .withArgs(1)
    await answer(s, v, YES + 1)
    expect(await s.bounty.state()).to.equal(0n) // Open
    expect(await s.contracts.token.balanceOf(s.bounty)).to.equal(POV(50))
    // nobody but the oracle may call the callback
    await expect(by(s.bounty, s.bob).onInferenceResult(v.id, [YES])).to.be.revertedWithCustomError(
      s.bounty,
      'BountyNotOracle'
    )
  })

  it('nobody answers by the deadline: the request is cancelled and the claimant gets its fee back', async () => {
    const s = await bountySetup()
    const v = await claim(s, s.bob, '4')
    const [bobBefore] = await balances(s, [s.bob])
    await time.increaseTo(v.params.deadline + 1)
    await by(s.ir, s.alice).cancel(v.id, v.params)
    await by(s.bounty, s.alice).reopen()
    expect(await s.contracts.token.balanceOf(s.bob)).to.equal(bobBefore + FEE)
    expect(await s.bounty.state()).to.equal(0n)
  })
})
