import { describe, it } from 'node:test'
import { expect } from 'chai'
import { by, depositFor, ethers, FEE_BPS, load, networkHelpers, permit, POV, UNLOCK_PERIOD, voucher } from './fixture.js'
import { readVoucherDomain, signVoucher, voucherDigest } from '../../protocol/voucher.js'

const { time } = networkHelpers
const fee = (x: bigint) => (x * FEE_BPS) / 10_000n

describe('PovEscrow', () => {
  describe('deposit', () => {
    it('pulls the tokens, credits the payer and emits Deposited', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await by(token, env.alice).approve(escrow, POV(10))
      await expect(by(escrow, env.alice).deposit(POV(4))).to.emit(escrow, 'Deposited').withArgs(env.alice.address, POV(4), POV(4))
      await expect(by(escrow, env.alice).deposit(POV(6))).to.emit(escrow, 'Deposited').withArgs(env.alice.address, POV(6), POV(10))
      expect((await escrow.depositOf(env.alice.address))[0]).to.equal(POV(10))
      expect(await escrow.totalDeposits()).to.equal(POV(10))
      expect(await token.balanceOf(escrow)).to.equal(POV(10))
    })
    it('reverts on zero and without allowance', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await expect(by(escrow, env.alice).deposit(0)).to.be.revertedWithCustomError(escrow, 'EscrowZeroAmount')
      await expect(by(escrow, env.alice).deposit(1)).to.be.revertedWithCustomError(token, 'ERC20InsufficientAllowance')
    })
    it('reverts when the total would not fit 128 bits', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const huge = 2n ** 128n
      await by(token, env.timelock).setMintingEnabled(true)
      await by(token, env.timelock).mint(env.bob.address, huge)
      await by(token, env.bob).approve(escrow, huge)
      await expect(by(escrow, env.bob).deposit(huge)).to.be.revertedWithCustomError(escrow, 'EscrowAmountTooLarge').withArgs(huge)
    })
    it('depositWithPermit needs no prior approve', async () => {
      const env = await load()
      const { escrow } = env.contracts
      const p = await permit(env, env.alice, env.deployment.contracts.escrow, POV(5))
      await expect(by(escrow, env.alice).depositWithPermit(POV(5), p.deadline, p.v, p.r, p.s))
        .to.emit(escrow, 'Deposited').withArgs(env.alice.address, POV(5), POV(5))
    })
    it('depositWithPermit still deposits when the permit was front-run', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      const p = await permit(env, env.alice, env.deployment.contracts.escrow, POV(5))
      await by(token, env.attacker).permit(env.alice.address, escrow, POV(5), p.deadline, p.v, p.r, p.s)
      await expect(by(escrow, env.alice).depositWithPermit(POV(5), p.deadline, p.v, p.r, p.s)).to.emit(escrow, 'Deposited')
    })
  })

  describe('redeem', () => {
    it('pays cumulative minus already paid; the fee accrues for the treasury', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const first = await voucher(env, env.alice, env.op1.address, POV(10))
      await expect(by(escrow, env.op1).redeem(first.v, first.sig))
        .to.emit(escrow, 'VoucherRedeemed').withArgs(env.alice.address, env.op1.address, POV(10), POV(10), fee(POV(10)), 0)
      const second = await voucher(env, env.alice, env.op1.address, POV(25))
      await expect(by(escrow, env.op1).redeem(second.v, second.sig)).to.changeTokenBalances(
        ethers, token, [env.op1, escrow], [POV(15) - fee(POV(15)), -(POV(15) - fee(POV(15)))],
      )
      expect(await escrow.accruedFees()).to.equal(fee(POV(25)))
      expect(await token.balanceOf(escrow)).to.equal(POV(75) + fee(POV(25)))
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(25))
      expect((await escrow.depositOf(env.alice.address))[0]).to.equal(POV(75))
      expect(await escrow.totalDeposits()).to.equal(POV(75))
    })
    it('rejects a forged signature (signed by someone else)', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      // the attacker signs a voucher that claims alice as payer
      const v = { payer: env.alice.address, payee: env.op1.address, cumulativeAmount: POV(10) }
      const sig = await signVoucher(env.attacker, env.domain, v)
      await expect(by(escrow, env.op1).redeem(v, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature').withArgs(env.alice.address, env.attacker.address)
    })
    it('rejects a tampered amount and a malformed signature', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(1))
      await expect(by(escrow, env.op1).redeem({ ...v, cumulativeAmount: POV(90) }, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
      await expect(by(escrow, env.op1).redeem(v, '0x1234'))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature').withArgs(env.alice.address, ethers.ZeroAddress)
    })
    it('rejects a voucher for another payee', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(10))
      await expect(by(escrow, env.attacker).redeem(v, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowNotPayee').withArgs(env.op1.address, env.attacker.address)
      // rewriting the payee breaks the signature
      await expect(by(escrow, env.attacker).redeem({ ...v, payee: env.attacker.address }, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowInvalidSignature')
    })
    it('rejects a replayed or lower cumulative voucher', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const low = await voucher(env, env.alice, env.op1.address, POV(5))
      const high = await voucher(env, env.alice, env.op1.address, POV(10))
      await by(escrow, env.op1).redeem(high.v, high.sig)
      await expect(by(escrow, env.op1).redeem(high.v, high.sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowStaleVoucher').withArgs(env.alice.address, env.op1.address, POV(10), POV(10))
      await expect(by(escrow, env.op1).redeem(low.v, low.sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowStaleVoucher').withArgs(env.alice.address, env.op1.address, POV(5), POV(10))
    })
    it('over-deposit: pays what is left, keeps the rest owed, pays it after a top-up', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(10))
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(25))
      await expect(by(escrow, env.op1).redeem(v, sig))
        .to.emit(escrow, 'VoucherRedeemed').withArgs(env.alice.address, env.op1.address, POV(25), POV(10), fee(POV(10)), POV(15))
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(POV(10))
      await expect(by(escrow, env.op1).redeem(v, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit').withArgs(env.alice.address, POV(15), 0)
      await depositFor(env, env.alice, POV(50))
      await expect(by(escrow, env.op1).redeem(v, sig))
        .to.emit(escrow, 'VoucherRedeemed').withArgs(env.alice.address, env.op1.address, POV(25), POV(15), fee(POV(15)), 0)
    })
  })

  describe('redeemBatch', () => {
    it('redeems vouchers of several payers in one transaction', async () => {
      const env = await load()
      const { escrow, token } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await depositFor(env, env.bob, POV(100))
      const a = await voucher(env, env.alice, env.op1.address, POV(10))
      const b = await voucher(env, env.bob, env.op1.address, POV(30))
      const tx = by(escrow, env.op1).redeemBatch([a.v, b.v], [a.sig, b.sig])
      await expect(tx).to.emit(escrow, 'VoucherRedeemed').withArgs(env.alice.address, env.op1.address, POV(10), POV(10), fee(POV(10)), 0)
      await expect(tx).to.emit(escrow, 'VoucherRedeemed').withArgs(env.bob.address, env.op1.address, POV(30), POV(30), fee(POV(30)), 0)
      expect(await escrow.totalDeposits()).to.equal(POV(160))
      expect(await token.balanceOf(escrow)).to.equal(POV(160) + fee(POV(40)))
    })
    it('reverts on empty, mismatched, or any invalid voucher (atomic)', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const a = await voucher(env, env.alice, env.op1.address, POV(10))
      const bad = await voucher(env, env.alice, env.op2.address, POV(10))
      await expect(by(escrow, env.op1).redeemBatch([], [])).to.be.revertedWithCustomError(escrow, 'EscrowEmptyBatch')
      await expect(by(escrow, env.op1).redeemBatch([a.v], [])).to.be.revertedWithCustomError(escrow, 'EscrowLengthMismatch').withArgs(1, 0)
      await expect(by(escrow, env.op1).redeemBatch([a.v, bad.v], [a.sig, bad.sig])).to.be.revertedWithCustomError(escrow, 'EscrowNotPayee')
      expect(await escrow.paid(env.alice.address, env.op1.address)).to.equal(0)
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
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(10))
      await expect(by(escrow, env.op1).redeem(v, sig)).to.emit(escrow, 'VoucherRedeemed')
      await time.increaseTo(unlockAt)
      await expect(by(escrow, env.alice).withdraw()).to.changeTokenBalance(ethers, token, env.alice, POV(90))
      expect(await escrow.depositOf(env.alice.address)).to.deep.equal([0n, 0n])
    })
    it('emits Withdrawn', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(7))
      await by(escrow, env.alice).unlock()
      await time.increase(UNLOCK_PERIOD)
      await expect(by(escrow, env.alice).withdraw()).to.emit(escrow, 'Withdrawn').withArgs(env.alice.address, POV(7))
    })
    it('rejects a withdrawal before the unlock period ends, and without unlock', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      await expect(by(escrow, env.alice).withdraw()).to.be.revertedWithCustomError(escrow, 'EscrowNotUnlocking').withArgs(env.alice.address)
      await by(escrow, env.alice).unlock()
      const [, unlockAt] = await escrow.depositOf(env.alice.address)
      await time.increaseTo(unlockAt - 2n)
      await expect(by(escrow, env.alice).withdraw())
        .to.be.revertedWithCustomError(escrow, 'EscrowUnlockPending').withArgs(env.alice.address, unlockAt, unlockAt - 1n)
    })
    it('rejects a redeem after the withdrawal', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(10))
      await by(escrow, env.alice).unlock()
      await time.increase(UNLOCK_PERIOD)
      await by(escrow, env.alice).withdraw()
      await expect(by(escrow, env.op1).redeem(v, sig))
        .to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit').withArgs(env.alice.address, POV(10), 0)
    })
    it('unlock reverts without deposit or when already unlocking; cancelUnlock', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await expect(by(escrow, env.alice).unlock()).to.be.revertedWithCustomError(escrow, 'EscrowInsufficientDeposit')
      await expect(by(escrow, env.alice).cancelUnlock()).to.be.revertedWithCustomError(escrow, 'EscrowNotUnlocking')
      await depositFor(env, env.alice, POV(1))
      await by(escrow, env.alice).unlock()
      const [, unlockAt] = await escrow.depositOf(env.alice.address)
      await expect(by(escrow, env.alice).unlock()).to.be.revertedWithCustomError(escrow, 'EscrowAlreadyUnlocking').withArgs(env.alice.address, unlockAt)
      await expect(by(escrow, env.alice).cancelUnlock()).to.emit(escrow, 'UnlockCancelled').withArgs(env.alice.address)
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
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(50))
      await by(escrow, env.op1).redeem(v, sig)
      const tx = by(escrow, env.attacker).sweepFees()
      await expect(tx).to.emit(escrow, 'FeesSwept').withArgs(treasury, fee(POV(50)))
      await expect(tx).to.changeTokenBalances(ethers, token, [treasury, escrow], [fee(POV(50)), -fee(POV(50))])
      expect(await escrow.accruedFees()).to.equal(0)
      expect(await token.balanceOf(escrow)).to.equal(POV(50))
    })
    it('setTreasury first sweeps to the outgoing treasury', async () => {
      const env = await load()
      const { escrow } = env.contracts
      await depositFor(env, env.alice, POV(100))
      const { v, sig } = await voucher(env, env.alice, env.op1.address, POV(50))
      await by(escrow, env.op1).redeem(v, sig)
      await expect(by(escrow, env.timelock).setTreasury(env.bob.address))
        .to.emit(escrow, 'FeesSwept').withArgs(env.deployment.params.treasury, fee(POV(50)))
    })
  })

  describe('governance parameters', () => {
    it('the timelock sets fee, unlock period and treasury, with events', async () => {
      const env = await load()
      const escrow = by(env.contracts.escrow, env.timelock)
      await expect(escrow.setFeeBps(250)).to.emit(escrow, 'FeeBpsSet').withArgs(FEE_BPS, 250)
      await expect(escrow.setUnlockPeriod(10)).to.emit(escrow, 'UnlockPeriodSet').withArgs(UNLOCK_PERIOD, 10)
      await expect(escrow.setTreasury(env.bob.address)).to.emit(escrow, 'TreasurySet').withArgs(env.deployment.params.treasury, env.bob.address)
      expect(await escrow.feeBps()).to.equal(250)
      expect(await escrow.unlockPeriod()).to.equal(10)
      expect(await escrow.treasury()).to.equal(env.bob.address)
    })
    it('rejects invalid values', async () => {
      const env = await load()
      const escrow = by(env.contracts.escrow, env.timelock)
      await expect(escrow.setFeeBps(2001)).to.be.revertedWithCustomError(escrow, 'EscrowFeeTooHigh').withArgs(2001, 2000)
      await expect(escrow.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(escrow, 'EscrowInvalidTreasury')
    })
    it('rejects parameter changes without governance', async () => {
      const env = await load()
      for (const who of [env.attacker, env.deployer]) {
        const escrow = by(env.contracts.escrow, who)
        await expect(escrow.setFeeBps(0)).to.be.revertedWithCustomError(escrow, 'OwnableUnauthorizedAccount').withArgs(who.address)
        await expect(escrow.setUnlockPeriod(0)).to.be.revertedWithCustomError(escrow, 'OwnableUnauthorizedAccount')
        await expect(escrow.setTreasury(who.address)).to.be.revertedWithCustomError(escrow, 'OwnableUnauthorizedAccount')
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
    })
  })
})
