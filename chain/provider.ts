import { JsonRpcProvider } from 'ethers'

/**
 * A JSON-RPC provider for the POV tools. `cacheTimeout: -1` turns off ethers' 250 ms cache of
 * identical requests, which otherwise hands back a stale `eth_getTransactionCount` to
 * back-to-back transactions from one wallet ("nonce has already been used" on an automining
 * hardhat node); `staticNetwork` skips a chain-id probe per request.
 */
export function createProvider(url: string): JsonRpcProvider {
  return new JsonRpcProvider(url, undefined, { staticNetwork: true, cacheTimeout: -1 })
}
