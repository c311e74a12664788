// A fake hosted model (no ORT): expert (l, e) multiplies by (1 + 10 l + e); runs are recorded.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { ExpertService, type ExpertServiceInit } from '../../../node/expert-service.js'
import type { HostedModel } from '../../../node/runtime.js'
import { ExpertChannel } from '../../../router/channel.js'
import type { BusyPoll } from '../../../protocol/busy-poll.js'
import { DType } from '../../../protocol/expert.js'
import { encodeTensor, hexToBytes } from '../../../protocol/codec.js'

export const MODEL_ID = '0x' + 'ab'.repeat(32)
export const HIDDEN = 8

export interface Run {
  layer: number
  expert: number
  rows: number
}

export function fakeModel(
  opts: { delayMs?: number; runs?: Run[]; fail?: boolean } = {}
): HostedModel {
  const experts: Array<[number, number]> = [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1]
  ]
  return {
    modelId: MODEL_ID,
    manifestHash: MODEL_ID,
    hidden: HIDDEN,
    numLayers: 2,
    numExperts: 4,
    shards: [0, 1],
    experts,
    runtime: {
      has: (l, e) => experts.some(([a, b]) => a === l && b === e),
      runExpert: async (layer, expert, x, rows) => {
        opts.runs?.push({ layer, expert, rows })
        if (opts.delayMs != null) await new Promise((resolve) => setTimeout(resolve, opts.delayMs))
        if (opts.fail === true) throw new Error('runtime exploded')
        return x.map((v) => v * (1 + 10 * layer + expert))
      }
    }
  }
}

export interface Harness {
  service: ExpertService
  key: PrivateKey
  peer: PeerId
  connect: (opts?: {
    poll?: BusyPoll
  }) => Promise<{ client: ExpertChannel; raw: import('@libp2p/interface').Stream }>
}

export async function harness(
  init: Partial<ExpertServiceInit> & { model?: HostedModel } = {}
): Promise<Harness> {
  const key = await generateKeyPair('Ed25519')
  const registrar = { handle: async () => {}, unhandle: async () => {} }
  const service = new ExpertService(
    { registrar, privateKey: key },
    { models: [init.model ?? fakeModel()], ...init }
  )
  const clientPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return {
    service,
    key,
    peer: peerIdFromPrivateKey(key),
    connect: async (opts = {}) => {
      const [outbound, inbound] = await streamPair({ delay: 0 })
      service.handleExpertStream(inbound, { remotePeer: clientPeer })
      return { client: new ExpertChannel(outbound, { poll: opts.poll }), raw: outbound }
    }
  }
}

let nextId = 1n
export function request(
  x: Float32Array,
  over: Partial<{
    layer: number
    expert: number
    rows: number
    hidden: number
    dtype: DType
    modelId: Uint8Array<ArrayBuffer>
  }> = {}
) {
  const dtype = over.dtype ?? DType.FP32
  return {
    header: {
      requestId: nextId++,
      modelId: over.modelId ?? hexToBytes(MODEL_ID),
      layer: over.layer ?? 1,
      expert: over.expert ?? 1,
      dtype,
      rows: over.rows ?? x.length / HIDDEN,
      hidden: over.hidden ?? HIDDEN
    },
    tensor: encodeTensor(x, dtype === DType.FP16 ? DType.FP16 : DType.FP32)
  }
}

export const rowsOf = (rows: number, seed = 1): Float32Array =>
  Float32Array.from({ length: rows * HIDDEN }, (_, i) => ((i * 7 + seed * 13) % 17) - 8)
