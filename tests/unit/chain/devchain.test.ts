import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createProvider } from '../../../chain/provider.js'
import { detectDevChain, requireDevChain, NotDevChainError } from '../../../chain/devchain.js'

/** A JSON-RPC endpoint that knows only `methods` (like a live node: no hardhat_/anvil_ methods). */
async function rpcNode(
  methods: Record<string, unknown>
): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      const calls = JSON.parse(body) as
        { id: number; method: string } | Array<{ id: number; method: string }>
      const answer = (c: { id: number; method: string }): unknown =>
        c.method in methods
          ? { jsonrpc: '2.0', id: c.id, result: methods[c.method] }
          : {
              jsonrpc: '2.0',
              id: c.id,
              error: { code: -32601, message: `the method ${c.method} does not exist` }
            }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(Array.isArray(calls) ? calls.map(answer) : answer(calls)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close()
  }
}

test('a chain without hardhat_/anvil_ methods is refused with a line that says what to do instead', async () => {
  const live = await rpcNode({ eth_chainId: '0x1' })
  const provider = createProvider(live.url)
  try {
    assert.equal(await detectDevChain(provider), null)
    await assert.rejects(requireDevChain(provider, '`pov dev fund`'), (err: Error) => {
      assert.ok(err instanceof NotDevChainError)
      assert.match(
        err.message,
        /^`pov dev fund` works only on a local development chain \(Hardhat node or anvil\)/
      )
      assert.match(err.message, /`pov transfer` sends POV/)
      return true
    })
  } finally {
    provider.destroy()
    live.close()
  }
})

test('Hardhat and anvil are told apart by their own methods', async () => {
  for (const [kind, method] of [
    ['hardhat', 'hardhat_metadata'],
    ['anvil', 'anvil_nodeInfo']
  ] as const) {
    const dev = await rpcNode({ eth_chainId: '0x7a69', [method]: {} })
    const provider = createProvider(dev.url)
    try {
      assert.equal(await detectDevChain(provider), kind)
      assert.equal(await requireDevChain(provider, 'x'), kind)
    } finally {
      provider.destroy()
      dev.close()
    }
  }
})
