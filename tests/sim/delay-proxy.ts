// A user-space TCP delay link (this kernel has no netem qdisc): listens on 127.0.0.1, forwards
// every connection to a target port, and holds each chunk for the link's one-way delay plus a
// seeded jitter, in each direction. Chunks leave in the order they came (a TCP link does not
// reorder), each no earlier than its own due time. When one side closes, the other is closed after the
// data already in flight has been delivered; a refused target closes the client at once.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { seededRandom } from '../../model/sampling.js'

const LATENESS_WINDOW = 4096

export interface LinkSpec {
  /** Port the node really listens on. */
  targetPort: number
  /** One-way delay in ms. */
  delayMs: number
  /** Extra delay drawn uniformly in [0, jitterMs) per chunk (mean jitterMs / 2). */
  jitterMs: number
  seed: number
  /** Port to listen on (0: any free one). */
  port?: number
}

export class DelayLink {
  readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly random: () => number
  /** Bytes forwarded in each direction, and connections accepted. */
  readonly stats = { up: 0, down: 0, connections: 0 }
  /** The recent chunks' delivery time minus due time, ms (the timers' own error; negative: early). */
  private readonly lateness = new Float64Array(LATENESS_WINDOW)
  private latenessN = 0

  constructor(readonly spec: LinkSpec) {
    this.random = seededRandom(spec.seed)
    this.server = createServer((client) => {
      this.stats.connections++
      this.pipe(client)
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.spec.port ?? 0, '127.0.0.1', () => {
        resolve()
      })
    })
    return (this.server.address() as { port: number }).port
  }

  private pipe(client: Socket): void {
    const upstream = connect(this.spec.targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      s.setNoDelay(true)
      this.sockets.add(s)
      s.once('close', () => this.sockets.delete(s))
    }
    this.direction(client, upstream, 'up')
    this.direction(upstream, client, 'down')
  }

  private direction(from: Socket, to: Socket, dir: 'up' | 'down'): void {
    // ONE queue and ONE timer per direction. A timer per chunk reorders: Node starts a timer
    // from the loop's cached whole-millisecond clock, which lags performance.now() by up to a
    // loop turn, so a later chunk with the same due time could fire first (seen: noise then
    // failed its MAC and libp2p aborted the connection — "stream closed" on every call on it).
    const queue: Array<{ at: number; act: () => void }> = []
    let timer: NodeJS.Timeout | undefined
    let last = 0
    const pump = (): void => {
      timer = undefined
      // never early (a timer can fire up to 1 ms before its time by performance.now()): what
      // is not due yet waits for the next timer, so no chunk beats the link's delay
      const now = performance.now()
      while (queue.length > 0 && queue[0].at <= now) {
        const { at, act } = queue.shift()!
        this.lateness[this.latenessN++ % LATENESS_WINDOW] = now - at
        act()
      }
      if (queue.length > 0) timer = setTimeout(pump, queue[0].at - now)
    }
    const later = (act: () => void): void => {
      last = Math.max(
        last,
        performance.now() + this.spec.delayMs + this.random() * this.spec.jitterMs
      )
      queue.push({ at: last, act })
      timer ??= setTimeout(pump, last - performance.now())
    }
    from.on('data', (chunk: Buffer) => {
      this.stats[dir] += chunk.length
      later(() => {
        if (!to.destroyed) to.write(chunk)
      })
    })
    from.once('end', () => {
      later(() => {
        if (!to.destroyed) to.end()
      })
    })
    from.once('error', () => {})
    from.once('close', () => {
      later(() => {
        to.destroy()
      })
    })
  }

  /** Lateness samples since the last take (at most LATENESS_WINDOW, the latest). */
  takeLateness(): Float64Array {
    const out = this.lateness.slice(0, Math.min(this.latenessN, LATENESS_WINDOW))
    this.latenessN = 0
    return out
  }

  /** Cuts every connection (the node behind it died) but keeps listening. */
  resetAll(): void {
    for (const s of this.sockets) s.destroy()
  }

  async close(): Promise<void> {
    this.resetAll()
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve()
      })
    )
  }
}
