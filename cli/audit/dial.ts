// The auditor's dialer: a client-only libp2p host that asks each registered node, over
// /pov/info/1.0.0, which model ids and manifest hashes it serves.
import { createLibp2p } from 'libp2p'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { publicKeyFromPeerIdBytes } from '../../chain/peer-binding.js'
import { relayedTransportOptions } from '../../protocol/transport.js'
import { bytesToHex } from '../../protocol/codec.js'
import { WireClient } from '../../router/client.js'
import type { NodeDialer } from '../../chain/audit/report.js'

/** PeerId bytes (as stored in the registry) → the PeerId string. */
export function peerIdString(peerIdBytes: string): string {
  return peerIdFromPublicKey(publicKeyFromPeerIdBytes(peerIdBytes)).toString()
}

export async function dialNodeInfo(): Promise<{ dial: NodeDialer; close: () => Promise<void> }> {
  const libp2p = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [] },
    ...relayedTransportOptions(),
    services: { identify: identify() } // the relay transport needs it
  })
  const client = new WireClient(libp2p)
  const dial: NodeDialer = async (node) => {
    const id = peerIdString(node.peerId)
    let lastErr: unknown = new Error('no multiaddrs registered')
    for (const a of node.multiaddrs) {
      try {
        const { info } = await client.info(`${a}/p2p/${id}`, { signal: AbortSignal.timeout(5000) })
        return info.models.map((m) => ({
          modelId: bytesToHex(m.modelId),
          manifestHash: bytesToHex(m.manifestHash)
        }))
      } catch (err) {
        lastErr = err
      }
    }
    throw lastErr
  }
  return {
    dial,
    close: async () => {
      await client.close()
      await libp2p.stop()
    }
  }
}
