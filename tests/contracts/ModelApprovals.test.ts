import { describe, it } from 'node:test'
import { expect } from 'chai'
import { by, ethers, load, MODEL, MODEL_ID, OTHER_MODEL_ID } from './fixture.js'

const info = { name: 'other', layers: 32, experts: 8, shardCount: 8, uri: 'ipfs://x' }

describe('ModelApprovals', () => {
  it('deploy-time approvals are listed with their metadata', async () => {
    const env = await load()
    const { models } = env.contracts
    expect(await models.owner()).to.equal(env.deployment.contracts.timelock)
    expect(await models.isApproved(MODEL_ID)).to.equal(true)
    expect(await models.approvedModels()).to.deep.equal([MODEL_ID])
    const m = await models.modelInfo(MODEL_ID)
    expect([m.name, m.layers, m.experts, m.shardCount, m.uri]).to.deep.equal([
      MODEL.name,
      4n,
      8n,
      8n,
      MODEL.uri
    ])
  })
  it('the timelock approves and revokes, with events', async () => {
    const env = await load()
    const models = by(env.contracts.models, env.timelock)
    await expect(models.approveModel(OTHER_MODEL_ID, info))
      .to.emit(models, 'ModelApproved')
      .withArgs(OTHER_MODEL_ID, 'other', 32, 8, 8, 'ipfs://x')
    expect(await models.approvedModels()).to.deep.equal([MODEL_ID, OTHER_MODEL_ID])
    await expect(models.revokeModel(MODEL_ID)).to.emit(models, 'ModelRevoked').withArgs(MODEL_ID)
    expect(await models.approvedModels()).to.deep.equal([OTHER_MODEL_ID])
    expect(await models.isApproved(MODEL_ID)).to.equal(false)
    await expect(models.modelInfo(MODEL_ID))
      .to.be.revertedWithCustomError(models, 'ModelsNotApproved')
      .withArgs(MODEL_ID)
  })
  it('reverts: already approved, not approved, invalid metadata', async () => {
    const env = await load()
    const models = by(env.contracts.models, env.timelock)
    await expect(models.approveModel(MODEL_ID, info))
      .to.be.revertedWithCustomError(models, 'ModelsAlreadyApproved')
      .withArgs(MODEL_ID)
    await expect(models.revokeModel(OTHER_MODEL_ID))
      .to.be.revertedWithCustomError(models, 'ModelsNotApproved')
      .withArgs(OTHER_MODEL_ID)
    for (const bad of [
      { ...info, name: '' },
      { ...info, layers: 0 },
      { ...info, experts: 0 },
      { ...info, shardCount: 0 }
    ]) {
      await expect(models.approveModel(OTHER_MODEL_ID, bad))
        .to.be.revertedWithCustomError(models, 'ModelsInvalidMetadata')
        .withArgs(OTHER_MODEL_ID)
    }
    await expect(models.approveModel(ethers.ZeroHash, info)).to.be.revertedWithCustomError(
      models,
      'ModelsInvalidMetadata'
    )
  })
  it('rejects approving or revoking without governance', async () => {
    const env = await load()
    for (const who of [env.attacker, env.deployer]) {
      const models = by(env.contracts.models, who)
      await expect(models.approveModel(OTHER_MODEL_ID, info))
        .to.be.revertedWithCustomError(models, 'OwnableUnauthorizedAccount')
        .withArgs(who.address)
      await expect(models.revokeModel(MODEL_ID)).to.be.revertedWithCustomError(
        models,
        'OwnableUnauthorizedAccount'
      )
    }
  })
})
