// Discovery at scale: 1,000 registered nodes on one shard. `activeNodes` for that shard needs more
// gas than an eth_call is usually allowed (16.78M), and so does `selectNodes(k = every node)`; the
// router's paths (ChainDirectory, `selectPaidNodes` of pov route/serve, the gateway's views) read
// the same nodes through `activeNodesPage` (chain/registry-pages.ts), every call under a fixed
// budget, and the directory then follows joins and leaves through events alone.
import { describe, it } from 'node:test'
import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { ContractRunner, Signer, TransactionRequest } from 'ethers'
import {
  by,
  ethers,
  load,
  MIN_STAKE,
  MODEL,
  MODEL_ID,
  networkHelpers,
  type Env
} from './fixture.js'
import { signPeerBinding } from '../../chain/peer-binding.js'
import { ChainDirectory, routeOf } from '../../router/directory.js'
import { buildTable, expertKey } from '../../router/routes.js'
import { defaultShards } from '../../model/bundle/manifest.js'
import { selectPaidNodes } from '../../router/paid.js'
import { stakeWeightedOrder, activeNodesPaged } from '../../chain/registry-pages.js'
import type { ExpertRegistryContract } from '../../chain/contracts.js'

const NODES = 1000
const CALL_GAS_CAP = 16_777_216n
/** The most gas any one eth_call on a router's path may take, whatever the number of nodes. */
const ROUTER_CALL_BUDGET = 6_000_000n

/** The registry behind a runner that measures every eth_call's gas before making it. */
function metered(registry: ExpertRegistryContract): {
  registry: ExpertRegistryContract
  gas: bigint[]
} {
  const gas: bigint[] = []
  const provider = ethers.provider
  const runner: ContractRunner = {
    provider,
    async call(tx: TransactionRequest) {
      const { blockTag: _, ...rest } = tx
      gas.push(await provider.estimateGas(rest))
      return await provider.call(tx)
    }
  }
  return { registry: registry.connect(runner) as ExpertRegistryContract, gas }
}

async function operator(env: Env, i: number): Promise<Signer> {
  const addr = ethers.getAddress('0x' + (0x100000 + i).toString(16).padStart(40, '0'))
  await networkHelpers.impersonateAccount(addr)
  await networkHelpers.setBalance(addr, ethers.parseEther('1'))
  await env.contracts.token.transfer(addr, MIN_STAKE)
  return await ethers.getSigner(addr)
}

async function register(env: Env, op: Signer, shards: number[], price: bigint): Promise<string> {
  const key = await generateKeyPair('Ed25519')
  const b = await signPeerBinding(key, {
    chainId: env.deployment.chainId,
    registry: env.deployment.contracts.registry,
    operator: await op.getAddress()
  })
  await by(env.contracts.token, op).approve(env.deployment.contracts.registry, MIN_STAKE)
  await by(env.contracts.registry, op).register(
    {
      modelId: MODEL_ID,
      shards,
      price,
      peerId: ethers.hexlify(b.peerId),
      multiaddrs: [`/dns4/node${shards.join('-')}.example/tcp/4001`],
      peerSignature: ethers.hexlify(b.signature)
    },
    MIN_STAKE
  )
  return peerIdFromPrivateKey(key).toString()
}

describe('discovery at 1,000 nodes', () => {
  it('pages through every node, then follows joins and leaves by events', async (t) => {
    const env = await load()
    const { registry } = env.contracts
    const ops: Signer[] = []
    for (let i = 0; i < NODES; i++) {
      const op = await operator(env, i)
      // every node serves shard 0, and one other shard
      await register(env, op, [0, 1 + (i % (MODEL.shardCount - 1))], 10n + BigInt(i % 5))
      ops.push(op)
    }
    // the one-call view: ~45k gas per node, far past what an eth_call may spend at 1,000
    let oneCallGas: bigint | null = null
    try {
      oneCallGas = await registry.activeNodes.estimateGas(MODEL_ID, 0)
    } catch {
      // over the block gas limit: the node refuses to even estimate it
    }
    if (oneCallGas != null) expect(oneCallGas > CALL_GAS_CAP).to.equal(true)
    const pageGas = await registry.activeNodesPage.estimateGas(MODEL_ID, 0, 0, 100)
    t.diagnostic(
      `activeNodes(shard 0): ${oneCallGas != null ? `${oneCallGas} gas` : 'over the block gas limit'}; one page of 100: ${pageGas} gas`
    )
    expect(pageGas < CALL_GAS_CAP / 2n).to.equal(true)

    // the router's one-shot selection (pov route / pov serve without following): before, it called
    // activeNodes and selectNodes(k = every node) per shard, both past the cap here
    let drawAllGas: bigint | null = null
    try {
      drawAllGas = await registry.selectNodes.estimateGas(MODEL_ID, 0, ethers.ZeroHash, 13n, NODES)
    } catch {
      // over the block gas limit
    }
    if (drawAllGas != null) expect(drawAllGas > ROUTER_CALL_BUDGET).to.equal(true)
    const m = metered(registry)
    const picked = await selectPaidNodes({
      contracts: { ...env.contracts, registry: m.registry },
      chainId: env.deployment.chainId,
      registryAddress: env.deployment.contracts.registry,
      signer: env.alice,
      modelId: MODEL_ID,
      hidden: 8,
      shardCount: MODEL.shardCount,
      replicas: 2,
      seed: ethers.id('router seed'),
      maxPrice: 13n
    })
    const maxGas = m.gas.reduce((a, g) => (g > a ? g : a), 0n)
    t.diagnostic(
      `selectNodes(k = ${NODES}): ${drawAllGas != null ? `${drawAllGas} gas` : 'over the block gas limit'}; selectPaidNodes: ${m.gas.length} calls, the largest ${maxGas} gas (budget ${ROUTER_CALL_BUDGET})`
    )
    expect(m.gas.length).to.equal(10 + (MODEL.shardCount - 1) * 2)
    expect(maxGas < ROUTER_CALL_BUDGET).to.equal(true)
    for (let shard = 0; shard < MODEL.shardCount; shard++)
      expect([...picked.values()].filter((n) => n.shards.includes(shard)).length).to.equal(2)
    // the off-chain draw is the registry's own: the same nodes in the same order
    const all = await activeNodesPaged(registry, MODEL_ID, 0)
    expect(all.length).to.equal(NODES)
    for (const seed of [ethers.id('a'), ethers.id('b')]) {
      const onChain = await registry.selectNodes(MODEL_ID, 0, seed, 13n, 4)
      expect(stakeWeightedOrder(all, seed, 13n, 4).map((n) => n.operator)).to.deep.equal(
        onChain.map((n) => n.operator)
      )
    }

    // every request the directory sends, counted at the runner and the provider: its own count
    // (stats.requests) must match, since the paid router subtracts it from the payment path's
    const dm = metered(registry)
    let providerCalls = 0
    const counting = new Proxy(ethers.provider, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver)
        if (key !== 'getBlockNumber' && key !== 'getLogs') return v
        return (...args: unknown[]) => {
          providerCalls++
          return (v as (...a: unknown[]) => unknown).apply(target, args)
        }
      }
    })
    const sent = (): number => dm.gas.length + providerCalls
    const dir = new ChainDirectory({
      registry: dm.registry,
      provider: counting,
      chainId: env.deployment.chainId,
      registryAddress: env.deployment.contracts.registry,
      modelId: MODEL_ID,
      shardCount: MODEL.shardCount,
      maxPrice: 13n
    })
    const first = await dir.fullScan()
    // prices 10..14: the cap 13 leaves out one node in five
    expect(dir.nodes.size).to.equal(NODES - NODES / 5)
    expect(first.joined.length).to.equal(dir.nodes.size)
    expect(dir.stats.pages).to.equal(10 + (MODEL.shardCount - 1) * 2) // shard 0: 10 pages; others ~143 nodes: 2 each
    expect(dir.stats.requests).to.equal(sent())
    const shardMap = defaultShards(MODEL.layers, MODEL.experts).map((s) => s.experts)
    const table = buildTable([...dir.nodes.values()].map((n) => routeOf(n, shardMap)))
    expect(table.byExpert.get(expertKey(3, 0))?.length).to.equal(dir.nodes.size)

    // churn: one leaves, one joins, one changes price above the cap, one below it
    const leaving = ops[0]
    await by(registry, leaving).unbond()
    const newcomer = await operator(env, NODES)
    const newPeer = await register(env, newcomer, [0, 5], 11n)
    await by(registry, ops[1]).updatePrice(99n)
    await by(registry, ops[4]).updatePrice(12n) // was 14: now under the cap
    const pagesBefore = dir.stats.pages
    const c = await dir.refresh()
    expect(dir.stats.pages).to.equal(pagesBefore) // no rescan: events only
    expect(dir.stats.nodeReads).to.equal(4)
    expect(dir.stats.requests).to.equal(sent())
    expect(c.joined.map((n) => n.peerId).sort()).to.deep.equal(
      [newPeer, dir.nodes.get(await ops[4].getAddress())!.peerId].sort()
    )
    expect(c.left.map((n) => n.operator).sort()).to.deep.equal(
      [await leaving.getAddress(), await ops[1].getAddress()].sort()
    )
    expect(dir.nodes.size).to.equal(NODES - NODES / 5)
    // nothing new: one block-number read
    const quiet = await dir.refresh()
    expect(quiet.joined.length + quiet.left.length + quiet.changed.length).to.equal(0)
    expect(dir.stats.requests).to.equal(sent())
  })
})

describe('activeNodesPage', () => {
  it('pages the shard list: skips nodes under the minimum stake, counts every bonded entry', async () => {
    const env = await load()
    const { registry } = env.contracts
    const ops = await Promise.all([0, 1, 2].map(async (i) => await operator(env, 5000 + i)))
    for (const op of ops) await register(env, op, [2], 10n)
    await by(registry, env.timelock).slash(await ops[1].getAddress(), 1n, 'test')
    const [all, total] = await registry.activeNodesPage(MODEL_ID, 2, 0, 10)
    expect(total).to.equal(3n)
    expect(all.map((n) => n.operator)).to.deep.equal([
      await ops[0].getAddress(),
      await ops[2].getAddress()
    ])
    const [second] = await registry.activeNodesPage(MODEL_ID, 2, 2, 1)
    expect(second.map((n) => n.operator)).to.deep.equal([await ops[2].getAddress()])
    const [none, total2] = await registry.activeNodesPage(MODEL_ID, 2, 3, 10)
    expect(none.length).to.equal(0)
    expect(total2).to.equal(3n)
    const [empty, zero] = await registry.activeNodesPage(MODEL_ID, 5, 0, 10)
    expect(empty.length).to.equal(0)
    expect(zero).to.equal(0n)
  })
})
