import { describe, it } from 'node:test'
import { expect } from 'chai'
import { by, ethers, load, permit, POV } from './fixture.js'

describe('PovToken', () => {
  it('mints the whole supply to the treasury at deployment; votes and permit work', async () => {
    const env = await load()
    const { token } = env.contracts
    expect(await token.totalSupply()).to.equal(BigInt(env.deployment.params.initialSupply))
    expect(await token.name()).to.equal('POV')
    expect(await token.symbol()).to.equal('POV')
    expect(await token.owner()).to.equal(env.deployment.contracts.timelock)
    expect(await token.mintingEnabled()).to.equal(false)
    await expect(by(token, env.alice).delegate(env.alice.address))
      .to.emit(token, 'DelegateChanged')
      .withArgs(env.alice.address, ethers.ZeroAddress, env.alice.address)
    expect(await token.getVotes(env.alice.address)).to.equal(POV(100_000))
    const p = await permit(env, env.alice, env.bob.address, POV(3))
    await expect(
      token.permit(env.alice.address, env.bob.address, POV(3), p.deadline, p.v, p.r, p.s)
    )
      .to.emit(token, 'Approval')
      .withArgs(env.alice.address, env.bob.address, POV(3))
    expect(await token.clock()).to.equal(await ethers.provider.getBlockNumber())
  })
  it('has no mint path unless governance enables one', async () => {
    const env = await load()
    const { token } = env.contracts
    await expect(by(token, env.attacker).mint(env.attacker.address, 1n))
      .to.be.revertedWithCustomError(token, 'OwnableUnauthorizedAccount')
      .withArgs(env.attacker.address)
    await expect(by(token, env.attacker).setMintingEnabled(true)).to.be.revertedWithCustomError(
      token,
      'OwnableUnauthorizedAccount'
    )
    const gov = by(token, env.timelock)
    await expect(gov.mint(env.bob.address, 1n)).to.be.revertedWithCustomError(
      token,
      'TokenMintingDisabled'
    )
    await expect(gov.setMintingEnabled(true))
      .to.emit(token, 'MintingEnabledSet')
      .withArgs(false, true)
    await expect(gov.mint(env.bob.address, 5n))
      .to.emit(token, 'Transfer')
      .withArgs(ethers.ZeroAddress, env.bob.address, 5n)
  })
  it('refuses a zero treasury', async () => {
    const env = await load()
    const factory = await ethers.getContractFactory('PovToken')
    await expect(factory.deploy(ethers.ZeroAddress, 1n, env.deployer.address))
      .to.be.revertedWithCustomError(env.contracts.token, 'TokenInvalidTreasury')
      .withArgs(ethers.ZeroAddress)
  })
})
