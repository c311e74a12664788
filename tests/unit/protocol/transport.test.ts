// The transport's fixes, observed on a real loopback libp2p connection: one
// socket write per message (corked writev, not one write per chunk) and no yamux window update
// per data frame, and no Error built per noise message received (protocol/transport.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { quietEmptyLengthReads, transportOptions } from '../../../protocol/transport.js'
import { countSocketWrites } from './socket-writes.js'

const ECHO = '/pov-test/echo/1.0.0'

/** Two libp2p hosts on loopback with the project's transport, an echo handler, and a round trip of `size` bytes. */
async function echoPair(
  size: number
): Promise<{ roundTrip: () => Promise<void>; stop: () => Promise<void> }> {
  const server = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions()
  })
  const client = await createLibp2p({ ...transportOptions() })
  const stop = async (): Promise<void> => {
    await Promise.all(
      [server, client].map(async (n) => {
        await n.stop()
      })
    )
  }
  try {
    await server.handle(ECHO, (stream) => {
      stream.addEventListener('message', (evt) => {
        stream.send(evt.data)
      })
    })
    const stream = await client.dialProtocol(server.getMultiaddrs()[0], ECHO)
    let got = 0
    let wake: (() => void) | null = null
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength
      if (got >= size) {
        got -= size
        wake?.()
      }
    })
    const payload = new Uint8Array(size).fill(7)
    const roundTrip = async (): Promise<void> => {
      await new Promise<void>((resolve) => {
        wake = resolve
        stream.send(payload)
      })
    }
    for (let i = 0; i < 5; i++) await roundTrip() // handshake leftovers, SYN/ACK
    return { roundTrip, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

test('a 16 KiB request/response costs one socket write each way, window updates included', async () => {
  const { roundTrip, stop } = await echoPair(16 * 1024)
  try {
    const writes = countSocketWrites()
    const N = 100
    try {
      for (let i = 0; i < N; i++) await roundTrip()
    } finally {
      writes.restore()
    }
    // both peers live in this process: N requests + N echoes, plus one window update per half
    // window (1 MiB announced window: one every ~32 messages per side) — not 7-11 writes per message
    // and a window update per frame, as with the stock stack
    const perMessage = writes.count() / (2 * N)
    assert.ok(
      perMessage >= 1,
      `at least one write per message (got ${writes.count()} for ${2 * N} messages)`
    )
    assert.ok(
      perMessage <= 1.1,
      `expected ~1 socket write per message, got ${perMessage.toFixed(2)}`
    )
  } finally {
    await stop()
  }
})

/** Counts RangeErrors built while `fn` runs (the global is looked up at each `RangeError(...)`). */
async function countRangeErrors(fn: () => Promise<void>): Promise<number> {
  const Original = globalThis.RangeError
  let n = 0
  function counting(...args: [string?]): RangeError {
    n++
    return new Original(...args)
  }
  counting.prototype = Original.prototype // instanceof RangeError still holds
  globalThis.RangeError = counting as unknown as RangeErrorConstructor
  try {
    await fn()
  } finally {
    globalThis.RangeError = Original
  }
  return n
}

test('receiving noise messages builds no RangeError per message', async () => {
  const { roundTrip, stop } = await echoPair(1024)
  try {
    const built = await countRangeErrors(async () => {
      for (let i = 0; i < 50; i++) await roundTrip()
    })
    // the stock decoder built one per message received: 100 here
    assert.ok(built < 5, `expected no RangeError per message, ${built} built in 50 round trips`)
  } finally {
    await stop()
  }
})

test('length-prefixed decoding is unchanged: same messages however the bytes are chunked', () => {
  quietEmptyLengthReads()
  const seen: number[] = []
  const u16 = (d: Uint8Array | Uint8ArrayList): number => {
    seen.push(d.byteLength)
    if (d.byteLength < 2) throw new RangeError('need 2 bytes')
    return d instanceof Uint8Array ? (d[0] << 8) | d[1] : d.getUint16(0)
  }
  const messages = [
    new Uint8Array(300).fill(1),
    new Uint8Array(1).fill(2),
    new Uint8Array(0),
    new Uint8Array(70).fill(3)
  ]
  const wire = new Uint8ArrayList()
  for (const m of messages) {
    wire.append(Uint8Array.of(m.byteLength >> 8, m.byteLength & 0xff), m)
  }
  const bytes = wire.subarray()
  for (const chunk of [1, 2, 3, 7, 64, bytes.byteLength]) {
    seen.length = 0
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: u16, encodingLength: () => 2 })
    const out: number[][] = []
    for (let i = 0; i < bytes.byteLength; i += chunk) {
      for (const m of decoder.decode(bytes.subarray(i, i + chunk)))
        out.push([m.byteLength, m.subarray()[0]])
    }
    // empty messages are skipped, as before
    assert.deepEqual(
      out,
      [
        [300, 1],
        [1, 2],
        [70, 3]
      ],
      `chunk size ${chunk}`
    )
    assert.ok(
      !seen.includes(0),
      `the length decoder was called on an empty buffer (chunk ${chunk})`
    )
  }
  // an oversize length is still refused
  const decoder = new LengthPrefixedDecoder({
    lengthDecoder: u16,
    encodingLength: () => 2,
    maxDataLength: 10
  })
  assert.throws(() => [...decoder.decode(Uint8Array.of(0, 11))], /Invalid message length/)
})
