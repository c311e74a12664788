// The evidence of an oracle run (router/oracle-evidence.ts): calls recorded as a router reports
// them (real Ed25519 node signatures, real EIP-712 vouchers, real PeerId bindings), committed by
// the file's keccak256, and checked the way `pov oracle check` does — then the same file with a
// forged signature, a missing one, a PeerId bound to someone else, a forged voucher, a swapped
// file and malformed bytes, each refused with a line that says what is wrong.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Wallet, keccak256, hexlify } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { DType } from '../../../protocol/expert.js'
import { bytesToHex, encodeTensor, hexToBytes } from '../../../protocol/codec.js'
import { sha256, signResponse } from '../../../protocol/signature.js'
import { signVoucher, voucherDomain } from '../../../protocol/voucher.js'
import { voucherToWire } from '../../../protocol/payment.js'
import { signPeerBinding } from '../../../chain/peer-binding.js'
import {
  CallRecorder,
  checkOracleEvidence,
  encodeOracleEvidence,
  firstDifferingCall,
  openCommittedEvidence,
  OracleEvidenceError,
  ORACLE_EVIDENCE_FORMAT,
  parseOracleEvidence,
  type OracleCall,
  type OracleEvidence,
  type RegisteredBinding
} from '../../../router/oracle-evidence.js'

const MODEL_ID = '0x' + 'ab'.repeat(32)
const HIDDEN = 4
const REGISTRY = '0x00000000000000000000000000000000000000f1'
const CHAIN_ID = 31337n
const domain = voucherDomain('0x00000000000000000000000000000000000000e5', CHAIN_ID)
const PRICE = 10n

interface Node {
  key: PrivateKey
  peer: string
  operator: Wallet
  binding: RegisteredBinding
}

async function node(): Promise<Node> {
  const key = await generateKeyPair('Ed25519')
  const operator = Wallet.createRandom()
  const b = await signPeerBinding(key, {
    chainId: CHAIN_ID,
    registry: REGISTRY,
    operator: operator.address
  })
  return {
    key,
    peer: peerIdFromPrivateKey(key).toString(),
    operator: new Wallet(operator.privateKey),
    binding: {
      chainId: CHAIN_ID,
      registry: REGISTRY,
      peerId: hexlify(b.peerId),
      peerSignature: hexlify(b.signature)
    }
  }
}

const payer = Wallet.createRandom()

/** A run of two tokens: calls on two nodes, paid and signed as a paid router receives them. */
async function run(nodes: Node[]): Promise<OracleEvidence> {
  const byPeer = new Map(nodes.map((n) => [n.peer, n]))
  const rec = new CallRecorder({
    operatorOf: (p) => byPeer.get(p)?.operator.address,
    chargeOf: (_p, rows) => PRICE * BigInt(rows)
  })
  const cumulative = new Map<string, bigint>()
  let requestId = 100n
  const call = async (n: Node, layer: number, expert: number, rows: number, seed: number) => {
    const input = encodeTensor(new Float32Array(rows * HIDDEN).fill(seed), DType.FP32)
    const output = encodeTensor(new Float32Array(rows * HIDDEN).fill(seed * 2), DType.FP32)
    const id = requestId++
    const signature = await signResponse(n.key, {
      requestId: id,
      modelId: hexToBytes(MODEL_ID),
      layer,
      expert,
      dtype: DType.FP32,
      rows,
      hidden: HIDDEN,
      input,
      output
    })
    const amount = (cumulative.get(n.peer) ?? 0n) + PRICE * BigInt(rows)
    cumulative.set(n.peer, amount)
    const v = { payer: payer.address, payee: n.operator.address, cumulativeAmount: amount }
    const payment = voucherToWire({ ...v, signature: await signVoucher(payer, domain, v) })
    rec.onRemote({
      peer: n.peer,
      layer,
      expert,
      rows,
      dtype: DType.FP32,
      input,
      answer: { requestId: id, output, signature, payment }
    })
  }
  rec.reset()
  // completion order is not canonical order: the recorder sorts
  await call(nodes[1], 1, 3, 3, 0.5)
  await call(nodes[0], 0, 2, 3, 0.25)
  rec.step = 1
  await call(nodes[0], 1, 0, 1, 0.75)
  await call(nodes[1], 0, 1, 1, 0.125)
  return {
    format: ORACLE_EVIDENCE_FORMAT,
    modelId: MODEL_ID,
    hidden: HIDDEN,
    promptIds: [1, 2, 3],
    tokens: [7, 9],
    margins: [120_000, 80_000],
    stopReason: 'max_tokens',
    experts: '2 paid nodes from the registry',
    degraded: false,
    calls: rec.take()
  }
}

function post(e: OracleEvidence): { bytes: Uint8Array; posted: ReturnType<typeof result> } {
  const bytes = encodeOracleEvidence(e)
  return { bytes, posted: result(e, keccak256(bytes)) }
}
const result = (e: OracleEvidence, evidenceHash: string) => ({
  tokens: e.tokens,
  margins: e.margins,
  evidenceHash
})

async function judge(nodes: Node[], e: OracleEvidence) {
  const { bytes, posted } = post(e)
  const opened = openCommittedEvidence(bytes, posted)
  const byOperator = new Map(nodes.map((n) => [n.operator.address.toLowerCase(), n.binding]))
  return await checkOracleEvidence(opened, posted, {
    modelId: MODEL_ID,
    domain,
    bindingOf: async (op) => byOperator.get(op.toLowerCase()) ?? null
  })
}

const clone = (e: OracleEvidence): OracleEvidence => JSON.parse(JSON.stringify(e)) as OracleEvidence

test('a paid run’s evidence verifies: canonical order, every signature bound in the registry, vouchers by the payer', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  assert.deepEqual(
    e.calls.map((c) => [c.step, c.layer, c.expert]),
    [
      [0, 0, 2],
      [0, 1, 3],
      [1, 0, 1],
      [1, 1, 0]
    ]
  )
  const c = await judge(nodes, e)
  assert.deepEqual(c.problems, [])
  assert.equal(c.signed, 4)
  assert.equal(c.local, 0)
  assert.deepEqual(c.payers, [payer.address])
  const a = c.operators.get(nodes[0].operator.address)!
  assert.deepEqual([a.calls, a.rows, a.charged], [2, 4, 4n * PRICE])
  const b = c.operators.get(nodes[1].operator.address)!
  assert.deepEqual([b.calls, b.rows, b.charged], [2, 4, 4n * PRICE])
})

test('a forged or missing node signature is named with its call', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  const forged = clone(e)
  const sig = hexToBytes(forged.calls[1].signature!)
  sig[5] ^= 1
  forged.calls[1].signature = hexlify(sig)
  const f = await judge(nodes, forged)
  assert.equal(f.signed, 3)
  assert.equal(f.problems.length, 1)
  assert.match(
    f.problems[0],
    /^call 1 \(token 0, layer 1, expert 3, node \w{8}\): the signature does not verify/
  )

  // another output under the node's genuine signature: the signature no longer covers it
  const swapped = clone(e)
  swapped.calls[2].outputHash = '0x' + '11'.repeat(32)
  assert.match((await judge(nodes, swapped)).problems[0], /^call 2 .*signature does not verify/)

  const missing = clone(e)
  delete missing.calls[3].signature
  const m = await judge(nodes, missing)
  assert.match(m.problems[0], /^call 3 \(token 1, layer 1, expert 0, node \w{8}\): no signature/)
})

test('a PeerId the registry does not bind to the named operator, and an unregistered operator, are refused', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  const other = clone(e)
  other.calls[0].operator = nodes[1].operator.address // node 0's answer claimed for operator 1
  assert.match(
    (await judge(nodes, other)).problems[0],
    new RegExp(
      `^call 0 .*the registry binds operator ${nodes[1].operator.address} to \\w{8}, not to this node`
    )
  )
  const stranger = await node()
  const unknown = clone(e)
  unknown.calls[0].operator = stranger.operator.address
  assert.match((await judge(nodes, unknown)).problems[0], /is not registered/)
  const none = clone(e)
  delete none.calls[0].operator
  assert.match((await judge(nodes, none)).problems[0], /no operator named/)
})

test('a voucher not signed by its payer, or paying someone else, is refused', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  const forged = clone(e)
  const p = forged.calls[0].payment!
  p.voucherSignature = await signVoucher(Wallet.createRandom(), domain, {
    payer: p.payer,
    payee: p.payee,
    cumulativeAmount: BigInt(p.cumulativeAmount)
  })
  assert.match((await judge(nodes, forged)).problems[0], /^call 0 .*not signed by its payer/)
  const elsewhere = clone(e)
  elsewhere.calls[0].payment = e.calls[1].payment // node 1's voucher on node 0's call
  assert.match(
    (await judge(nodes, elsewhere)).problems[0],
    /^call 0 .*pays 0x\w+, not the node's operator/
  )
})

test('the commitment: a file other than the committed one is refused; tokens, order and model are held to the result', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  const { bytes, posted } = post(e)
  const tampered = clone(e)
  tampered.calls.pop()
  assert.throws(
    () => openCommittedEvidence(encodeOracleEvidence(tampered), posted),
    (err: Error) =>
      err instanceof OracleEvidenceError &&
      /^commitment mismatch: the evidence file hashes to 0x[0-9a-f]{64}, the posted result commits to 0x[0-9a-f]{64}/.test(
        err.message
      )
  )
  assert.equal(openCommittedEvidence(bytes, posted).calls.length, 4)

  // committed, but not this result's run, or not in canonical order
  const otherTokens = post(e)
  const c = await checkOracleEvidence(
    openCommittedEvidence(otherTokens.bytes, otherTokens.posted),
    { ...otherTokens.posted, tokens: [7, 8] },
    { modelId: MODEL_ID, domain, bindingOf: async () => null }
  )
  assert.match(c.problems[0], /tokens or margins are not the posted ones/)
  const reordered = clone(e)
  reordered.calls.reverse()
  assert.ok(
    (await judge(nodes, reordered)).problems.includes('calls are not in canonical order at call 1')
  )
  const otherModel = await checkOracleEvidence(e, post(e).posted, {
    modelId: '0x' + 'cd'.repeat(32),
    bindingOf: async () => null
  })
  assert.match(otherModel.problems[0], /the evidence is of model 0xabab/)
})

test('malformed evidence gets a clear error, not a crash', () => {
  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
  assert.throws(() => parseOracleEvidence(bytes('{not json')), /evidence is not JSON/)
  assert.throws(
    () => parseOracleEvidence(bytes(JSON.stringify({ format: 'pov-oracle-run/1' }))),
    /not a pov-oracle-evidence\/2 file: format is "pov-oracle-run\/1"/
  )
  const e: Partial<OracleEvidence> = {
    format: ORACLE_EVIDENCE_FORMAT,
    modelId: MODEL_ID,
    hidden: HIDDEN,
    promptIds: [1],
    tokens: [2],
    margins: [3],
    calls: [
      { step: 0, layer: 0, expert: 0, rows: 1, dtype: 'fp32', inputHash: '0x12' } as OracleCall
    ]
  }
  assert.throws(
    () => parseOracleEvidence(bytes(JSON.stringify(e))),
    /call 0: inputHash and outputHash must be 32 bytes of hex/
  )
})

test('the first differing expert call: another output, another input, another routing', async () => {
  const nodes = [await node(), await node()]
  const e = await run(nodes)
  // a local re-run of the same calls: the same hashes, unsigned
  const mine: OracleCall[] = e.calls.map((c) => ({
    step: c.step,
    layer: c.layer,
    expert: c.expert,
    rows: c.rows,
    dtype: c.dtype,
    inputHash: c.inputHash,
    outputHash: c.outputHash,
    source: 'local'
  }))
  assert.equal(firstDifferingCall(e.calls, mine), null)
  const out = mine.map((c) => ({ ...c }))
  out[1].outputHash = '0x' + '22'.repeat(32)
  out[3].inputHash = '0x' + '33'.repeat(32)
  const d = firstDifferingCall(e.calls, out)!
  assert.equal(d.kind, 'output')
  assert.equal(d.index, 1)
  assert.match(
    d.text,
    /^call 1 \(token 0, layer 1, expert 3, node \w{8}\): same input, another output/
  )
  const inp = mine.map((c) => ({ ...c }))
  inp[2].inputHash = '0x' + '33'.repeat(32)
  assert.equal(firstDifferingCall(e.calls, inp)!.kind, 'input')
  assert.equal(firstDifferingCall(e.calls, inp)!.index, 2)
  const routed = mine.map((c) => ({ ...c }))
  routed[2].expert = 5 // this run sent token 1's layer 0 to expert 5, not 1
  const r = firstDifferingCall(e.calls, routed)!
  assert.equal(r.kind, 'missing')
  assert.equal(r.call.step, 1)
  assert.equal(r.call.layer, 0)
})

test('local experts are recorded unsigned, with the hashes an fp32 wire would carry', async () => {
  const rec = new CallRecorder()
  const ex = rec.wrapLocal({
    runExpert: async (_l, _e, x) => x.map((v) => v * 2)
  })
  rec.reset()
  await ex.runExpert(0, 1, new Float32Array(HIDDEN).fill(0.5), 1)
  const [c] = rec.take()
  assert.equal(c.source, 'local')
  assert.equal(c.signature, undefined)
  const wire = (v: number): string =>
    bytesToHex(sha256(encodeTensor(new Float32Array(HIDDEN).fill(v), DType.FP32)))
  assert.equal(c.inputHash, wire(0.5))
  assert.equal(c.outputHash, wire(1))
  const e = await run([await node(), await node()])
  const ok = await checkOracleEvidence({ ...e, calls: [c] }, result(e, '0x'), {
    modelId: MODEL_ID,
    bindingOf: async () => null
  })
  assert.equal(ok.local, 1)
  assert.deepEqual(ok.problems, [])
})
