// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title PeerIdLib — format checks of libp2p PeerId bytes that the EVM can afford.
/// @dev A PeerId of an Ed25519 or secp256k1 key is an identity multihash (code 0x00) of the
/// protobuf-encoded public key (libp2p peer-ids spec:
/// https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md):
///   Ed25519:   00 24 | 08 01 12 20 | 32-byte key   (38 bytes)
///   secp256k1: 00 25 | 08 02 12 21 | 33-byte compressed key (39 bytes, prefix 02 or 03)
/// RSA PeerIds (sha256 multihash) are refused: they do not carry the key, so a router could not
/// verify the binding signature from chain data alone.
library PeerIdLib {
    function isSupported(bytes calldata peerId) internal pure returns (bool) {
        if (peerId.length == 38) {
            return
                peerId[0] == 0x00 &&
                peerId[1] == 0x24 &&
                peerId[2] == 0x08 &&
                peerId[3] == 0x01 &&
                peerId[4] == 0x12 &&
                peerId[5] == 0x20;
        }
        if (peerId.length == 39) {
            return
                peerId[0] == 0x00 &&
                peerId[1] == 0x25 &&
                peerId[2] == 0x08 &&
                peerId[3] == 0x02 &&
                peerId[4] == 0x12 &&
                peerId[5] == 0x21 &&
                (peerId[6] == 0x02 || peerId[6] == 0x03);
        }
        return false;
    }
}
