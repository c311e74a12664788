// The operator/client keystore: one directory holding an Ethereum key (geth V3 JSON, scrypt, as
// ethers writes it) and a libp2p identity key (protobuf-marshalled, AES-256-GCM under a scrypt key
// derived from the same passphrase). Keys never leave this directory unencrypted.
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb } from 'node:crypto'
import { mkdir, readFile, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Wallet, encryptKeystoreJson, scrypt as ethersScrypt, type HDNodeWallet } from 'ethers'
import type { PrivateKey } from '@libp2p/interface'
import { UserError } from './errors.js'
import { describeFileError } from './error-format.js'

const scrypt = promisify(scryptCb) as (
  pw: string,
  salt: Buffer,
  len: number,
  opts: object
) => Promise<Buffer>
const scryptBytes = promisify(scryptCb) as (
  pw: Uint8Array,
  salt: Uint8Array,
  len: number,
  opts: object
) => Promise<Buffer>

// ethers' keystore scrypt is plain JavaScript (seconds at N = 2^17); Node's is native. Same KDF,
// same keys: ethers calls this for every keystore it encrypts or decrypts.
ethersScrypt.register(
  async (passwd, salt, N, r, p, dkLen) =>
    await scryptBytes(passwd, salt, dkLen, { N, r, p, maxmem: 256 * N * r + (1 << 20) })
)

/** libp2p's key code, loaded only by the commands that touch the libp2p key. */
async function libp2pKeys(): Promise<{
  generateKeyPair: typeof import('@libp2p/crypto/keys').generateKeyPair
  privateKeyFromProtobuf: typeof import('@libp2p/crypto/keys').privateKeyFromProtobuf
  privateKeyToProtobuf: typeof import('@libp2p/crypto/keys').privateKeyToProtobuf
  peerIdFromPrivateKey: typeof import('@libp2p/peer-id').peerIdFromPrivateKey
}> {
  const [keys, ids] = await Promise.all([import('@libp2p/crypto/keys'), import('@libp2p/peer-id')])
  return { ...keys, peerIdFromPrivateKey: ids.peerIdFromPrivateKey }
}

export const ETH_KEY_FILE = 'ethereum.json'
export const P2P_KEY_FILE = 'libp2p.json'
// scrypt cost for the libp2p key file: the same N as ethers' keystore default (2^17).
const SCRYPT = { N: 1 << 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 }

export interface Keystore {
  wallet: Wallet
  p2pKey: PrivateKey
  peerId: string
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

/**
 * Creates a new keystore in `dir`; refuses to overwrite an existing one. `scryptN` lowers the KDF
 * cost for throw-away keys (the demo, tests); the default is ethers' (and geth's) 2^17.
 */
export async function createKeystore(
  dir: string,
  password: string,
  opts: { scryptN?: number } = {}
): Promise<{ address: string; peerId: string }> {
  const N = opts.scryptN ?? SCRYPT.N
  if (!Number.isInteger(Math.log2(N)) || N < 2)
    throw new UserError(`invalid scrypt cost ${N}: must be a power of two`)
  if ((await exists(join(dir, ETH_KEY_FILE))) || (await exists(join(dir, P2P_KEY_FILE)))) {
    throw new UserError(`a keystore already exists in ${dir} — refusing to overwrite it`)
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const wallet: HDNodeWallet = Wallet.createRandom()
  const { generateKeyPair, privateKeyToProtobuf, peerIdFromPrivateKey } = await libp2pKeys()
  const p2pKey = await generateKeyPair('Ed25519')
  const salt = randomBytes(32)
  const iv = randomBytes(12)
  const cipher = createCipheriv(
    'aes-256-gcm',
    await scrypt(password, salt, 32, { ...SCRYPT, N }),
    iv
  )
  const ciphertext = Buffer.concat([cipher.update(privateKeyToProtobuf(p2pKey)), cipher.final()])
  const peerId = peerIdFromPrivateKey(p2pKey).toString()
  const p2pJson = {
    version: 1,
    peerId,
    kdf: { name: 'scrypt', N, r: SCRYPT.r, p: SCRYPT.p, salt: salt.toString('hex') },
    cipher: {
      name: 'aes-256-gcm',
      iv: iv.toString('hex'),
      tag: cipher.getAuthTag().toString('hex')
    },
    ciphertext: ciphertext.toString('hex')
  }
  await writeFile(
    join(dir, ETH_KEY_FILE),
    await encryptKeystoreJson(
      { address: wallet.address, privateKey: wallet.privateKey },
      password,
      { scrypt: { N } }
    ),
    { mode: 0o600 }
  )
  await writeFile(join(dir, P2P_KEY_FILE), JSON.stringify(p2pJson, null, 2) + '\n', { mode: 0o600 })
  return { address: wallet.address, peerId }
}

/** The Ethereum key only (clients need no libp2p key). */
export async function loadWallet(dir: string, password: string): Promise<Wallet> {
  const path = join(dir, ETH_KEY_FILE)
  if (!(await exists(path)))
    throw new UserError(
      `no keystore at ${dir} — create one with \`pov node init --keystore ${dir}\` or \`pov key new\``
    )
  try {
    const w = await Wallet.fromEncryptedJson(await readFile(path, 'utf8'), password)
    return new Wallet(w.privateKey)
  } catch (err) {
    throw new UserError(
      `cannot decrypt ${path}: ${(err as Error).message.includes('password') ? 'wrong passphrase' : (err as Error).message}`
    )
  }
}

export async function loadKeystore(dir: string, password: string): Promise<Keystore> {
  const wallet = await loadWallet(dir, password)
  const path = join(dir, P2P_KEY_FILE)
  if (!(await exists(path)))
    throw new UserError(
      `no libp2p key at ${path} — this keystore was made for a client; run \`pov node init\``
    )
  const j = JSON.parse(await readFile(path, 'utf8'))
  try {
    const key = await scrypt(password, Buffer.from(j.kdf.salt, 'hex'), 32, {
      N: j.kdf.N,
      r: j.kdf.r,
      p: j.kdf.p,
      maxmem: SCRYPT.maxmem
    })
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(j.cipher.iv, 'hex'))
    d.setAuthTag(Buffer.from(j.cipher.tag, 'hex'))
    const raw = Buffer.concat([d.update(Buffer.from(j.ciphertext, 'hex')), d.final()])
    const { privateKeyFromProtobuf, peerIdFromPrivateKey } = await libp2pKeys()
    const p2pKey = privateKeyFromProtobuf(raw)
    return { wallet, p2pKey, peerId: peerIdFromPrivateKey(p2pKey).toString() }
  } catch {
    throw new UserError(`cannot decrypt ${path}: wrong passphrase or corrupted file`)
  }
}

/**
 * The passphrase: from a file (never from the command line; trailing newline dropped), else
 * POV_PASSWORD, else asked on the terminal with hidden input (twice for a new key).
 */
export async function readPassword(
  file: string | undefined,
  envValue: string | undefined,
  opts: { confirm?: boolean } = {}
): Promise<string> {
  if (file != null) {
    try {
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
    } catch (err) {
      const why = describeFileError(err, 'the password file')
      if (why == null) throw err
      throw new UserError(
        `${why} — put the passphrase on its first line (chmod 600), or leave out --password-file to be asked for it`
      )
    }
  }
  if (envValue != null) return envValue
  if (process.stdin.isTTY === true) return await promptPassword(opts.confirm === true)
  throw new UserError(
    'no passphrase: pass --password-file FILE (or set POV_PASSWORD for automation; on a terminal you are asked for it)'
  )
}

/** Asks on the terminal, input hidden; prompts go to stderr so --json output on stdout stays clean. */
export async function promptPassword(
  confirm: boolean,
  io: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream } = {}
): Promise<string> {
  const { default: password } = await import('@inquirer/password')
  const ctx = { input: io.input, output: io.output ?? process.stderr, clearPromptOnDone: true }
  try {
    const first = await password(
      {
        message: confirm ? 'New keystore passphrase' : 'Keystore passphrase',
        validate: (v) => v.length > 0 || 'the passphrase cannot be empty'
      },
      ctx
    )
    if (!confirm) return first
    const again = await password({ message: 'Repeat the passphrase' }, ctx)
    if (again !== first) throw new UserError('the two passphrases differ — nothing was written')
    return first
  } catch (err) {
    if ((err as Error).name === 'ExitPromptError')
      throw new UserError('cancelled at the passphrase prompt', 130)
    throw err
  }
}
