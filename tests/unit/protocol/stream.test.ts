// FrameChannel (protocol/stream.ts) on a real loopback libp2p connection: frames written in one
// turn of the event loop leave as one send (one socket write), in order, and frames written just
// before close() are still delivered; a write on a stream closed for writing throws at once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { transportOptions } from '../../../protocol/transport.js'
import { FrameChannel } from '../../../protocol/stream.js'
import { encodeFrame } from '../../../protocol/framing.js'
import { countSocketWrites } from './socket-writes.js'

const PROTO = '/pov-test/frames/1.0.0'

/** Two hosts; the server collects the frames of the stream the client opens. */
async function pair(): Promise<{
  client: FrameChannel
  stream: Stream
  frames: Uint8Array[]
  serverEnded: Promise<void>
  waitFrames: (n: number) => Promise<void>
  stop: () => Promise<void>
}> {
  const server: Libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions()
  })
  const host: Libp2p = await createLibp2p({ ...transportOptions() })
  const frames: Uint8Array[] = []
  let wake: (() => void) | null = null
  let ended: () => void = () => {}
  const serverEnded = new Promise<void>((resolve) => {
    ended = resolve
  })
  await server.handle(PROTO, (s) => {
    void new FrameChannel(s, {
      maxFrameBytes: 1 << 20,
      onFrame: (f) => {
        frames.push(Uint8Array.from(f))
        wake?.()
      },
      onRemoteEnd: () => {
        ended()
      }
    })
  })
  const stream = await host.dialProtocol(server.getMultiaddrs()[0], PROTO)
  const client = new FrameChannel(stream, { maxFrameBytes: 1 << 20, onFrame: () => {} })
  const waitFrames = async (n: number): Promise<void> => {
    while (frames.length < n)
      await new Promise<void>((resolve) => {
        wake = resolve
      })
  }
  return {
    client,
    stream,
    frames,
    serverEnded,
    waitFrames,
    stop: async () => {
      await host.stop()
      await server.stop()
    }
  }
}

const frame = (i: number, size = 64): ReturnType<typeof encodeFrame> =>
  encodeFrame(new Uint8Array(size).fill(i))

test('frames written in one turn leave in one socket write, in order', async () => {
  const p = await pair()
  try {
    // the stream's first bytes (protocol selection, SYN) are out of the way
    p.client.write(frame(0))
    await p.waitFrames(1)
    const writes = countSocketWrites()
    try {
      for (let i = 1; i <= 5; i++) p.client.write(frame(i))
      await p.waitFrames(6)
    } finally {
      writes.restore()
    }
    assert.equal(writes.count(), 1, `5 frames of one turn: ${writes.count()} socket writes`)
    assert.deepEqual(
      p.frames.map((f) => [f.byteLength, f[0]]),
      [0, 1, 2, 3, 4, 5].map((i) => [64, i])
    )
    // frames of separate turns are separate writes, still in order
    for (let i = 6; i <= 8; i++) {
      p.client.write(frame(i))
      await new Promise((resolve) => setImmediate(resolve))
    }
    await p.waitFrames(9)
    assert.deepEqual(
      p.frames.slice(6).map((f) => f[0]),
      [6, 7, 8]
    )
  } finally {
    await p.stop()
  }
})

test('close() sends the frames of the turn first; writing after close throws at once', async () => {
  const p = await pair()
  try {
    p.client.write(frame(1))
    p.client.write(frame(2, 3000))
    await p.client.close()
    await p.serverEnded
    assert.deepEqual(
      p.frames.map((f) => [f.byteLength, f[0]]),
      [
        [64, 1],
        [3000, 2]
      ]
    )
    assert.throws(() => {
      p.client.write(frame(3))
    }, /stream is (closing|closed)/)
  } finally {
    await p.stop()
  }
})
