// Client side of one long-lived /pov/expert/1.0.0 stream: requests are pipelined (written as
// soon as they are made) and responses matched by request_id, so the k experts of a layer that
// live on the same node share one stream without waiting for each other.
import type { Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES } from '../protocol/constants.js'
import type { ExpertRequest, ExpertResponse } from '../protocol/expert.js'
import { decodeResponse, encodeRequestFrame } from '../protocol/codec.js'
import { FrameChannel } from '../protocol/stream.js'
import { MalformedMessageError } from '../protocol/errors.js'
import { NO_BUSY_POLL, type BusyPoll } from '../protocol/busy-poll.js'

export class ChannelClosedError extends Error {
  override name = 'ChannelClosedError'
}

export class CallTimeoutError extends Error {
  override name = 'CallTimeoutError'
}

interface Pending {
  resolve: (r: ExpertResponse) => void
  reject: (err: Error) => void
  cleanup: () => void
}

export class ExpertChannel {
  private readonly channel: FrameChannel
  private readonly pending = new Map<bigint, Pending>()
  private closedWith: Error | null = null
  private readonly poll: BusyPoll

  /** `poll`: keeps the event loop hot while calls are in flight (protocol/busy-poll.ts). */
  constructor(
    stream: Stream,
    opts: { maxFrameBytes?: number; onClose?: (err?: Error) => void; poll?: BusyPoll } = {}
  ) {
    this.poll = opts.poll ?? NO_BUSY_POLL
    this.channel = new FrameChannel(stream, {
      maxFrameBytes: opts.maxFrameBytes ?? MAX_FRAME_BYTES,
      onFrame: (frame) => {
        let res: ExpertResponse
        try {
          res = decodeResponse(frame)
        } catch (err) {
          // a malformed answer fails its own call when its request id was readable; otherwise
          // the node is broken and every call on the stream goes elsewhere
          const id = err instanceof MalformedMessageError ? err.requestId : undefined
          const p = id == null ? undefined : this.pending.get(id)
          if (id == null || p == null) {
            this.channel.abort(err as Error)
            return
          }
          this.pending.delete(id)
          p.cleanup()
          p.reject(new Error(`malformed response: ${(err as Error).message}`))
          return
        }
        const p = this.pending.get(res.requestId)
        if (p == null) return // late answer to a call that timed out
        this.pending.delete(res.requestId)
        p.cleanup()
        p.resolve(res)
      },
      onRemoteEnd: () => {
        this.fail(new ChannelClosedError('node closed the stream'))
      },
      onClose: (err) => {
        this.fail(err ?? new ChannelClosedError('stream closed'))
        opts.onClose?.(err)
      }
    })
  }

  get isOpen(): boolean {
    return this.closedWith == null && this.channel.isOpen
  }
  get inFlight(): number {
    return this.pending.size
  }

  /** Sends one request; resolves with its response (any status), rejects on timeout/close. */
  async call(
    req: Omit<ExpertRequest, 'tensor'>,
    tensor: Uint8Array,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {}
  ): Promise<ExpertResponse> {
    if (this.closedWith != null) throw this.closedWith
    return await new Promise<ExpertResponse>((resolve, reject) => {
      const id = req.requestId
      let timer: NodeJS.Timeout | undefined
      const endWait = this.poll.begin()
      const onAbort = (): void => {
        this.pending.delete(id)
        cleanup()
        reject(opts.signal?.reason ?? new Error('aborted'))
      }
      const cleanup = (): void => {
        endWait()
        if (timer != null) clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
      }
      if (opts.timeoutMs != null) {
        timer = setTimeout(() => {
          this.pending.delete(id)
          cleanup()
          reject(new CallTimeoutError(`no answer within ${opts.timeoutMs} ms`))
        }, opts.timeoutMs)
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(id, { resolve, reject, cleanup })
      try {
        this.channel.write(encodeRequestFrame(req, tensor))
      } catch (err) {
        this.pending.delete(id)
        cleanup()
        reject(err as Error)
      }
    })
  }

  async close(): Promise<void> {
    this.fail(new ChannelClosedError('closed locally'))
    await this.channel.close()
  }

  abort(err: Error): void {
    this.channel.abort(err)
  }

  private fail(err: Error): void {
    if (this.closedWith == null) this.closedWith = err
    for (const p of this.pending.values()) {
      p.cleanup()
      p.reject(err)
    }
    this.pending.clear()
  }
}
