// The simulation's delay link must behave like a TCP link: delayed, never reordered. A chunk
// delivered ahead of an earlier one corrupts the stream (noise then fails its MAC and libp2p
// aborts the connection, so every call on it fails with "stream closed").
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type Socket } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { DelayLink } from '../../sim/delay-proxy.js'

const CHUNKS = 400
const CHUNK = 64

/** Spins the event loop's thread: the loop's cached clock goes stale, as on a loaded machine. */
function busy(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end);
}

test('a delay link keeps the byte order and never delivers early while jitter and a busy loop vary the delays', async () => {
  const DELAY = 3
  const sentAt: number[] = []
  let early = 0
  let received = Buffer.alloc(0)
  let done!: () => void
  const all = new Promise<void>((resolve) => (done = resolve))
  const sink = createServer((s) => {
    s.on('data', (d: Buffer) => {
      const before = Math.floor(received.length / CHUNK)
      received = Buffer.concat([received, d])
      const now = performance.now()
      for (let i = before; i < Math.floor(received.length / CHUNK); i++)
        if (now - sentAt[i] < DELAY) early++
      if (received.length >= CHUNKS * CHUNK) done()
    })
  })
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  const link = new DelayLink({
    targetPort: (sink.address() as { port: number }).port,
    delayMs: DELAY,
    jitterMs: 4,
    seed: 1
  })
  const port = await link.listen()
  const client: Socket = connect(port, '127.0.0.1')
  client.setNoDelay(true)
  await new Promise<void>((resolve) => client.once('connect', resolve))
  const sent = Buffer.alloc(CHUNKS * CHUNK)
  for (let i = 0; i < CHUNKS; i++) {
    const c = sent.subarray(i * CHUNK, (i + 1) * CHUNK)
    c.fill(i % 251)
    c.writeUInt32BE(i, 0)
    sentAt.push(performance.now())
    client.write(c)
    // separate reads at the link, some of them late in a long loop turn
    await nextTurn()
    if (i % 7 === 0) busy(1.5)
  }
  await all
  client.destroy()
  await link.close()
  await new Promise<void>((resolve) => sink.close(() => resolve()))
  let firstBad = -1
  for (let i = 0; i < CHUNKS && firstBad < 0; i++)
    if (
      !received
        .subarray(i * CHUNK, (i + 1) * CHUNK)
        .equals(sent.subarray(i * CHUNK, (i + 1) * CHUNK))
    )
      firstBad = i
  assert.equal(firstBad, -1, `chunk ${firstBad} arrived out of order`)
  assert.equal(early, 0, `${early} chunks arrived sooner than the link's ${DELAY} ms`)
  assert.ok(link.stats.up === CHUNKS * CHUNK)
})
