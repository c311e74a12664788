// Interoperability with peers on stock js-libp2p settings (yamux's spec window of 256 KiB, no pov
// transport changes): a stock router against a pov node, and a pov router against a node on the
// stock stack, through > 5 MiB on one stream and single 1 MiB requests; the same with pov
// settings on both ends. Real TCP on 127.0.0.1. Stock hosts live in this process, but the pov
// window rules apply only to streams of muxers built by protocol/transport.ts (the test checks
// the stock streams keep yamux's own window).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import {
  ANNOUNCED_STREAM_WINDOW,
  YAMUX_INITIAL_WINDOW,
  transportOptions
} from '../../../protocol/transport.js'
import { EXPERT_PROTOCOL } from '../../../protocol/constants.js'
import { DType, Status } from '../../../protocol/expert.js'
import { decodeTensor, encodeTensor, hexToBytes } from '../../../protocol/codec.js'
import { expertService } from '../../../node/expert-service.js'
import type { HostedModel } from '../../../node/runtime.js'
import { ExpertChannel } from '../../../router/channel.js'

const HIDDEN = 4096 // Mixtral-sized rows: 16 KiB per fp32 row
const MODEL_ID = '0x' + 'cd'.repeat(32)

const model: HostedModel = {
  modelId: MODEL_ID,
  manifestHash: MODEL_ID,
  hidden: HIDDEN,
  numLayers: 1,
  numExperts: 1,
  shards: [0],
  experts: [[0, 0]],
  runtime: {
    has: () => true,
    runExpert: async (_l, _e, x) => x.map((v) => v * 2)
  }
}

const stock = (): Pick<Libp2pOptions, 'transports' | 'connectionEncrypters' | 'streamMuxers'> => ({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()]
})
const pov = (): ReturnType<typeof transportOptions> => transportOptions()

const hosts: Libp2p[] = []
after(async () => {
  await Promise.all(hosts.map(async (h) => await h.stop()))
})

async function node(transport: typeof stock | typeof pov): Promise<Libp2p> {
  const h = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transport(),
    services: { expert: expertService({ models: [model] }) }
  })
  hosts.push(h)
  return h
}

async function router(
  transport: typeof stock | typeof pov,
  target: Libp2p
): Promise<{ ch: ExpertChannel; window: () => number | undefined }> {
  const h = await createLibp2p({ addresses: { listen: [] }, ...transport() })
  hosts.push(h)
  const stream = await h.dialProtocol(target.getMultiaddrs()[0], EXPERT_PROTOCOL)
  const y = stream as unknown as { recvWindow?: number }
  return { ch: new ExpertChannel(stream), window: () => y.recvWindow }
}

let nextId = 1n
async function call(ch: ExpertChannel, rows: number, seed: number): Promise<void> {
  const x = Float32Array.from({ length: rows * HIDDEN }, (_, i) => ((i + seed) % 97) - 48)
  const tensor = encodeTensor(x, DType.FP32)
  const res = await ch.call(
    {
      requestId: nextId++,
      modelId: hexToBytes(MODEL_ID),
      layer: 0,
      expert: 0,
      dtype: DType.FP32,
      rows,
      hidden: HIDDEN
    },
    tensor,
    // a stalled window never answers: fail instead of hanging
    { timeoutMs: 20_000 }
  )
  assert.equal(res.status, Status.OK, res.message)
  const y = decodeTensor(res.tensor, DType.FP32)
  assert.equal(y.length, x.length)
  for (let i = 0; i < x.length; i += 257) assert.equal(y[i], x[i] * 2)
}

/** > 5 MiB each way on one stream in 1-row calls, then 1 MiB requests alone and pipelined. */
async function traffic(ch: ExpertChannel): Promise<number> {
  let bytes = 0
  for (let i = 0; i < 352; i++) {
    await call(ch, 1, i) // 352 × 16 KiB = 5.5 MiB
    bytes += HIDDEN * 4
  }
  await call(ch, 64, 1) // one 1 MiB request (and a 1 MiB answer)
  await Promise.all([2, 3, 4, 5].map(async (s) => await call(ch, 64, s)))
  bytes += 5 * 64 * HIDDEN * 4
  return bytes
}

const pairs: Array<[string, typeof stock | typeof pov, typeof stock | typeof pov]> = [
  ['stock router -> pov node', stock, pov],
  ['pov router -> stock node', pov, stock],
  ['pov router -> pov node', pov, pov],
  ['stock router -> stock node', stock, stock]
]

for (const [name, r, n] of pairs) {
  test(`${name}: > 5 MiB on one stream and 1 MiB requests, no stall`, async () => {
    const { ch, window } = await router(r, await node(n))
    const bytes = await traffic(ch)
    assert.ok(bytes >= 10 * 1024 * 1024, `${bytes} bytes sent`)
    assert.ok(ch.isOpen, 'the one stream carried everything')
    // the router's own receive window: a pov stream announced its larger one, a stock stream
    // kept yamux's (and grew it only by js-yamux's auto-tuning)
    const w = window()
    assert.equal(typeof w, 'number', 'the dialled stream is the yamux stream')
    if (r === stock) assert.ok((w as number) >= YAMUX_INITIAL_WINDOW, `stock stream window ${w}`)
    else assert.ok((w as number) >= ANNOUNCED_STREAM_WINDOW, `pov stream announced ${w}`)
    await ch.close()
  })
}
