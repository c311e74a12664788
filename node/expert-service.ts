// The expert service: serves /pov/expert/1.0.0 (long-lived streams, many pipelined
// request/response frames each) and /pov/info/1.0.0 (one-shot). js-libp2p service shape:
// expertService(init) -> (components) -> ExpertService (Startable). Spec: docs/protocol.md.
import type {
  Connection,
  PeerId,
  PrivateKey,
  Startable,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
  AbortOptions
} from '@libp2p/interface'
import type { Logger } from 'pino'
import {
  EXPERT_PROTOCOL,
  INFO_PROTOCOL,
  MAX_EXPERT_STREAMS,
  MAX_FRAME_BYTES,
  MAX_HIDDEN,
  MAX_INFO_FRAME_BYTES,
  MAX_IN_FLIGHT_PER_STREAM,
  MAX_ROWS
} from '../protocol/constants.js'
import { DType, type ExpertRequest, InfoResponse, Status } from '../protocol/expert.js'
import { InvalidFrameError, ProtocolError, type MalformedMessageError } from '../protocol/errors.js'
import { FrameChannel, readOneFrame } from '../protocol/stream.js'
import {
  bytesPerElement,
  decodeRequest,
  decodeTensor,
  encodeResponseFrame,
  firstNonFinite,
  encodeTensor,
  hexToBytes
} from '../protocol/codec.js'
import { encodeFrame } from '../protocol/framing.js'
import { signResponse } from '../protocol/signature.js'
import { MicroBatcher } from './batcher.js'
import { RefusalLog } from './refusals.js'
import { expertKey } from '../model/experts.js'
import { BusyPoll } from '../protocol/busy-poll.js'
import type { HostedModel } from './runtime.js'
import type { NodeMetrics } from './metrics.js'

const EMPTY = new Uint8Array(0)

export interface ExpertServiceInit {
  /** The models this node serves (usually one). */
  models: HostedModel[]
  /**
   * Payment hook, called before the expert runs; throw a `PaymentError` to refuse the call
   * (its code goes back on the wire). It may return a refund, called when the call then fails
   * (the client is not charged for work it did not get). @default none: every call is served
   */
  verifyPayment?: (request: ExpertRequest, peer: PeerId) => Promise<void | (() => void)>
  /** Micro-batching window in ms (see MicroBatcher). @default 0 */
  batchWindowMs?: number
  /** Rows per runtime run at most. @default MAX_ROWS */
  maxBatchRows?: number
  /** @default MAX_FRAME_BYTES */
  maxFrameBytes?: number
  /**
   * Concurrent expert streams per peer (over all its connections); one more is reset as soon as
   * it is negotiated, and counted. @default MAX_EXPERT_STREAMS
   */
  maxInboundStreams?: number
  /**
   * Keep the event loop polling for this many µs after each frame received or answered
   * (protocol/busy-poll.ts): a router's next call, typically the next layer's a few hundred µs
   * later, is then read without a wake-up. 0 turns it off. @default 0 (OperatorNode sets its own)
   */
  busyPollUs?: number
  /** Sign responses (evidence for audits). @default true */
  sign?: boolean
  version?: string
  metrics?: NodeMetrics | null
  logger?: Logger
  /** Where refusals are counted and logged. @default one built from `metrics` and `logger` */
  refusals?: RefusalLog
  /** Every request read, with its sender (node/selection.ts counts them). */
  onRequest?: (peer: string, requestId: bigint) => void
}

/** Only what the service uses (js-libp2p style). */
export interface ExpertServiceComponents {
  registrar: {
    handle: (
      protocol: string,
      handler: StreamHandler,
      options?: StreamHandlerOptions
    ) => Promise<void>
    unhandle: (protocol: string, options?: AbortOptions) => Promise<void>
  }
  privateKey: PrivateKey
}

interface Served {
  model: HostedModel
  id: Uint8Array<ArrayBuffer>
  batcher: MicroBatcher
  hosted: Set<number>
}

export class ExpertService implements Startable {
  private readonly served: Served[]
  private readonly maxFrameBytes: number
  private readonly streams = new Set<Stream>()
  private readonly streamsByPeer = new Map<string, number>()
  private readonly poll: BusyPoll
  private readonly refusals: RefusalLog
  private started = false
  /** stop() was called: the calls still answered on open streams no longer restart the poll. */
  private stopped = false

  constructor(
    private readonly components: ExpertServiceComponents,
    private readonly init: ExpertServiceInit
  ) {
    this.maxFrameBytes = init.maxFrameBytes ?? MAX_FRAME_BYTES
    this.poll = new BusyPoll({ windowUs: init.busyPollUs ?? 0 })
    this.refusals = init.refusals ?? new RefusalLog({ logger: init.logger, metrics: init.metrics })
    this.served = init.models.map((model) => ({
      model,
      id: hexToBytes(model.modelId),
      hosted: new Set(model.experts.map(([l, e]) => expertKey(l, e))),
      batcher: new MicroBatcher(
        async (l, e, x, rows) => {
          const t = performance.now()
          try {
            return await model.runtime.runExpert(l, e, x, rows)
          } finally {
            init.metrics?.runDuration.observe((performance.now() - t) / 1000)
          }
        },
        {
          hidden: model.hidden,
          windowMs: init.batchWindowMs,
          maxBatchRows: init.maxBatchRows ?? MAX_ROWS,
          onBatch: (rows) => {
            init.metrics?.batchSize.observe(rows)
          }
        }
      )
    }))
  }

  readonly [Symbol.toStringTag] = 'pov/expert-service'

  async start(): Promise<void> {
    this.stopped = false
    const n = this.init.maxInboundStreams ?? MAX_EXPERT_STREAMS
    await this.components.registrar.handle(
      EXPERT_PROTOCOL,
      (s, c) => {
        this.handleExpertStream(s, c)
      },
      // libp2p's cap per connection sits above ours, so a refusal is ours: counted and logged
      // runOnLimitedConnection: a node behind NAT serves through its relay (with the relay's
      // limits, docs/network.md#relays) until DCUtR has made a direct connection
      { maxInboundStreams: n + 1, maxOutboundStreams: n, runOnLimitedConnection: true }
    )
    await this.components.registrar.handle(
      INFO_PROTOCOL,
      async (s) => {
        await this.handleInfoStream(s)
      },
      { maxInboundStreams: 4, maxOutboundStreams: 4, runOnLimitedConnection: true }
    )
    this.started = true
  }

  /** Stops accepting streams; in-flight calls on open streams still get their answers. */
  async stop(): Promise<void> {
    this.stopped = true
    this.poll.stop()
    if (!this.started) return
    this.started = false
    await this.components.registrar.unhandle(EXPERT_PROTOCOL)
    await this.components.registrar.unhandle(INFO_PROTOCOL)
  }

  /** The service's busy poll (diagnostics and tests). */
  get busyPoll(): BusyPoll {
    return this.poll
  }

  /** Open expert streams (for diagnostics and graceful shutdown). */
  get openStreams(): number {
    return this.streams.size
  }

  info(): InfoResponse {
    return {
      version: this.init.version ?? '0.1.0',
      models: this.served.map(({ model, id }) => ({
        modelId: id,
        manifestHash: hexToBytes(model.manifestHash),
        shards: model.shards,
        experts: model.experts.flat(),
        hidden: model.hidden,
        numLayers: model.numLayers,
        numExperts: model.numExperts
      })),
      dtypes: [DType.FP32, DType.FP16],
      maxFrameBytes: this.maxFrameBytes,
      maxRows: this.init.maxBatchRows ?? MAX_ROWS
    }
  }

  async handleInfoStream(stream: Stream): Promise<void> {
    try {
      await readOneFrame(stream, MAX_INFO_FRAME_BYTES, { signal: AbortSignal.timeout(10_000) })
      stream.send(encodeFrame(InfoResponse.encode(this.info())))
      await stream.close()
    } catch (err) {
      this.init.logger?.debug({ err }, 'info stream failed')
      stream.abort(err as Error)
    }
  }

  /**
   * Serves one long-lived stream: each frame is handled as it arrives (requests pipeline;
   * responses go out as they complete, matched by request_id). A malformed request is answered
   * with a status like any other refusal; only a frame whose length cannot be trusted (over the
   * cap, a bad length varint) resets the stream, and this stream only.
   */
  handleExpertStream(stream: Stream, connection: Pick<Connection, 'remotePeer'>): void {
    const peer = connection.remotePeer.toString()
    const cap = this.init.maxInboundStreams ?? MAX_EXPERT_STREAMS
    const open = this.streamsByPeer.get(peer) ?? 0
    if (open >= cap) {
      this.refusals.note(
        'streams',
        { peer, open },
        `expert stream reset: ${open} open from this peer already (reuse one stream)`
      )
      stream.abort(new Error(`more than ${cap} expert streams from one peer`))
      return
    }
    this.streamsByPeer.set(peer, open + 1)
    let inFlight = 0
    let ended = false
    this.streams.add(stream)
    const channel: FrameChannel = new FrameChannel(stream, {
      maxFrameBytes: this.maxFrameBytes,
      onFrame: (frame) => {
        if (!this.stopped) this.poll.kick()
        let req: ExpertRequest
        try {
          req = decodeRequest(frame)
        } catch (err) {
          // the frame boundary is intact: answer this call alone, the stream lives on
          const e = err as MalformedMessageError
          this.refusals.note(
            'malformed',
            { peer: connection.remotePeer.toString(), err: e.message },
            'malformed request refused'
          )
          this.reply(
            channel,
            {
              requestId: e.requestId ?? 0n,
              modelId: EMPTY,
              layer: 0,
              expert: 0,
              dtype: DType.DTYPE_UNSPECIFIED
            },
            err instanceof ProtocolError ? err.code : Status.BAD_REQUEST,
            e.message
          )
          return
        }
        this.init.onRequest?.(peer, req.requestId)
        if (inFlight >= MAX_IN_FLIGHT_PER_STREAM) {
          this.refusals.note(
            'overloaded',
            { peer: connection.remotePeer.toString() },
            'request refused: too many in flight on one stream'
          )
          this.reply(
            channel,
            req,
            Status.OVERLOADED,
            `more than ${MAX_IN_FLIGHT_PER_STREAM} requests in flight on one stream`
          )
          return
        }
        inFlight++
        void this.serve(req, connection.remotePeer, channel).finally(() => {
          inFlight--
          if (ended && inFlight === 0) void channel.close()
        })
      },
      onRemoteEnd: () => {
        ended = true
        // a frame cut short by the end of the stream has no request id to answer: dropped
        if (channel.bufferedBytes > 0)
          this.refusals.note(
            'frame',
            { peer, bytes: channel.bufferedBytes },
            'expert stream ended inside a frame: the partial frame is dropped'
          )
        if (inFlight === 0) void channel.close()
      },
      onClose: (err) => {
        this.streams.delete(stream)
        const left = (this.streamsByPeer.get(peer) ?? 1) - 1
        if (left <= 0) this.streamsByPeer.delete(peer)
        else this.streamsByPeer.set(peer, left)
        if (err instanceof InvalidFrameError)
          this.refusals.note(
            'frame',
            { peer: connection.remotePeer.toString(), err: err.message },
            'expert stream reset: bad frame'
          )
        else if (err != null)
          this.init.logger?.debug({ err: err.message }, 'expert stream closed with error')
      }
    })
  }

  private reply(
    channel: FrameChannel,
    req: Pick<ExpertRequest, 'requestId' | 'modelId' | 'layer' | 'expert' | 'dtype'>,
    status: Status,
    message: string
  ): void {
    this.init.metrics?.requests.inc({ layer: req.layer, expert: req.expert, status })
    if (!channel.isOpen) return
    try {
      channel.write(
        encodeResponseFrame({
          requestId: req.requestId,
          status,
          message,
          dtype: req.dtype,
          rows: 0,
          hidden: 0,
          signature: EMPTY,
          modelId: req.modelId,
          layer: req.layer,
          expert: req.expert
        })
      )
    } catch {}
  }

  private async serve(req: ExpertRequest, peer: PeerId, channel: FrameChannel): Promise<void> {
    const t0 = performance.now()
    let status: Status = Status.OK
    let refund: void | (() => void) = undefined
    try {
      const served = this.validate(req)
      const x = decodeTensor(req.tensor, req.dtype)
      // non-finite policy (docs/protocol.md#non-finite-values): refused, never computed and signed
      const badIn = firstNonFinite(x, DType.FP32)
      if (badIn >= 0)
        throw new ProtocolError(
          Status.BAD_REQUEST,
          `input element ${badIn} (row ${Math.floor(badIn / req.hidden)}) is ${x[badIn]}: tensors must be finite`
        )
      refund = await this.init.verifyPayment?.(req, peer)
      const y = await served.batcher.submit(req.layer, req.expert, x, req.rows)
      const out = encodeTensor(y, req.dtype)
      const badOut = firstNonFinite(out, req.dtype)
      if (badOut >= 0)
        throw new ProtocolError(
          Status.BAD_REQUEST,
          `output element ${badOut} (row ${Math.floor(badOut / req.hidden)}) is not finite in ${req.dtype}: the input is out of this expert's range`
        )
      const signature: Uint8Array<ArrayBuffer> =
        this.init.sign === false
          ? new Uint8Array(0)
          : ((await signResponse(this.components.privateKey, {
              requestId: req.requestId,
              modelId: served.id,
              layer: req.layer,
              expert: req.expert,
              dtype: req.dtype,
              rows: req.rows,
              hidden: req.hidden,
              input: req.tensor,
              output: out
            })) as Uint8Array<ArrayBuffer>)
      this.init.metrics?.requests.inc({ layer: req.layer, expert: req.expert, status })
      if (channel.isOpen)
        channel.write(
          encodeResponseFrame(
            {
              requestId: req.requestId,
              status,
              message: '',
              dtype: req.dtype,
              rows: req.rows,
              hidden: req.hidden,
              signature,
              modelId: served.id,
              layer: req.layer,
              expert: req.expert
            },
            out
          )
        )
      if (!this.stopped) this.poll.kick()
    } catch (err) {
      const e = err as Error
      status = err instanceof ProtocolError ? err.code : Status.INTERNAL
      if (typeof refund === 'function') refund()
      if (status === Status.INTERNAL)
        this.init.logger?.warn(
          { err: e.message, layer: req.layer, expert: req.expert },
          'expert call failed'
        )
      this.reply(channel, req, status, e.message)
    } finally {
      this.init.metrics?.requestDuration.observe({ status }, (performance.now() - t0) / 1000)
    }
  }

  private validate(req: ExpertRequest): Served {
    const served = this.served.find((s) => equalBytes(s.id, req.modelId))
    if (served == null)
      throw new ProtocolError(Status.UNKNOWN_MODEL, 'this node does not serve that model id')
    const m = served.model
    if (
      req.layer >= m.numLayers ||
      req.expert >= m.numExperts ||
      !served.hosted.has(expertKey(req.layer, req.expert)) ||
      !m.runtime.has(req.layer, req.expert)
    ) {
      throw new ProtocolError(
        Status.EXPERT_NOT_HOSTED,
        `expert ${req.expert} of layer ${req.layer} is not hosted here`
      )
    }
    const bpe = bytesPerElement(req.dtype)
    if (bpe === 0)
      throw new ProtocolError(
        Status.BAD_DTYPE,
        `dtype ${req.dtype} is not supported (FP32 or FP16)`
      )
    if (req.hidden !== m.hidden || req.hidden > MAX_HIDDEN)
      throw new ProtocolError(
        Status.BAD_SHAPE,
        `hidden is ${req.hidden}, the model's is ${m.hidden}`
      )
    if (req.rows < 1 || req.rows > (this.init.maxBatchRows ?? MAX_ROWS))
      throw new ProtocolError(
        Status.BAD_SHAPE,
        `rows must be 1..${this.init.maxBatchRows ?? MAX_ROWS}, got ${req.rows}`
      )
    if (req.tensor.byteLength !== req.rows * req.hidden * bpe) {
      throw new ProtocolError(
        Status.BAD_SHAPE,
        `tensor has ${req.tensor.byteLength} bytes; ${req.rows}×${req.hidden} ${req.dtype} needs ${req.rows * req.hidden * bpe}`
      )
    }
    return served
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export function expertService(
  init: ExpertServiceInit
): (components: ExpertServiceComponents) => ExpertService {
  return (components) => new ExpertService(components, init)
}
