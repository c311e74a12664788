/**
 * The signed binding between a libp2p PeerId and an operator's address (docs/contracts.md).
 *
 * message = keccak256(abi.encode(
 *   keccak256("pov.peer-binding.v1"), uint256 chainId, address registry, address operator,
 *   keccak256(peerIdBytes)))                                   — 32 bytes, = ExpertRegistry.bindingMessage
 * signature = the PeerId's libp2p private key `.sign(message)` (Ed25519: 64 bytes over the raw
 * 32 bytes; secp256k1: DER ECDSA over sha256(message), as libp2p does).
 *
 * The node signs it once at registration; routers verify it off-chain with the public key that
 * the PeerId itself carries (identity multihash), because the EVM cannot verify Ed25519.
 */
import { AbiCoder, getAddress, getBytes, hexlify, keccak256, toUtf8Bytes } from 'ethers'
import type { BytesLike } from 'ethers'
import { publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'

export const PEER_BINDING_TAG = keccak256(toUtf8Bytes('pov.peer-binding.v1'))

export interface PeerBindingContext {
  chainId: bigint | number
  /** ExpertRegistry address. */
  registry: string
  /** Operator (staking) address. */
  operator: string
}

export interface PeerBinding {
  /** PeerId bytes (identity multihash of the protobuf public key). */
  peerId: Uint8Array
  signature: Uint8Array
}

/** The 32-byte message that binds `peerId` to `operator` on (chainId, registry). */
export function bindingMessage(ctx: PeerBindingContext, peerId: BytesLike): Uint8Array {
  const encoded = AbiCoder.defaultAbiCoder().encode(
    ['bytes32', 'uint256', 'address', 'address', 'bytes32'],
    [
      PEER_BINDING_TAG,
      BigInt(ctx.chainId),
      getAddress(ctx.registry),
      getAddress(ctx.operator),
      keccak256(peerId)
    ]
  )
  return getBytes(keccak256(encoded))
}

/** Signs the binding with the node's libp2p private key (Ed25519 or secp256k1). */
export async function signPeerBinding(
  privateKey: PrivateKey,
  ctx: PeerBindingContext
): Promise<PeerBinding> {
  if (privateKey.type !== 'Ed25519' && privateKey.type !== 'secp256k1') {
    throw new Error(
      `peer binding: ${privateKey.type} keys are not supported (use Ed25519 or secp256k1)`
    )
  }
  const peerId = peerIdFromPrivateKey(privateKey).toMultihash().bytes
  const signature = await privateKey.sign(bindingMessage(ctx, peerId))
  return { peerId, signature }
}

/**
 * The public key carried by PeerId bytes of an Ed25519 / secp256k1 key (identity multihash:
 * 0x00, length, protobuf key). Throws for other PeerIds (RSA PeerIds hash the key).
 */
export function publicKeyFromPeerIdBytes(peerId: BytesLike) {
  const bytes = getBytes(peerId)
  if (bytes.length < 3 || bytes[0] !== 0x00 || bytes[1] !== bytes.length - 2) {
    throw new Error(`peer binding: ${hexlify(bytes)} is not an identity-multihash PeerId`)
  }
  return publicKeyFromProtobuf(bytes.subarray(2))
}

/** True when `signature` is the PeerId key's signature of the binding to `ctx.operator`. Never throws. */
export async function verifyPeerBinding(
  ctx: PeerBindingContext,
  peerId: BytesLike,
  signature: BytesLike
): Promise<boolean> {
  try {
    const key = publicKeyFromPeerIdBytes(peerId)
    return await key.verify(bindingMessage(ctx, peerId), getBytes(signature))
  } catch {
    return false
  }
}
