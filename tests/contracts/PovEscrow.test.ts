import { describe, it } from 'node:test'
import { expect } from 'chai'
import {
  by,
  depositFor,
  ethers,
  FEE_BPS,
  load,
  networkHelpers,
  permit,
  POV,
  UNLOCK_PERIOD,
  voucher
} from './fixture.js'
import { readVoucherDomain, signVoucher, voucherDigest } from '../../protocol/voucher.js'
import { toRedeemable } from '../../chain/vouchers.js'

const { time } = networkHelpers
const fee = (x: bigint) => (x * FEE_BPS) / 10_000n
/** IPovEscrow.SkipReason */
const SKIP = { InvalidSignature: 1, Stale: 2, EmptyLane: 3 } as const

describe('PovEscrow', () => {
  describe('deposit', () => {
    it('pulls the tokens, credits the payer and emits Deposited', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await by(token, env.alice).approve(escrow, POV(10))
      await expect(by(escrow, env.alice).deposit(POV(4)))
        .to.emit(escrow, 'Deposited')
        .withArgs(env.alice.address, POV(4), POV(4))
      await expect(by(escrow, env.alice).deposit(POV(6)))
        .to.emit(escrow, 'Deposited')
        .withArgs(env.alice.address, POV(6), POV(10))
      expect((await escrow.depositOf(env.alice.address))[0]).to.equal(POV(10))
      expect(await escrow.totalDeposits()).to.equal(POV(10))
      expect(await token.balanceOf(escrow)).to.equal(POV(10))
    })
    it('reverts on zero and without allowance', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await expect(by(escrow, env.alice).deposit(0)).to.be.revertedWithCustomError(
        escrow,
        'EscrowZeroAmount'
      )
      await expect(by(escrow, env.alice).deposit(1)).to.be.revertedWithCustomError(
        token,
        'ERC20InsufficientAllowance'
      )
    })
    it('reverts when the total would not fit 128 bits', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const huge = 2n ** 128n
      await by(token, env.timelock).setMintingEnabled(true)
      await by(token, env.timelock).mint(env.bob.address, huge)
      await by(token, env.bob).approve(escrow, huge)
      await expect(by(escrow, env.bob).deposit(huge))
        .to.be.revertedWithCustomError(escrow, 'EscrowAmountTooLarge')
        .withArgs(huge)
    })
    it('depositWithPermit needs no prior approve', async () => {
      const env = await load()
      const { escrow } = env.contracts
      const p = await permit(env, env.alice, env.deployment.contracts.escrow, POV(5))
      await expect(by(escrow, env.alice).depositWithPermit(POV(5), p.deadline, p.v, p.r, p.s))
        .to.emit(escrow, 'Deposited')
        .withArgs(env.alice.address, POV(5), POV(5))
    })
    it('depositWithPermit still deposits when the permit was front-run', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const p = await permit(env, env.alice, env.deployment.contracts.escrow, POV(5))
      await by(token, env.attacker).permit(
        env.alice.address,
        escrow,
        POV(5),
        p.deadline,
        p.v,
        p.r,
        p.s
      )
      await expect(
        by(escrow, env.alice).depositWithPermit(POV(5), p.deadline, p.v, p.r, p.s)
      ).to.emit(escrow, 'Deposited')
    })
  })

  describe('redeem', () => {
    it('credits cumulative minus already paid to the payee, moves no tokens; the fee accrues for the treasury', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const first = await voucher(env, env.alice, env.op1.address, POV(10))
      await expect(by(escrow, env.op1).redeem(first.rv))
        .to.emit(escrow, 'VoucherRedeemed')
        .withArgs(env.alice.address, env.op1.address, POV(10), POV(10), fee(POV(10)), 0)
      const second = await voucher(env, env.alice, env.op1.address, POV(25))
      await expect(by(escrow, env.op1).redeem(second.rv)).to.changeTokenBalances(
        ethers,
        token,
        [env.op1, escrow],
        [0, 0]
      )
      expect(await escrow.accruedFees()).to.equal(fee(POV(25)))
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(25))
      expect(await escrow.laneOf(env.alice.address, env.op1.address)).to.deep.equal([
        POV(75),
        POV(25),
        0n
      ])
      expect((await escrow.depositOf(env.alice.address))[0]).to.equal(0)
      expect(await escrow.totalDeposits()).to.equal(POV(75))
      const net = POV(25) - fee(POV(10)) - fee(POV(15))
      expect(await escrow.earningsOf(env.op1.address)).to.deep.equal([net, 0n, true])
      expect(await escrow.pendingEarnings(env.op1.address)).to.equal(net)
      // the escrow holds deposits + accrued fees + pending earnings
      expect(await token.balanceOf(escrow)).to.equal(POV(75) + fee(POV(10)) + fee(POV(15)) + net)
    })
    it("accepts the payer's 65-byte signature converted to the compact form (ERC-2098), either y-parity", async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const parities = new Set<number>()
      for (let i = 1; i <= 8 && parities.size < 2; i++) {
        const { sig, rv } = await voucher(env, env.alice, env.op1.address, POV(i))
        parities.add(ethers.Signature.from(sig).yParity)
        await expect(by(escrow, env.op1).redeem(rv)).to.emit(escrow, 'VoucherRedeemed')
      }
      expect(parities.size).to.equal(2)
    })
    it('rejects a forged signature (signed by someone else)', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      // the attacker signs a voucher that claims alice as payer
      const v = { payer: env.alice.address, payee: env.op1.address, cumulativeAmount: POV(10) }
      const rv = toRedeemable({ ...v, signature: await signVoucher(env.attacker, env.domain, v) })
      await expect(by(escrow, env.op1).redeem(rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
        .withArgs(env.alice.address, env.attacker.address)
    })
    it('rejects a tampered amount or payer, and malformed or high-s signatures', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(1))
      await expect(
        by(escrow, env.op1).redeem({ ...rv, cumulativeAmount: POV(90) })
      ).to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
      await expect(
        by(escrow, env.op1).redeem({ ...rv, payer: env.bob.address })
      ).to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
      await expect(by(escrow, env.op1).redeem({ ...rv, r: ethers.ZeroHash, vs: ethers.ZeroHash }))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
        .withArgs(env.alice.address, ethers.ZeroAddress)
      // s in the upper half of the curve order (malleable form, EIP-2) is refused; the compact form
      // cannot even carry most of them (s ≥ 2^255 would overlap the y-parity bit)
      const halfN = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n
      await expect(by(escrow, env.op1).redeem({ ...rv, vs: ethers.toBeHex(halfN + 1n, 32) }))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
        .withArgs(env.alice.address, ethers.ZeroAddress)
    })
    it('a payee cannot redeem a voucher signed for someone else (the caller is the payee in the digest)', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { v, sig, rv } = await voucher(env, env.alice, env.op1.address, POV(10))
      // the digest the escrow checks names the caller (attacker) as payee: the signature recovers to a stranger
      const recovered = ethers.recoverAddress(
        voucherDigest(env.domain, { ...v, payee: env.attacker.address }),
        sig
      )
      await expect(by(escrow, env.attacker).redeem(rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
        .withArgs(env.alice.address, recovered)
      expect(await escrow.paid(env.alice.address, env.attacker.address)).to.equal(0)
      expect(await escrow.pendingEarnings(env.attacker.address)).to.equal(0)
      // the rightful payee still can
      await expect(by(escrow, env.op1).redeem(rv)).to.emit(escrow, 'VoucherRedeemed')
    })
    it('rejects a replayed or lower cumulative voucher', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const low = await voucher(env, env.alice, env.op1.address, POV(5))
      const high = await voucher(env, env.alice, env.op1.address, POV(10))
      await by(escrow, env.op1).redeem(high.rv)
      await expect(by(escrow, env.op1).redeem(high.rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowStaleVoucher')
        .withArgs(env.alice.address, env.op1.address, POV(10), POV(10))
      await expect(by(escrow, env.op1).redeem(low.rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowStaleVoucher')
        .withArgs(env.alice.address, env.op1.address, POV(5), POV(10))
    })
    it('over-deposit: pays what is left, keeps the rest owed, pays it after a top-up', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(10))
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(25))
      await expect(by(escrow, env.op1).redeem(rv))
        .to.emit(escrow, 'VoucherRedeemed')
        .withArgs(env.alice.address, env.op1.address, POV(25), POV(10), fee(POV(10)), POV(15))
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(10))
      await expect(by(escrow, env.op1).redeem(rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit')
        .withArgs(env.alice.address, POV(15), 0)
      await depositFor(env, env.alice, POV(50))
      await expect(by(escrow, env.op1).redeem(rv))
        .to.emit(escrow, 'VoucherRedeemed')
        .withArgs(env.alice.address, env.op1.address, POV(25), POV(15), fee(POV(15)), 0)
      expect(await escrow.pendingEarnings(env.op1.address)).to.equal(
        POV(25) - fee(POV(10)) - fee(POV(15))
      )
    })
    it("reverts when a payee's cumulative earnings would not fit 120 bits", async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const huge = 2n ** 121n
      await by(token, env.timelock).setMintingEnabled(true)
      await by(token, env.timelock).mint(env.bob.address, huge)
      await depositFor(env, env.bob, huge)
      const { rv } = await voucher(env, env.bob, env.op1.address, huge)
      await expect(by(escrow, env.op1).redeem(rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowAmountTooLarge')
        .withArgs(huge - fee(huge))
    })
  })

  describe('redeemBatch', () => {
    it('redeems vouchers of several payers in one transaction, one credit', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await depositFor(env, env.bob, POV(100))
      const a = await voucher(env, env.alice, env.op1.address, POV(10))
      const b = await voucher(env, env.bob, env.op1.address, POV(30))
      const tx = by(escrow, env.op1).redeemBatch([a.rv, b.rv])
      await expect(tx)
        .to.emit(escrow, 'VoucherRedeemed')
        .withArgs(env.alice.address, env.op1.address, POV(10), POV(10), fee(POV(10)), 0)
      await expect(tx)
        .to.emit(escrow, 'VoucherRedeemed')
        .withArgs(env.bob.address, env.op1.address, POV(30), POV(30), fee(POV(30)), 0)
      await expect(tx).to.changeTokenBalances(ethers, token, [env.op1, escrow], [0, 0])
      expect(await escrow.totalDeposits()).to.equal(POV(160))
      expect(await escrow.accruedFees()).to.equal(fee(POV(10)) + fee(POV(30)))
      expect(await escrow.pendingEarnings(env.op1.address)).to.equal(
        POV(40) - fee(POV(10)) - fee(POV(30))
      )
      expect(await token.balanceOf(escrow)).to.equal(POV(200))
    })
    it('reverts on an empty batch; skips (VoucherSkipped) a forged, foreign or stale voucher and pays the rest', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await depositFor(env, env.bob, POV(100), env.op2.address)
      const a = await voucher(env, env.alice, env.op1.address, POV(10))
      const foreign = await voucher(env, env.bob, env.op2.address, POV(10))
      await expect(by(escrow, env.op1).redeemBatch([])).to.be.revertedWithCustomError(
        escrow,
        'EscrowEmptyBatch'
      )
      const tx = by(escrow, env.op1).redeemBatch([a.rv, foreign.rv, a.rv])
      await expect(tx)
        .to.emit(escrow, 'VoucherSkipped')
        .withArgs(env.bob.address, env.op1.address, POV(10), SKIP.InvalidSignature)
      await expect(tx)
        .to.emit(escrow, 'VoucherSkipped')
        .withArgs(env.alice.address, env.op1.address, POV(10), SKIP.Stale)
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(10))
      expect(await escrow.paid(env.bob.address, env.op2.address)).to.equal(0)
      expect(await escrow.pendingEarnings(env.op1.address)).to.equal(POV(10) - fee(POV(10)))
    })
  })

  describe('earnings (pull payments)', () => {
    it('withdrawEarnings sends what is pending, emits EarningsWithdrawn; a second withdrawal has nothing to send', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await by(escrow, env.op1).redeem((await voucher(env, env.alice, env.op1.address, POV(40))).rv)
      const net = POV(40) - fee(POV(40))
      const tx = by(escrow, env.op1).withdrawEarnings()
      await expect(tx).to.emit(escrow, 'EarningsWithdrawn').withArgs(env.op1.address, net)
      await expect(tx).to.changeTokenBalances(ethers, token, [env.op1, escrow], [net, -net])
      expect(await escrow.earningsOf(env.op1.address)).to.deep.equal([net, net, true])
      expect(await escrow.pendingEarnings(env.op1.address)).to.equal(0)
      await expect(by(escrow, env.op1).withdrawEarnings())
        .to.be.revertedWithCustomError(escrow, 'EscrowNothingToWithdraw')
        .withArgs(env.op1.address)
      expect(await token.balanceOf(escrow)).to.equal(POV(60) + fee(POV(40)))
    })
    it('withdrawEarnings reverts when nothing was ever credited, and pays only what was credited since the last one', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await expect(by(escrow, env.op2).withdrawEarnings())
        .to.be.revertedWithCustomError(escrow, 'EscrowNothingToWithdraw')
        .withArgs(env.op2.address)
      await depositFor(env, env.alice, POV(100), env.op2.address)
      await by(escrow, env.op2).redeem((await voucher(env, env.alice, env.op2.address, POV(10))).rv)
      await by(escrow, env.op2).withdrawEarnings()
      await by(escrow, env.op2).redeem((await voucher(env, env.alice, env.op2.address, POV(30))).rv)
      await expect(by(escrow, env.op2).withdrawEarnings()).to.changeTokenBalance(
        ethers,
        token,
        env.op2,
        POV(20) - fee(POV(20))
      )
      expect(await escrow.earningsOf(env.op2.address)).to.deep.equal([
        POV(30) - fee(POV(10)) - fee(POV(20)),
        POV(30) - fee(POV(10)) - fee(POV(20)),
        true
      ])
    })
    it("earnings are the payee's: the payer's withdrawal does not touch them, and nobody else can take them", async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await by(escrow, env.op1).redeem((await voucher(env, env.alice, env.op1.address, POV(10))).rv)
      await by(escrow, env.alice).unlock()
      await time.increase(UNLOCK_PERIOD)
      await expect(by(escrow, env.alice).withdraw([env.op1.address])).to.changeTokenBalance(
        ethers,
        token,
        env.alice,
        POV(90)
      )
      await expect(by(escrow, env.attacker).withdrawEarnings())
        .to.be.revertedWithCustomError(escrow, 'EscrowNothingToWithdraw')
        .withArgs(env.attacker.address)
      await expect(by(escrow, env.op1).withdrawEarnings()).to.changeTokenBalance(
        ethers,
        token,
        env.op1,
        POV(10) - fee(POV(10))
      )
      expect(await token.balanceOf(escrow)).to.equal(fee(POV(10)))
    })
    it('openEarningsAccount opens once (EarningsAccountOpened), then is a no-op; a credit opens it too', async () => {
      const env = await load()
      const { escrow } = env.contracts
      expect(await escrow.earningsOf(env.op1.address)).to.deep.equal([0n, 0n, false])
      await expect(by(escrow, env.op1).openEarningsAccount())
        .to.emit(escrow, 'EarningsAccountOpened')
        .withArgs(env.op1.address)
      expect(await escrow.earningsOf(env.op1.address)).to.deep.equal([0n, 0n, true])
      await expect(by(escrow, env.op1).openEarningsAccount()).not.to.emit(
        escrow,
        'EarningsAccountOpened'
      )
      await expect(by(escrow, env.op1).withdrawEarnings()).to.be.revertedWithCustomError(
        escrow,
        'EscrowNothingToWithdraw'
      )
      // op2 never opened: its first credit does
      await depositFor(env, env.alice, POV(10), env.op2.address)
      await by(escrow, env.op2).redeem((await voucher(env, env.alice, env.op2.address, POV(1))).rv)
      expect((await escrow.earningsOf(env.op2.address))[2]).to.equal(true)
      await expect(by(escrow, env.op2).openEarningsAccount()).not.to.emit(
        escrow,
        'EarningsAccountOpened'
      )
    })
    it('an opened account makes the first redemption cheaper by the slot write it saves', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await depositFor(env, env.bob, POV(100), env.op2.address)
      await by(escrow, env.op1).openEarningsAccount()
      const opened = await (
        await by(escrow, env.op1).redeem(
          (await voucher(env, env.alice, env.op1.address, POV(1))).rv
        )
      ).wait()
      const unopened = await (
        await by(escrow, env.op2).redeem((await voucher(env, env.bob, env.op2.address, POV(1))).rv)
      ).wait()
      expect(unopened!.gasUsed - opened!.gasUsed).to.be.within(17_000n, 17_200n)
    })
  })

  describe('unlock and withdraw', () => {
    it('unlock → payees can still redeem → withdraw after the period', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const tx = by(escrow, env.alice).unlock()
      const unlockAt = BigInt(await time.latest()) + 1n + BigInt(UNLOCK_PERIOD)
      await expect(tx).to.emit(escrow, 'UnlockStarted').withArgs(env.alice.address, unlockAt)
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(10))
      await expect(by(escrow, env.op1).redeem(rv)).to.emit(escrow, 'VoucherRedeemed')
      await time.increaseTo(unlockAt)
      await expect(by(escrow, env.alice).withdraw([env.op1.address])).to.changeTokenBalance(
        ethers,
        token,
        env.alice,
        POV(90)
      )
      expect(await escrow.depositOf(env.alice.address)).to.deep.equal([0n, 0n])
    })
    it('emits Withdrawn', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(7))
      await by(escrow, env.alice).unlock()
      await time.increase(UNLOCK_PERIOD)
      await expect(by(escrow, env.alice).withdraw([env.op1.address]))
        .to.emit(escrow, 'Withdrawn')
        .withArgs(env.alice.address, POV(7))
    })
    it('rejects a withdrawal before the unlock period ends, and without unlock', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await expect(by(escrow, env.alice).withdraw([env.op1.address]))
        .to.be.revertedWithCustomError(escrow, 'EscrowNotUnlocking')
        .withArgs(env.alice.address)
      await by(escrow, env.alice).unlock()
      const [, unlockAt] = await escrow.depositOf(env.alice.address)
      await time.increaseTo(unlockAt - 2n)
      await expect(by(escrow, env.alice).withdraw([env.op1.address]))
        .to.be.revertedWithCustomError(escrow, 'EscrowUnlockPending')
        .withArgs(env.alice.address, unlockAt, unlockAt - 1n)
    })
    it('rejects a redeem after the withdrawal', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(10))
      await by(escrow, env.alice).unlock()
      await time.increase(UNLOCK_PERIOD)
      await by(escrow, env.alice).withdraw([env.op1.address])
      await expect(by(escrow, env.op1).redeem(rv))
        .to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit')
        .withArgs(env.alice.address, POV(10), 0)
    })
    it('unlock reverts when already unlocking; cancelUnlock', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await expect(by(escrow, env.alice).cancelUnlock()).to.be.revertedWithCustomError(
        escrow,
        'EscrowNotUnlocking'
      )
      await depositFor(env, env.alice, POV(1))
      await by(escrow, env.alice).unlock()
      const [, unlockAt] = await escrow.depositOf(env.alice.address)
      await expect(by(escrow, env.alice).unlock())
        .to.be.revertedWithCustomError(escrow, 'EscrowAlreadyUnlocking')
        .withArgs(env.alice.address, unlockAt)
      await expect(by(escrow, env.alice).cancelUnlock())
        .to.emit(escrow, 'UnlockCancelled')
        .withArgs(env.alice.address)
      expect((await escrow.depositOf(env.alice.address))[1]).to.equal(0)
    })
  })

  describe('sweepFees', () => {
    it('anyone sends the accrued fees to the treasury; nothing to send is a no-op', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const treasury = env.deployment.params.treasury
      await expect(by(escrow, env.attacker).sweepFees()).not.to.emit(escrow, 'FeesSwept')
      await depositFor(env, env.alice, POV(100))
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(50))
      await by(escrow, env.op1).redeem(rv)
      const tx = by(escrow, env.attacker).sweepFees()
      await expect(tx)
        .to.emit(escrow, 'FeesSwept')
        .withArgs(treasury, fee(POV(50)))
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [treasury, escrow],
        [fee(POV(50)), -fee(POV(50))]
      )
      expect(await escrow.accruedFees()).to.equal(0)
      expect(await token.balanceOf(escrow)).to.equal(POV(50) + POV(50) - fee(POV(50))) // deposits + op1's pending earnings
    })
    it('setTreasury first sweeps to the outgoing treasury', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { rv } = await voucher(env, env.alice, env.op1.address, POV(50))
      await by(escrow, env.op1).redeem(rv)
      await expect(by(escrow, env.timelock).setTreasury(env.bob.address))
        .to.emit(escrow, 'FeesSwept')
        .withArgs(env.deployment.params.treasury, fee(POV(50)))
    })
  })

  describe('governance parameters', () => {
    it('the timelock sets fee, unlock period and treasury, with events', async () => {
      const env = await load()
      const escrow = by(env.contracts.escrow, env.timelock)
      await expect(escrow.setFeeBps(250)).to.emit(escrow, 'FeeBpsSet').withArgs(FEE_BPS, 250)
      await expect(escrow.setUnlockPeriod(7200))
        .to.emit(escrow, 'UnlockPeriodSet')
        .withArgs(UNLOCK_PERIOD, 7200)
      await expect(escrow.setTreasury(env.bob.address))
        .to.emit(escrow, 'TreasurySet')
        .withArgs(env.deployment.params.treasury, env.bob.address)
      expect(await escrow.feeBps()).to.equal(250)
      expect(await escrow.unlockPeriod()).to.equal(7200)
      expect(await escrow.treasury()).to.equal(env.bob.address)
    })
    it('rejects invalid values', async () => {
      const env = await load()
      const escrow = by(env.contracts.escrow, env.timelock)
      await expect(escrow.setFeeBps(2001))
        .to.be.revertedWithCustomError(escrow, 'EscrowFeeTooHigh')
        .withArgs(2001, 2000)
      await expect(escrow.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        escrow,
        'EscrowInvalidTreasury'
      )
    })
    it('rejects parameter changes without governance', async () => {
      const env = await load()
      for (const who of [env.attacker, env.deployer]) {
        const escrow = by(env.contracts.escrow, who)
        await expect(escrow.setFeeBps(0))
          .to.be.revertedWithCustomError(escrow, 'OwnableUnauthorizedAccount')
          .withArgs(who.address)
        await expect(escrow.setUnlockPeriod(0)).to.be.revertedWithCustomError(
          escrow,
          'OwnableUnauthorizedAccount'
        )
        await expect(escrow.setTreasury(who.address)).to.be.revertedWithCustomError(
          escrow,
          'OwnableUnauthorizedAccount'
        )
      }
    })
  })

  describe('views', () => {
    it('ERC-5267 domain, digest and getters match protocol/voucher.ts', async () => {
      const env = await load()
      const { escrow } = env.contracts
      const domain = await readVoucherDomain(escrow)
      expect(domain).to.deep.equal(env.domain)
      const v = { payer: env.alice.address, payee: env.op1.address, cumulativeAmount: 123n }
      expect(await escrow.voucherDigest(v)).to.equal(voucherDigest(domain, v))
      expect(await escrow.token()).to.equal(env.deployment.contracts.token)
      expect(await escrow.MAX_FEE_BPS()).to.equal(2000)
      expect(await escrow.earningsOf(env.op3.address)).to.deep.equal([0n, 0n, false])
      expect(await escrow.pendingEarnings(env.op3.address)).to.equal(0)
    })
    it('chain/vouchers toRedeemable: compact form of the 65-byte signature; refuses amounts over 128 bits', async () => {
      const env = await load()
      const { v, sig, rv } = await voucher(env, env.alice, env.op1.address, 5n)
      const s = ethers.Signature.from(sig)
      expect(rv).to.deep.equal({ payer: v.payer, cumulativeAmount: 5n, r: s.r, vs: s.yParityAndS })
      expect(ethers.Signature.from({ r: rv.r, yParityAndS: rv.vs }).serialized).to.equal(sig)
      expect(() => toRedeemable({ ...v, cumulativeAmount: 2n ** 128n, signature: sig })).to.throw(
        RangeError
      )
      expect(() => toRedeemable({ ...v, signature: '0x1234' })).to.throw()
    })
  })
})
