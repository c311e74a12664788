// Frames over a libp2p 3 stream (EventTarget + send()/'message'), the fastest API measured
// (about half the round trip of lpStream at 16 KiB; docs/toolchain.md).
import type { Stream, AbortOptions } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder } from './framing.js'

export interface FrameChannelInit {
  maxFrameBytes: number
  onFrame: (frame: Uint8Array) => void
  /** The stream closed (with the cause when it was reset or a frame was invalid). Called once. */
  onClose?: (err?: Error) => void
  /** The remote closed its writable end; frames already received have been delivered. */
  onRemoteEnd?: () => void
}

/**
 * A duplex of frames over one stream. Writes are ordered and never interleave; when the stream
 * signals backpressure, later frames wait for 'drain'. An undecodable or oversize incoming frame
 * aborts the stream.
 *
 * Frames written in one turn of the event loop go out together, as ONE `send()` (one yamux frame,
 * one noise message, one socket write) at the end of the turn (setImmediate): the experts of a
 * layer that a router asks of one node, and the answers a node computes in one turn, each cost
 * the peer one wake-up instead of one per call. On a loaded 2-core host that wake-up (the writev
 * and the scheduling around it) was the largest cost of an expert call (bench:gateway
 * --cpu-prof, docs/protocol.md#latency). The frames themselves are unchanged: a receiver sees the
 * same bytes, only fewer, larger reads.
 */
export class FrameChannel {
  private readonly decoder: FrameDecoder
  private readonly queue: Uint8ArrayList[] = []
  /** Frames written this turn, sent together by flush(). */
  private batch: Uint8ArrayList | null = null
  private blocked = false
  private closed = false

  constructor(
    readonly stream: Stream,
    private readonly init: FrameChannelInit
  ) {
    this.decoder = new FrameDecoder(init.maxFrameBytes)
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[]
      try {
        frames = this.decoder.push(evt.data)
      } catch (err) {
        this.abort(err as Error)
        return
      }
      for (const f of frames) init.onFrame(f)
    })
    stream.addEventListener('remoteCloseWrite', () => {
      init.onRemoteEnd?.()
    })
    stream.addEventListener('close', (evt) => {
      this.finish(evt.error)
    })
  }

  /** Bytes of an incomplete frame received so far (dropped if the stream ends now). */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes
  }

  get isOpen(): boolean {
    return !this.closed && this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  /**
   * Queues one frame, sent with the others of this turn at its end; throws if the stream can no
   * longer be written.
   */
  write(frame: Uint8ArrayList): void {
    if (this.closed) throw new Error('stream is closed')
    const w = this.stream.writeStatus
    if (w === 'closing' || w === 'closed') throw new Error(`stream is ${w} for writing`)
    if (this.batch != null) {
      this.batch.append(frame)
      return
    }
    this.batch = new Uint8ArrayList(frame)
    setImmediate(this.flush)
  }

  /** Sends this turn's frames (one send), or queues them behind a send that waits for 'drain'. */
  private readonly flush = (): void => {
    const batch = this.batch
    this.batch = null
    if (batch == null || this.closed) return
    if (this.blocked) {
      this.queue.push(batch)
      return
    }
    try {
      if (!this.stream.send(batch)) {
        this.blocked = true
        void this.drain()
      }
    } catch (err) {
      // the stream stopped being writable within the turn: its calls fail through onClose
      this.abort(err as Error)
    }
  }

  async close(options?: AbortOptions): Promise<void> {
    this.flush()
    try {
      await this.stream.close(options)
    } catch (err) {
      this.stream.abort(err as Error)
    }
  }

  abort(err: Error): void {
    this.stream.abort(err)
    this.finish(err)
  }

  private async drain(): Promise<void> {
    try {
      while (this.blocked) {
        await this.stream.onDrain()
        this.blocked = false
        while (this.queue.length > 0 && !this.blocked) {
          const f = this.queue.shift() as Uint8ArrayList
          if (!this.stream.send(f)) this.blocked = true
        }
      }
    } catch (err) {
      this.abort(err as Error)
    }
  }

  private finish(err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.batch = null
    this.queue.length = 0
    this.init.onClose?.(err)
  }
}

/** Reads exactly one frame from a stream (used by the one-shot info protocol). */
export async function readOneFrame(
  stream: Stream,
  maxFrameBytes: number,
  options: AbortOptions = {}
): Promise<Uint8Array> {
  return await new Promise<Uint8Array>((resolve, reject) => {
    let done = false
    const settle = (fn: () => void): void => {
      if (done) return
      done = true
      options.signal?.removeEventListener('abort', onAbort)
      fn()
    }
    const onAbort = (): void => {
      const err =
        options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted')
      stream.abort(err)
      settle(() => {
        reject(err)
      })
    }
    options.signal?.addEventListener('abort', onAbort)
    const channel = new FrameChannel(stream, {
      maxFrameBytes,
      onFrame: (f) => {
        settle(() => {
          resolve(f)
        })
      },
      onClose: (err) => {
        settle(() => {
          reject(err ?? new Error('stream closed before a frame arrived'))
        })
      },
      onRemoteEnd: () => {
        queueMicrotask(() => {
          settle(() => {
            reject(new Error('stream ended before a frame arrived'))
          })
        })
      }
    })
    void channel
  })
}
