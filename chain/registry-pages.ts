// The registry's nodes of one shard, read page by page, and the registry's stake-weighted draw
// redone off-chain. `activeNodes` (~45k gas per node) and `selectNodes(k = all)` (O(n·k)) grow
// with the number of nodes and stop answering at a few hundred per shard under an eth_call gas
// cap; every path a router or gateway takes reads `activeNodesPage` instead, whose calls cost the
// same at 10 nodes or 10,000 (tests/contracts/discovery.test.ts, 1,000 nodes on one shard).
import { AbiCoder, keccak256, type BlockTag } from 'ethers'
import type { ExpertRegistryContract } from './contracts.js'

export type RegistryNodeView = Awaited<ReturnType<ExpertRegistryContract['nodeOf']>>

/** Nodes per `activeNodesPage` call: ~45k gas each, so a page stays near 4.5M gas. */
export const REGISTRY_PAGE_SIZE = 100

/**
 * Every active node of (modelId, shard) above the minimum stake, in the registry's list order
 * (the order `selectNodes` draws from), read at one block so that pages agree.
 */
export async function activeNodesPaged(
  registry: ExpertRegistryContract,
  modelId: string,
  shard: number,
  o: { pageSize?: number; blockTag?: BlockTag; onPage?: () => void } = {}
): Promise<RegistryNodeView[]> {
  const size = o.pageSize ?? REGISTRY_PAGE_SIZE
  const blockTag = o.blockTag ?? (await registry.runner?.provider?.getBlockNumber())
  const out: RegistryNodeView[] = []
  for (let offset = 0; ; offset += size) {
    const [page, total] = await registry.activeNodesPage(modelId, shard, offset, size, {
      blockTag
    })
    o.onPage?.()
    out.push(...page)
    if (BigInt(offset + size) >= total) return out
  }
}

const coder = AbiCoder.defaultAbiCoder()

/**
 * The registry's `selectNodes(modelId, shard, seed, maxPrice, k)` computed off-chain from the
 * paged list: nodes priced ≤ maxPrice, drawn by stake without replacement with
 * r_j = keccak256(abi.encode(seed, j)) mod (stake left). Same order as the contract's view (draw j
 * does not depend on k), so a router that used it picks the same nodes.
 */
export function stakeWeightedOrder(
  nodes: readonly RegistryNodeView[],
  seed: string,
  maxPrice: bigint,
  k = nodes.length
): RegistryNodeView[] {
  const eligible = nodes.filter((n) => BigInt(n.price) <= maxPrice)
  const weights = eligible.map((n) => BigInt(n.stake))
  let total = weights.reduce((a, w) => a + w, 0n)
  const out: RegistryNodeView[] = []
  for (let j = 0; j < Math.min(k, eligible.length) && total > 0n; j++) {
    let r = BigInt(keccak256(coder.encode(['bytes32', 'uint256'], [seed, j]))) % total
    let i = 0
    while (r >= weights[i]!) {
      r -= weights[i]!
      i++
    }
    out.push(eligible[i]!)
    total -= weights[i]!
    weights[i] = 0n
  }
  return out
}
