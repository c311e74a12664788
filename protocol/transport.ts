// The transport stack both roles use (docs/protocol.md#transport): TCP, Noise XX, Yamux, with
// the caps raised for multi-MiB expert frames (TOOLCHAIN.md: defaults are 4 MiB read buffers and
// 5 inbound connections/s, which drops the 6th loopback dial).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import type { Libp2pOptions } from 'libp2p'
import { MAX_FRAME_BYTES } from './constants.js'

export function transportOptions (): Pick<Libp2pOptions, 'transports' | 'connectionEncrypters' | 'streamMuxers' | 'connectionManager'> {
  return {
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({
      // a 64 KiB yamux frame per noise message is the cipher's unit anyway; bigger windows keep
      // a 1 MiB prefill tensor from stalling on window updates
      streamOptions: {
        initialStreamWindowSize: 1024 * 1024,
        maxStreamWindowSize: 16 * 1024 * 1024,
        maxReadBufferLength: 2 * MAX_FRAME_BYTES,
        // decode streams idle between prompts; the router reopens one that timed out anyway
        inactivityTimeout: 10 * 60_000
      } as any
    })],
    connectionManager: {
      // many routers (and tests) dial at once; the default 5/s drops the 6th
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256
    }
  }
}
