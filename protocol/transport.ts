// The transport stack both roles use (docs/protocol.md#transport): TCP (and TCP through a
// Circuit Relay v2 relay, for nodes behind NAT: docs/network.md), Noise XX, Yamux, with
// the caps raised for multi-MiB expert frames (docs/toolchain.md: defaults are 4 MiB read buffers and
// 5 inbound connections/s, which drops the 6th loopback dial).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { tcp } from '@libp2p/tcp'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { Circuit } from '@multiformats/multiaddr-matcher'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Libp2pOptions } from 'libp2p'
import type { Connection, ConnectionEncrypter, StreamMuxerFactory } from '@libp2p/interface'
import type { Socket } from 'node:net'
import { MAX_FRAME_BYTES } from './constants.js'

export function transportOptions(): Pick<
  Libp2pOptions,
  'transports' | 'connectionEncrypters' | 'streamMuxers' | 'connectionManager'
> {
  quietEmptyLengthReads()
  return {
    transports: [tcp()],
    connectionEncrypters: [coalescedWrites(noise())],
    streamMuxers: [
      announcedWindows(
        yamux({
          // The initial window stays the spec's 256 KiB (both ends assume it for a new stream,
          // whatever they are configured with); each pov stream then announces
          // ANNOUNCED_STREAM_WINDOW with its first window update (announcedWindows below).
          streamOptions: {
            maxStreamWindowSize: MAX_STREAM_WINDOW,
            maxReadBufferLength: 2 * MAX_FRAME_BYTES,
            // decode streams idle between prompts; the router reopens one that timed out anyway
            inactivityTimeout: 10 * 60_000
          } as any
        })
      )
    ],
    connectionManager: {
      // many routers (and tests) dial at once; the default 5/s drops the 6th
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256
    }
  }
}

/**
 * transportOptions() plus the Circuit Relay v2 transport, which dials
 * …/p2p/<relay>/p2p-circuit/p2p/<node> addresses (nodes behind NAT, docs/network.md) and listens
 * on them for a node that reserved a slot. It needs the identify service on the host.
 */
export function relayedTransportOptions(): ReturnType<typeof transportOptions> {
  const t = transportOptions()
  return {
    ...t,
    transports: [
      ...(t.transports ?? []),
      circuitRelayTransport({ reservationCompletionTimeout: RELAY_RESERVATION_TIMEOUT_MS })
    ]
  }
}

/**
 * How long a node's dial to its relay plus the reservation exchange may take (libp2p's default:
 * 5 s). On a loaded machine they take longer; an attempt cut at 5 s is dropped and started again
 * from the dial, so under sustained load the node stayed unreachable (the NAT e2e's home node
 * once did). The relay itself gives the exchange 30 s (circuit-relay-v2's hop timeout): so do we.
 * Attempts never overlap (node/nat.ts keepReservations waits for the last one to settle).
 */
export const RELAY_RESERVATION_TIMEOUT_MS = 30_000

/** A connection that does not go through a relay (and carries no relay limits). */
export function isDirect(c: Pick<Connection, 'remoteAddr' | 'limits'>): boolean {
  return c.limits == null && !Circuit.matches(c.remoteAddr)
}

/**
 * @libp2p/tcp writes every chunk of an outgoing message with its own socket.write(); a noise
 * message over a yamux frame is 6-11 chunks (length, header, our frame's parts, tag), so one
 * expert call cost ~11 syscalls per direction, each waking the peer. Corking the
 * socket for the duration of one send turns them into one writev(). Applied to the raw TCP
 * connection before the encrypter sees it; a connection without a Node socket is left alone.
 */
export function coalescedWrites<C>(
  factory: (components: C) => ConnectionEncrypter
): (components: C) => ConnectionEncrypter {
  return (components) => {
    const inner = factory(components)
    const outer: ConnectionEncrypter = Object.create(inner)
    outer.secureInbound = async (conn, opts) => await inner.secureInbound(cork(conn), opts)
    outer.secureOutbound = async (conn, opts) => await inner.secureOutbound(cork(conn), opts)
    return outer
  }
}

function cork<T extends object>(conn: T): T {
  const c = conn as unknown as { socket?: Socket; sendData?: (data: unknown) => unknown }
  const socket = c.socket
  const send = c.sendData
  if (socket == null || typeof socket.cork !== 'function' || typeof send !== 'function') return conn
  c.sendData = (data: unknown) => {
    socket.cork()
    try {
      return send.call(conn, data)
    } finally {
      socket.uncork()
    }
  }
  return conn
}

/** The yamux spec's initial stream window: what each end may send before any window update. */
export const YAMUX_INITIAL_WINDOW = 256 * 1024
/** The receive window a pov peer announces on each stream (a 1 MiB prefill tensor in one go). */
export const ANNOUNCED_STREAM_WINDOW = 1024 * 1024
/** Upper bound of yamux's window auto-tuning. */
export const MAX_STREAM_WINDOW = 16 * 1024 * 1024

const ESTABLISHED = 3 // yamux StreamState.Established
const PAUSED = 5 // yamux StreamState.Paused
/** Streams of muxers built by announcedWindows(): the only ones the patch below changes. */
const povStreams = new WeakSet<object>()
let windowPatched = false

/**
 * Marks every stream of the wrapped muxer factory's muxers as a pov stream, for the window rules
 * in patchWindowUpdates(). Streams of other muxers in the same process (a stock libp2p host in
 * a test) keep js-yamux's own behaviour.
 */
export function announcedWindows<C>(
  factory: (components: C) => StreamMuxerFactory
): (components: C) => StreamMuxerFactory {
  patchWindowUpdates()
  return (components) => {
    const inner = factory(components)
    const outer: StreamMuxerFactory = Object.create(inner)
    outer.createStreamMuxer = (conn) => {
      const muxer = inner.createStreamMuxer(conn)
      const m = muxer as unknown as { _newStream?: (...args: unknown[]) => object }
      const create = m._newStream
      if (typeof create === 'function')
        m._newStream = function (this: unknown, ...args: unknown[]) {
          const stream = create.apply(this, args)
          povStreams.add(stream)
          return stream
        }
      return muxer
    }
    return outer
  }
}

/**
 * Two changes to js-yamux 8's window updates, for pov streams only:
 * - Announce: yamux starts every stream at 256 KiB in both directions and a receiver grows the
 *   sender's window only by WINDOW_UPDATE frames (the spec; go-yamux and rust-yamux announce a
 *   larger window the same way, with the SYN/ACK). js-yamux's `initialStreamWindowSize` instead
 *   ASSUMES the peer knows the larger window, so a peer with default settings stalls once it has
 *   sent 256 KiB. Here the first update a stream sends (the SYN of a stream we open; the one
 *   answering the first data of a stream we accept) raises the window to
 *   ANNOUNCED_STREAM_WINDOW and tells the peer so.
 * - Lazy updates: js-yamux answers every data frame with an update, a second noise message each
 *   way per expert call; go-yamux and rust-yamux send one only once half the window is used, and
 *   so do pov streams once established (flags such as the ACK still go out at once).
 * Both are windows the peer has been told about, so any spec-following peer interoperates.
 */
export function patchWindowUpdates(): void {
  if (windowPatched) return
  windowPatched = true
  const proto = YamuxStream.prototype as unknown as {
    sendWindowUpdate: (this: WindowState) => void
  }
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState) {
    if (
      !povStreams.has(this) ||
      typeof this.recvWindow !== 'number' ||
      typeof this.recvWindowCapacity !== 'number'
    ) {
      original.call(this)
      return
    }
    if (this.recvWindow < ANNOUNCED_STREAM_WINDOW && this.state !== PAUSED) {
      this.recvWindow = ANNOUNCED_STREAM_WINDOW // the original sends the difference
      original.call(this)
      return
    }
    if (this.state === ESTABLISHED && this.recvWindowCapacity > this.recvWindow / 2) return
    original.call(this)
  }
}

interface WindowState {
  state: number
  recvWindow?: number
  recvWindowCapacity?: number
}

let lengthPatched = false
/** Thrown (never seen outside the decoder) instead of a fresh RangeError with a stack trace. */
const NO_LENGTH_YET = new RangeError('no length prefix in an empty buffer')
const quieted = new WeakSet<object>()

/**
 * @libp2p/utils' LengthPrefixedDecoder (noise's message reader) learns that its buffer is used
 * up by calling the length decoder on it and catching the RangeError, so every noise message
 * received builds one Error with a stack trace: ~5 µs in a loop, 25-30 µs per message right after
 * a wake-up (2-vCPU AMD EPYC VM, 2026-12), on each side of an expert call. This wraps each decoder's length
 * function once so an EMPTY buffer throws a prebuilt RangeError instead. The decoder's own loop
 * is untouched: it still catches the RangeError and waits for more bytes, exactly as before.
 */
export function quietEmptyLengthReads(): void {
  if (lengthPatched) return
  lengthPatched = true
  const proto = LengthPrefixedDecoder.prototype as unknown as {
    decode: (this: LengthState, buf: unknown) => Generator<unknown>
  }
  const original = proto.decode
  proto.decode = function (this: LengthState, buf: unknown) {
    if (!quieted.has(this) && typeof this.lengthDecoder === 'function') {
      quieted.add(this)
      const inner = this.lengthDecoder
      this.lengthDecoder = (data: { byteLength: number }) => {
        if (data.byteLength === 0) throw NO_LENGTH_YET
        return inner(data)
      }
    }
    return original.call(this, buf)
  }
}

interface LengthState {
  lengthDecoder?: (data: { byteLength: number }) => number
}
