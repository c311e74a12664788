import { JsonRpcProvider, Network } from 'ethers'

/**
 * A JSON-RPC provider for the POV tools. `cacheTimeout: -1` turns off ethers' 250 ms cache of
 * identical requests, which otherwise hands back a stale `eth_getTransactionCount` to
 * back-to-back transactions from one wallet ("nonce has already been used" on an automining
 * hardhat node); `staticNetwork` skips a chain-id probe per request. With `chainId` known (see
 * probeChainId) ethers skips its own start-up detection, which retries forever and prints "failed
 * to detect network" on stdout when the chain is down.
 */
export function createProvider(url: string, chainId?: number | bigint): JsonRpcProvider {
  return new JsonRpcProvider(url, chainId != null ? Network.from(chainId) : undefined, {
    staticNetwork: true,
    cacheTimeout: -1
  })
}

/** The chain id at `url` by one plain JSON-RPC request: fails fast and quietly when nothing
 *  answers (the caller says what to do). */
export async function probeChainId(url: string, timeoutMs = 5000): Promise<number> {
  let res: Response
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(timeoutMs)
    })
  } catch (err) {
    // fetch says only "fetch failed": the cause has the socket's code (ECONNREFUSED, …)
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    if ((err as Error).name === 'TimeoutError')
      throw new Error(`no answer in ${timeoutMs} ms`, { cause: err })
    throw new Error(cause?.code ?? cause?.message ?? (err as Error).message, { cause: err })
  }
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`)
  const body = (await res.json()) as { result?: string; error?: { message?: string } }
  if (typeof body.result !== 'string')
    throw new Error(body.error?.message ?? 'no chain id in the answer (is this a JSON-RPC node?)')
  return Number(BigInt(body.result))
}
