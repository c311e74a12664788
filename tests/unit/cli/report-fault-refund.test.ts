// `pov audit report-fault` claims back, by default, what the payer paid for the convicted
// operator's wrong answers: the charges the router wrote into the evidence (router/evidence.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { claimedRefund } from '../../../cli/audit/faults.js'
import {
  EVIDENCE_FORMAT,
  type EvidenceAnswer,
  type FaultEvidence
} from '../../../router/evidence.js'

const CHEAT = '0x00000000000000000000000000000000000000C1'
const HONEST = '0x00000000000000000000000000000000000000A1'

function answer(peerId: string, operator: string, charge?: string): EvidenceAnswer {
  return {
    source: 'node',
    peerId,
    binding: {
      chainId: '31337',
      registry: '0x0000000000000000000000000000000000000001',
      operator,
      peerIdBytes: '0x00',
      peerSignature: '0x00'
    },
    outputHash: '0x00',
    output: '',
    ...(charge != null
      ? {
          payment: {
            payer: '0x00000000000000000000000000000000000000B0',
            payee: operator,
            cumulativeAmount: '1000',
            voucherSignature: '0x00',
            charge
          }
        }
      : {})
  }
}

function evidence(answers: EvidenceAnswer[], convicted: string[]): FaultEvidence {
  return {
    format: EVIDENCE_FORMAT,
    modelId: '0x00',
    layer: 0,
    expert: 0,
    dtype: 'fp32',
    rows: 1,
    hidden: 8,
    inputHash: '0x00',
    input: '',
    answers,
    router: { tolerance: 0.01, convicted, createdAt: '2026-01-01T00:00:00Z' }
  }
}

test('the default refund is the convicted operator’s recorded charges, nobody else’s', () => {
  const e = evidence(
    [answer('cheat', CHEAT, '700'), answer('honest', HONEST, '300'), answer('cheat', CHEAT, '50')],
    ['cheat']
  )
  assert.equal(claimedRefund(e, CHEAT), 750n)
  assert.equal(claimedRefund(e, CHEAT.toLowerCase()), 750n)
  // the honest answer is never refunded, and an operator not convicted claims nothing
  assert.equal(claimedRefund(e, HONEST), 0n)
})

test('an unpaid network (no payment recorded) claims 0', () => {
  assert.equal(claimedRefund(evidence([answer('cheat', CHEAT)], ['cheat']), CHEAT), 0n)
})
