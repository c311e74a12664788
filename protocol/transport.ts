// The transport stack both roles use (docs/protocol.md#transport): TCP, Noise XX, Yamux, with
// the caps raised for multi-MiB expert frames (TOOLCHAIN.md: defaults are 4 MiB read buffers and
// 5 inbound connections/s, which drops the 6th loopback dial).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { tcp } from '@libp2p/tcp'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Libp2pOptions } from 'libp2p'
import type { ConnectionEncrypter } from '@libp2p/interface'
import type { Socket } from 'node:net'
import { MAX_FRAME_BYTES } from './constants.js'

export function transportOptions(): Pick<
  Libp2pOptions,
  'transports' | 'connectionEncrypters' | 'streamMuxers' | 'connectionManager'
> {
  lazyWindowUpdates()
  quietEmptyLengthReads()
  return {
    transports: [tcp()],
    connectionEncrypters: [coalescedWrites(noise())],
    streamMuxers: [
      yamux({
        // a 64 KiB yamux frame per noise message is the cipher's unit anyway; bigger windows keep
        // a 1 MiB prefill tensor from stalling on window updates
        streamOptions: {
          initialStreamWindowSize: 1024 * 1024,
          maxStreamWindowSize: 16 * 1024 * 1024,
          maxReadBufferLength: 2 * MAX_FRAME_BYTES,
          // decode streams idle between prompts; the router reopens one that timed out anyway
          inactivityTimeout: 10 * 60_000
        } as any
      })
    ],
    connectionManager: {
      // many routers (and tests) dial at once; the default 5/s drops the 6th
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256
    }
  }
}

/**
 * @libp2p/tcp writes every chunk of an outgoing message with its own socket.write(); a noise
 * message over a yamux frame is 6-11 chunks (length, header, our frame's parts, tag), so one
 * expert call cost ~11 syscalls per direction, each waking the peer (TOOLCHAIN.md). Corking the
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

const ESTABLISHED = 3 // yamux StreamState.Established
let windowPatched = false

/**
 * js-yamux 8 answers every data frame with a window update, so each expert call costs a second
 * noise message (encrypt, syscall, wake-up, decrypt) each way. go-yamux and rust-yamux send one
 * only once half the receive window is used; this makes js-yamux do the same for established
 * streams (flags such as the SYN ACK still go out at once, and window auto-tuning is unchanged).
 * Patches YamuxStream (exported as '@chainsafe/libp2p-yamux/stream') once per process, and
 * falls back to the original behaviour if the fields it reads are not there.
 */
export function lazyWindowUpdates(): void {
  if (windowPatched) return
  windowPatched = true
  const proto = YamuxStream.prototype as unknown as {
    sendWindowUpdate: (this: WindowState) => void
  }
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState) {
    if (
      this.state === ESTABLISHED &&
      typeof this.recvWindow === 'number' &&
      typeof this.recvWindowCapacity === 'number' &&
      this.recvWindowCapacity > this.recvWindow / 2
    )
      return
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
 * received builds one Error with a stack trace: ~5 µs in a loop, 25-30 µs per message measured
 * right after a wake-up here, on each side of an expert call. This wraps each decoder's length
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
