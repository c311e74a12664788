// The worked examples of docs/protocol.md for the response signature, the voucher and the
// keystore, checked against the text of that file: outside implementations are written from it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createDecipheriv, scryptSync } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { Wallet } from 'ethers'
import { SIGNATURE_DOMAIN } from '../../../protocol/constants.js'
import {
  SIGNED_MESSAGE_BYTES,
  signResponse,
  signedMessage,
  verifyResponse
} from '../../../protocol/signature.js'
import { bytesToHex, hexToBytes } from '../../../protocol/codec.js'
import { DType } from '../../../protocol/expert.js'
import {
  recoverVoucherSigner,
  signVoucher,
  voucherDigest,
  voucherDomain
} from '../../../protocol/voucher.js'
import { createKeystore } from '../../../cli/keystore.js'

const doc = await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')

/** The `key: value` lines of the fenced block after `<!-- name -->`. */
function vector(name: string): Record<string, string> {
  const block = new RegExp(`<!-- ${name} -->\\n\`\`\`\\n([\\s\\S]*?)\\n\`\`\``).exec(doc)
  assert.ok(block != null, `the ${name} block is in docs/protocol.md`)
  return Object.fromEntries(
    block[1].split('\n').map((l) => {
      const i = l.indexOf(': ')
      return [l.slice(0, i), l.slice(i + 2)]
    })
  )
}

test('signature versioning: the documented domain and length are the code’s; a layout change must bump the version', () => {
  assert.match(doc, new RegExp(`over this ${SIGNED_MESSAGE_BYTES}-byte message`))
  assert.ok(doc.includes(`| ${SIGNATURE_DOMAIN.length} | ASCII \`${SIGNATURE_DOMAIN}\``))
  // the layout of v2: if the message changes, this fails — bump the domain's version
  // (docs/protocol.md#versions-and-required-protocols) and the worked example with it
  assert.equal(SIGNATURE_DOMAIN, 'pov/expert-response/v2')
  assert.equal(SIGNED_MESSAGE_BYTES, SIGNATURE_DOMAIN.length + 1 + 8 + 32 + 5 * 4 + 32 + 32)
})

test('response signature vector: key, message bytes and signature as documented', async () => {
  const v = vector('response-signature-vector')
  const key = await generateKeyPairFromSeed('Ed25519', hexToBytes(v['ed25519 seed']))
  assert.equal(bytesToHex(key.publicKey.raw), v['public key'])
  assert.equal(peerIdFromPrivateKey(key).toString(), v['peer id'])
  const f = {
    requestId: BigInt(v.request_id),
    modelId: hexToBytes(v.model_id),
    layer: Number(v.layer),
    expert: Number(v.expert),
    dtype: Number(v.dtype) === 2 ? DType.FP16 : DType.FP32,
    rows: Number(v.rows),
    hidden: Number(v.hidden),
    input: hexToBytes(v['input tensor']),
    output: hexToBytes(v['output tensor'])
  }
  const msg = signedMessage(f)
  assert.equal(msg.byteLength, SIGNED_MESSAGE_BYTES)
  assert.equal(bytesToHex(msg), v.message)
  assert.equal(bytesToHex(await signResponse(key, f)), v.signature)
  // a verifier that knows only the peer id accepts it, and refuses a changed output
  const pub = peerIdFromString(v['peer id']).publicKey!
  assert.equal(await verifyResponse(pub, f, hexToBytes(v.signature)), true)
  const out = f.output.slice()
  out[0] ^= 1
  assert.equal(await verifyResponse(pub, { ...f, output: out }, hexToBytes(v.signature)), false)
})

test('voucher vector: EIP-712 digest and signature as documented', async () => {
  const v = vector('voucher-vector')
  const w = new Wallet(v['payer key'])
  assert.equal(w.address, v.payer)
  const domain = voucherDomain(v.verifyingContract, BigInt(v.chainId))
  const voucher = {
    payer: v.payer,
    payee: v.payee,
    cumulativeAmount: BigInt(v.cumulativeAmount)
  }
  assert.equal(voucherDigest(domain, voucher), v.digest)
  assert.equal(await signVoucher(w, domain, voucher), v.signature)
  assert.equal(recoverVoucherSigner(domain, voucher, v.signature), v.payer)
})

test('keystore format: a keystore decrypts with nothing but the documented rules', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-ks-'))
  try {
    const made = await createKeystore(dir, 'pass', { scryptN: 1024 })
    const j = JSON.parse(await readFile(join(dir, 'libp2p.json'), 'utf8'))
    assert.deepEqual(Object.keys(j).sort(), ['cipher', 'ciphertext', 'kdf', 'peerId', 'version'])
    assert.equal(j.version, 1)
    assert.equal(j.kdf.name, 'scrypt')
    assert.equal(j.cipher.name, 'aes-256-gcm')
    const key = scryptSync('pass', Buffer.from(j.kdf.salt, 'hex'), 32, {
      N: j.kdf.N,
      r: j.kdf.r,
      p: j.kdf.p
    })
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(j.cipher.iv, 'hex'))
    d.setAuthTag(Buffer.from(j.cipher.tag, 'hex'))
    const raw = Buffer.concat([d.update(Buffer.from(j.ciphertext, 'hex')), d.final()])
    // protobuf: field 1 (type) = 1 (Ed25519), field 2 = 64 bytes
    assert.deepEqual([...raw.subarray(0, 4)], [0x08, 0x01, 0x12, 0x40])
    assert.equal(raw.byteLength, 68)
    const p2p = privateKeyFromProtobuf(raw)
    assert.equal(peerIdFromPrivateKey(p2p).toString(), made.peerId)
    assert.equal(j.peerId, made.peerId)
    // the Ethereum key: a v3 keystore any wallet reads
    const eth = JSON.parse(await readFile(join(dir, 'ethereum.json'), 'utf8'))
    assert.equal(eth.version, 3)
    assert.equal(eth.Crypto.cipher, 'aes-128-ctr')
    assert.equal(eth.Crypto.kdf, 'scrypt')
    const w = await Wallet.fromEncryptedJson(JSON.stringify(eth), 'pass')
    assert.equal(w.address, made.address)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
