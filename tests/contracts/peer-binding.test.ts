import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Wallet, hexlify } from 'ethers'
import {
  bindingMessage,
  publicKeyFromPeerIdBytes,
  signPeerBinding,
  verifyPeerBinding
} from '../../chain/peer-binding.js'

const ctx = {
  chainId: 31337,
  registry: Wallet.createRandom().address,
  operator: Wallet.createRandom().address
}

describe('chain/peer-binding', () => {
  for (const type of ['Ed25519', 'secp256k1'] as const) {
    it(`${type}: sign → verify; any other context or signature fails`, async () => {
      const key = await generateKeyPair(type)
      const { peerId, signature } = await signPeerBinding(key, ctx)
      assert.deepEqual(peerId, peerIdFromPrivateKey(key).toMultihash().bytes)
      assert.equal(await verifyPeerBinding(ctx, peerId, signature), true)
      assert.equal(
        await verifyPeerBinding(
          { ...ctx, operator: Wallet.createRandom().address },
          peerId,
          signature
        ),
        false
      )
      assert.equal(await verifyPeerBinding({ ...ctx, chainId: 1 }, peerId, signature), false)
      assert.equal(
        await verifyPeerBinding(
          { ...ctx, registry: Wallet.createRandom().address },
          peerId,
          signature
        ),
        false
      )
      const other = await signPeerBinding(await generateKeyPair(type), ctx)
      assert.equal(await verifyPeerBinding(ctx, peerId, other.signature), false)
      assert.equal(await verifyPeerBinding(ctx, hexlify(peerId), hexlify(signature)), true)
    })
  }
  it('the message is 32 bytes and depends on every field', () => {
    const peerId = new Uint8Array([0, 36, 8, 1, 18, 32, ...new Uint8Array(32)])
    const m = bindingMessage(ctx, peerId)
    assert.equal(m.length, 32)
    assert.notDeepEqual(bindingMessage({ ...ctx, chainId: 2 }, peerId), m)
    assert.notDeepEqual(bindingMessage(ctx, new Uint8Array([...peerId.subarray(0, 37), 1])), m)
  })
  it('refuses PeerIds that do not carry their key (RSA / sha256 multihash)', async () => {
    const sha256PeerId = new Uint8Array([0x12, 0x20, ...new Uint8Array(32).fill(7)])
    assert.throws(() => publicKeyFromPeerIdBytes(sha256PeerId), /not an identity-multihash PeerId/)
    assert.equal(await verifyPeerBinding(ctx, sha256PeerId, new Uint8Array(64)), false)
  })
})
