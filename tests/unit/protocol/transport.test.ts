// The transport's two write-path fixes, observed on a real loopback libp2p connection: one
// socket write per message (corked writev, not one write per chunk) and no yamux window update
// per data frame (protocol/transport.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { createLibp2p, type Libp2p } from 'libp2p'
import { transportOptions } from '../../../protocol/transport.js'

const ECHO = '/pov-test/echo/1.0.0'

/** Counts write syscalls issued through net.Socket (write() when uncorked, _writev when corked). */
function countSocketWrites (): { count: () => number, restore: () => void } {
  const proto = Socket.prototype as any
  const write = proto._write
  const writev = proto._writev
  let n = 0
  proto._write = function (...a: unknown[]) { n++; return write.apply(this, a) }
  proto._writev = function (...a: unknown[]) { n++; return writev.apply(this, a) }
  return { count: () => n, restore: () => { proto._write = write; proto._writev = writev } }
}

test('a 16 KiB request/response costs one socket write each way, window updates included', async () => {
  const nodes: Libp2p[] = []
  try {
    const server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, ...transportOptions() })
    const client = await createLibp2p({ ...transportOptions() })
    nodes.push(server, client)
    await server.handle(ECHO, (stream) => {
      stream.addEventListener('message', (evt) => { stream.send(evt.data) })
    })
    const stream = await client.dialProtocol(server.getMultiaddrs()[0], ECHO)
    const size = 16 * 1024
    let got = 0
    let wake: (() => void) | null = null
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength
      if (got >= size) { got -= size; wake?.() }
    })
    const payload = new Uint8Array(size).fill(7)
    const roundTrip = async (): Promise<void> => { await new Promise<void>(resolve => { wake = resolve; stream.send(payload) }) }
    for (let i = 0; i < 5; i++) await roundTrip() // handshake leftovers, SYN/ACK

    const writes = countSocketWrites()
    const N = 100
    try {
      for (let i = 0; i < N; i++) await roundTrip()
    } finally {
      writes.restore()
    }
    // both peers live in this process: N requests + N echoes, plus one window update per half
    // window (1 MiB initial window: one every ~32 messages per side) — not 7-11 writes per message
    // and a window update per frame, as with the stock stack
    const perMessage = writes.count() / (2 * N)
    assert.ok(perMessage >= 1, `at least one write per message (got ${writes.count()} for ${2 * N} messages)`)
    assert.ok(perMessage <= 1.1, `expected ~1 socket write per message, got ${perMessage.toFixed(2)}`)
  } finally {
    await Promise.all(nodes.map(async n => { await n.stop() }))
  }
})
