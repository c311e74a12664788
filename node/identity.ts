// The node's persistent libp2p identity: a protobuf-marshalled private key in a file
// (@libp2p/crypto's privateKeyToProtobuf), created with mode 0600 when missing.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

export async function loadOrCreateKey(
  file: string
): Promise<{ key: PrivateKey; created: boolean }> {
  try {
    return { key: privateKeyFromProtobuf(await readFile(file)), created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`cannot read the node key ${file}: ${(err as Error).message}`)
  }
  // Ed25519: the public key is embedded in the PeerId, so routers verify response signatures
  // without a lookup (docs/protocol.md#signature)
  const key = await generateKeyPair('Ed25519')
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return { key, created: true }
}
