import { describe, it } from 'node:test'
import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  by,
  ethers,
  load,
  MIN_STAKE,
  MODEL_ID,
  networkHelpers,
  OTHER_MODEL_ID,
  permit,
  POV,
  registerNode,
  registration,
  UNBONDING_PERIOD
} from './fixture.js'
import { bindingMessage, signPeerBinding, verifyPeerBinding } from '../../chain/peer-binding.js'

const { time } = networkHelpers

describe('ExpertRegistry', () => {
  describe('register', () => {
    it('stakes, stores the node, indexes its shards and emits NodeRegistered', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      const reg = await registration(env, env.op1, { shards: [0, 3], price: 7n })
      await by(token, env.op1).approve(registry, POV(1500))
      await expect(by(registry, env.op1).register(reg, POV(1500)))
        .to.emit(registry, 'NodeRegistered')
        .withArgs(
          env.op1.address,
          MODEL_ID,
          [0, 3],
          7n,
          POV(1500),
          reg.peerId,
          reg.multiaddrs,
          reg.peerSignature
        )
      expect(await token.balanceOf(registry)).to.equal(POV(1500))
      expect(await registry.totalStaked()).to.equal(POV(1500))
      const node = await registry.nodeOf(env.op1.address)
      expect(node.operator).to.equal(env.op1.address)
      expect(node.shards).to.deep.equal([0n, 3n])
      expect(node.peerId).to.equal(reg.peerId)
      expect(await registry.isActive(env.op1.address)).to.equal(true)
      expect((await registry.activeNodes(MODEL_ID, 3)).map((n) => n.operator)).to.deep.equal([
        env.op1.address
      ])
      expect(await registry.activeNodes(MODEL_ID, 1)).to.deep.equal([])
    })
    it('registerWithPermit needs no prior approve', async () => {
      const env = await load()
      const { registry } = env.contracts
      const reg = await registration(env, env.op1)
      const p = await permit(env, env.op1, env.deployment.contracts.registry, MIN_STAKE)
      await expect(
        by(registry, env.op1).registerWithPermit(reg, MIN_STAKE, p.deadline, p.v, p.r, p.s)
      ).to.emit(registry, 'NodeRegistered')
    })
    it('accepts a secp256k1 PeerId', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      const key = await generateKeyPair('secp256k1')
      const ctx = {
        chainId: env.deployment.chainId,
        registry: env.deployment.contracts.registry,
        operator: env.op2.address
      }
      const b = await signPeerBinding(key, ctx)
      const reg = {
        ...(await registration(env, env.op2)),
        peerId: ethers.hexlify(b.peerId),
        peerSignature: ethers.hexlify(b.signature)
      }
      await by(token, env.op2).approve(registry, MIN_STAKE)
      await by(registry, env.op2).register(reg, MIN_STAKE)
      const node = await registry.nodeOf(env.op2.address)
      expect(await verifyPeerBinding(ctx, node.peerId, node.peerSignature)).to.equal(true)
    })
    it('rejects registration for an unapproved model', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await by(token, env.attacker).approve(registry, MIN_STAKE)
      const reg = await registration(env, env.attacker, { modelId: OTHER_MODEL_ID })
      await expect(by(registry, env.attacker).register(reg, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryModelNotApproved')
        .withArgs(OTHER_MODEL_ID)
    })
    it('rejects a stake below the minimum and a second registration', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await by(token, env.op1).approve(registry, POV(5000))
      const reg = await registration(env, env.op1)
      await expect(by(registry, env.op1).register(reg, MIN_STAKE - 1n))
        .to.be.revertedWithCustomError(registry, 'RegistryInsufficientStake')
        .withArgs(env.op1.address, MIN_STAKE - 1n, MIN_STAKE)
      await by(registry, env.op1).register(reg, MIN_STAKE)
      await expect(by(registry, env.op1).register(await registration(env, env.op1), MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryAlreadyRegistered')
        .withArgs(env.op1.address)
    })
    it('rejects bad shards', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await by(token, env.op1).approve(registry, MIN_STAKE)
      const r = by(registry, env.op1)
      const reg = await registration(env, env.op1)
      await expect(r.register({ ...reg, shards: [] }, MIN_STAKE)).to.be.revertedWithCustomError(
        registry,
        'RegistryNoShards'
      )
      await expect(r.register({ ...reg, shards: [8] }, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryInvalidShard')
        .withArgs(MODEL_ID, 8, 8)
      await expect(r.register({ ...reg, shards: [2, 2] }, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryShardsNotIncreasing')
        .withArgs(2, 2)
      await expect(
        r.register({ ...reg, shards: Array.from({ length: 257 }, (_, i) => i) }, MIN_STAKE)
      )
        .to.be.revertedWithCustomError(registry, 'RegistryTooManyShards')
        .withArgs(257, 256)
    })
    it('rejects bad multiaddrs', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await by(token, env.op1).approve(registry, MIN_STAKE)
      const r = by(registry, env.op1)
      const reg = await registration(env, env.op1)
      await expect(r.register({ ...reg, multiaddrs: [] }, MIN_STAKE)).to.be.revertedWithCustomError(
        registry,
        'RegistryNoMultiaddrs'
      )
      await expect(
        r.register({ ...reg, multiaddrs: Array(17).fill('/ip4/1.2.3.4/tcp/1') }, MIN_STAKE)
      )
        .to.be.revertedWithCustomError(registry, 'RegistryTooManyMultiaddrs')
        .withArgs(17, 16)
      await expect(r.register({ ...reg, multiaddrs: ['/dns4/a/tcp/1', ''] }, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryInvalidMultiaddr')
        .withArgs(1, 0)
    })
    it('rejects a malformed PeerId and a missing signature', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await registerNode(env, env.op1)
      await by(token, env.op2).approve(registry, MIN_STAKE)
      const r = by(registry, env.op2)
      const reg = await registration(env, env.op2)
      const rsaLike = '0x1220' + '11'.repeat(32) // sha256 multihash: RSA PeerIds carry no key
      await expect(r.register({ ...reg, peerId: rsaLike }, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryInvalidPeerId')
        .withArgs(rsaLike)
      await expect(r.register({ ...reg, peerSignature: '0x' }, MIN_STAKE))
        .to.be.revertedWithCustomError(registry, 'RegistryInvalidPeerSignature')
        .withArgs(0)
    })
  })

  describe('operator updates', () => {
    it('updatePrice, updateMultiaddrs, updateShards, addStake emit and apply', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await registerNode(env, env.op1, MIN_STAKE, { shards: [0, 1], price: 10n })
      const r = by(registry, env.op1)
      await expect(r.updatePrice(12n))
        .to.emit(registry, 'PriceUpdated')
        .withArgs(env.op1.address, 10n, 12n)
      await expect(r.updateMultiaddrs(['/dns4/node.example/tcp/4001']))
        .to.emit(registry, 'MultiaddrsUpdated')
        .withArgs(env.op1.address, ['/dns4/node.example/tcp/4001'])
      await expect(r.updateShards([1, 5]))
        .to.emit(registry, 'ShardsUpdated')
        .withArgs(env.op1.address, [1, 5])
      expect(await registry.activeNodes(MODEL_ID, 0)).to.deep.equal([])
      expect((await registry.activeNodes(MODEL_ID, 5))[0].multiaddrs).to.deep.equal([
        '/dns4/node.example/tcp/4001'
      ])
      expect((await registry.activeNodes(MODEL_ID, 1))[0].price).to.equal(12n)
      await by(token, env.op1).approve(registry, POV(5))
      await expect(r.addStake(POV(5)))
        .to.emit(registry, 'StakeAdded')
        .withArgs(env.op1.address, POV(5), MIN_STAKE + POV(5))
      await expect(r.addStake(0)).to.be.revertedWithCustomError(registry, 'RegistryZeroAmount')
      await expect(r.updateShards([9])).to.be.revertedWithCustomError(
        registry,
        'RegistryInvalidShard'
      )
      await expect(r.updateMultiaddrs([])).to.be.revertedWithCustomError(
        registry,
        'RegistryNoMultiaddrs'
      )
    })
    it('updates revert when not registered or unbonding', async () => {
      const env = await load()
      const { registry } = env.contracts
      const r = by(registry, env.op1)
      for (const call of [
        () => r.updatePrice(1n),
        () => r.updateMultiaddrs(['/a']),
        () => r.updateShards([0]),
        () => r.addStake(1n),
        () => r.unbond()
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(registry, 'RegistryNotRegistered')
          .withArgs(env.op1.address)
      }
      await registerNode(env, env.op1)
      await r.unbond()
      const ends = (await registry.nodeOf(env.op1.address)).unbondingEnds
      for (const call of [
        () => r.updatePrice(1n),
        () => r.updateMultiaddrs(['/a']),
        () => r.updateShards([0]),
        () => r.addStake(1n),
        () => r.unbond()
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(registry, 'RegistryIsUnbonding')
          .withArgs(env.op1.address, ends)
      }
    })
  })

  describe('unbond and withdraw', () => {
    it('unbond deactivates now; withdraw only after the unbonding period', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await registerNode(env, env.op1, POV(2000))
      const r = by(registry, env.op1)
      await expect(r.withdraw())
        .to.be.revertedWithCustomError(registry, 'RegistryNotUnbonding')
        .withArgs(env.op1.address)
      const tx = r.unbond()
      const ends = BigInt(await time.latest()) + 1n + BigInt(UNBONDING_PERIOD)
      await expect(tx)
        .to.emit(registry, 'UnbondingStarted')
        .withArgs(env.op1.address, POV(2000), ends)
      expect(await registry.isActive(env.op1.address)).to.equal(false)
      expect(await registry.activeNodes(MODEL_ID, 0)).to.deep.equal([])
      await time.increaseTo(ends - 2n)
      await expect(r.withdraw())
        .to.be.revertedWithCustomError(registry, 'RegistryUnbondingNotOver')
        .withArgs(env.op1.address, ends, ends - 1n)
      await time.increaseTo(ends)
      await expect(r.withdraw())
        .to.emit(registry, 'StakeWithdrawn')
        .withArgs(env.op1.address, POV(2000))
      expect(await token.balanceOf(registry)).to.equal(0)
      expect((await registry.nodeOf(env.op1.address)).operator).to.equal(ethers.ZeroAddress)
      await expect(r.withdraw()).to.be.revertedWithCustomError(registry, 'RegistryNotRegistered')
    })
  })

  describe('slashing and parameters', () => {
    it('the timelock slashes to the treasury with a reason, also while unbonding', async () => {
      const env = await load()
      const { registry, token } = env.contracts
      await registerNode(env, env.op1, POV(2000))
      const gov = by(registry, env.timelock)
      // the registry's treasury: FaultReports, which deployAll wires in (it sends stake on)
      const treasury = await registry.treasury()
      await expect(gov.slash(env.op1.address, POV(300), 'wrong output')).to.changeTokenBalances(
        ethers,
        token,
        [treasury, registry],
        [POV(300), -POV(300)]
      )
      await by(registry, env.op1).unbond()
      await expect(gov.slash(env.op1.address, POV(1700), 'again'))
        .to.emit(registry, 'Slashed')
        .withArgs(env.op1.address, POV(1700), 0, treasury, 'again')
      expect(await registry.totalStaked()).to.equal(0)
    })
    it('slash: zero reverts; a non-registered operator is skipped (SlashSkipped); more than the stake takes the stake', async () => {
      const env = await load()
      const { registry } = env.contracts
      const gov = by(registry, env.timelock)
      await expect(gov.slash(env.op1.address, 1n, 'x'))
        .to.emit(registry, 'SlashSkipped')
        .withArgs(env.op1.address, 1n, 'x')
      await registerNode(env, env.op1)
      await expect(gov.slash(env.op1.address, 0n, 'x')).to.be.revertedWithCustomError(
        registry,
        'RegistryZeroAmount'
      )
      await expect(gov.slash(env.op1.address, MIN_STAKE + 1n, 'x'))
        .to.emit(registry, 'Slashed')
        .withArgs(env.op1.address, MIN_STAKE, 0, await registry.treasury(), 'x')
      await expect(gov.slash(env.op1.address, 1n, 'y')).to.emit(registry, 'SlashSkipped')
    })
    it('rejects slashing and parameter changes without governance', async () => {
      const env = await load()
      await registerNode(env, env.op1)
      for (const who of [env.attacker, env.deployer]) {
        const r = by(env.contracts.registry, who)
        await expect(r.slash(env.op1.address, 1n, 'x'))
          .to.be.revertedWithCustomError(r, 'OwnableUnauthorizedAccount')
          .withArgs(who.address)
        await expect(r.setMinStake(0)).to.be.revertedWithCustomError(
          r,
          'OwnableUnauthorizedAccount'
        )
        await expect(r.setUnbondingPeriod(0)).to.be.revertedWithCustomError(
          r,
          'OwnableUnauthorizedAccount'
        )
        await expect(r.setTreasury(who.address)).to.be.revertedWithCustomError(
          r,
          'OwnableUnauthorizedAccount'
        )
      }
    })
    it('the timelock sets min stake, unbonding period and treasury; min stake gates activity', async () => {
      const env = await load()
      const { registry } = env.contracts
      await registerNode(env, env.op1)
      const gov = by(registry, env.timelock)
      await expect(gov.setMinStake(MIN_STAKE + 1n))
        .to.emit(registry, 'MinStakeSet')
        .withArgs(MIN_STAKE, MIN_STAKE + 1n)
      expect(await registry.isActive(env.op1.address)).to.equal(false)
      expect(await registry.activeNodes(MODEL_ID, 0)).to.deep.equal([])
      await expect(gov.setUnbondingPeriod(7201))
        .to.emit(registry, 'UnbondingPeriodSet')
        .withArgs(UNBONDING_PERIOD, 7201)
      await expect(gov.setTreasury(env.bob.address))
        .to.emit(registry, 'TreasurySet')
        .withArgs(env.deployment.faultReports, env.bob.address)
      await expect(gov.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        registry,
        'RegistryInvalidTreasury'
      )
      expect(await registry.minStake()).to.equal(MIN_STAKE + 1n)
      expect(await registry.unbondingPeriod()).to.equal(7201)
      expect(await registry.treasury()).to.equal(env.bob.address)
      expect(await registry.token()).to.equal(env.deployment.contracts.token)
      expect(await registry.models()).to.equal(env.deployment.contracts.models)
    })
    it('a revoked model makes its nodes inactive', async () => {
      const env = await load()
      await registerNode(env, env.op1)
      await by(env.contracts.models, env.timelock).revokeModel(MODEL_ID)
      expect(await env.contracts.registry.isActive(env.op1.address)).to.equal(false)
      expect(await env.contracts.registry.activeNodes(MODEL_ID, 0)).to.deep.equal([])
    })
  })

  describe('views for routers', () => {
    it('bindingMessage equals chain/peer-binding.ts', async () => {
      const env = await load()
      const reg = await registration(env, env.op1)
      const ctx = {
        chainId: env.deployment.chainId,
        registry: env.deployment.contracts.registry,
        operator: env.op1.address
      }
      expect(await env.contracts.registry.bindingMessage(env.op1.address, reg.peerId)).to.equal(
        ethers.hexlify(bindingMessage(ctx, reg.peerId))
      )
      expect(await verifyPeerBinding(ctx, reg.peerId, reg.peerSignature)).to.equal(true)
      expect(
        await verifyPeerBinding(
          { ...ctx, operator: env.op2.address },
          reg.peerId,
          reg.peerSignature
        )
      ).to.equal(false)
    })
    it('selectNodes: deterministic, stake-weighted, price-capped, without replacement', async () => {
      const env = await load()
      const { registry } = env.contracts
      await registerNode(env, env.op1, POV(1000), { price: 5n })
      await registerNode(env, env.op2, POV(9000), { price: 5n })
      await registerNode(env, env.op3, POV(50000), { price: 50n })
      const seed = ethers.id('seed')
      const pick = await registry.selectNodes(MODEL_ID, 0, seed, 10n, 5)
      expect(pick.map((n) => n.operator).sort()).to.deep.equal(
        [env.op1.address, env.op2.address].sort()
      )
      expect(
        (await registry.selectNodes(MODEL_ID, 0, seed, 10n, 5)).map((n) => n.operator)
      ).to.deep.equal(pick.map((n) => n.operator))
      expect(await registry.selectNodes(MODEL_ID, 0, seed, 1n, 2)).to.deep.equal([])
      expect(await registry.selectNodes(MODEL_ID, 7, seed, 100n, 2)).to.deep.equal([])
      expect((await registry.selectNodes(MODEL_ID, 0, seed, 100n, 3)).length).to.equal(3)
      let heavyFirst = 0
      for (let i = 0; i < 100; i++) {
        const [first] = await registry.selectNodes(MODEL_ID, 0, ethers.id(`s${i}`), 10n, 1)
        if (first.operator === env.op2.address) heavyFirst++
      }
      // op2 holds 90 % of the eligible stake
      expect(heavyFirst).to.be.within(78, 99)
    })
    it('selectNodes skips zero-stake nodes when the minimum stake is 0', async () => {
      const env = await load()
      const { registry } = env.contracts
      await registerNode(env, env.op1, POV(1000))
      await registerNode(env, env.op2, POV(1000))
      await by(registry, env.timelock).setMinStake(0)
      await by(registry, env.timelock).slash(env.op1.address, POV(1000), 'all')
      const picked = await registry.selectNodes(MODEL_ID, 0, ethers.id('x'), 100n, 2)
      expect(picked.map((n) => n.operator)).to.deep.equal([env.op2.address])
    })
    it('nodeOf an unknown operator is empty', async () => {
      const env = await load()
      expect((await env.contracts.registry.nodeOf(env.alice.address)).operator).to.equal(
        ethers.ZeroAddress
      )
      expect(await env.contracts.registry.isActive(env.alice.address)).to.equal(false)
    })
    it('constants', async () => {
      const env = await load()
      expect(await env.contracts.registry.MAX_SHARDS()).to.equal(256)
      expect(await env.contracts.registry.MAX_MULTIADDRS()).to.equal(16)
      expect(await env.contracts.registry.MAX_MULTIADDR_LENGTH()).to.equal(256)
    })
  })
})
