// The audit report builders over decoded events, without a chain: logs are encoded with the
// contracts' own ABIs, so the builders see exactly what a node's getLogs returns.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { getAddress, type Log } from 'ethers'
import { combinedInterface } from '../../../chain/contracts.js'
import {
  collectModels,
  collectProposals,
  collectRegistry,
  collectSettlements,
  contractNames,
  dialCheck,
  parseEvents,
  settlementsCsv,
  votesCsv,
  type AuditReport
} from '../../../chain/audit/report.js'

const ADDR = {
  governor: '0x' + '11'.repeat(20),
  models: '0x' + '22'.repeat(20),
  registry: '0x' + '33'.repeat(20),
  escrow: '0x' + '44'.repeat(20),
  other: '0x' + '55'.repeat(20)
}
const names = contractNames({
  governor: ADDR.governor,
  models: ADDR.models,
  registry: ADDR.registry,
  escrow: ADDR.escrow
})
const iface = combinedInterface()
const A = '0x' + 'aa'.repeat(20)
const B = '0x' + 'bb'.repeat(20)
const C = '0x' + 'cc'.repeat(20)
const MODEL = '0x' + '0d'.repeat(32)

function log(
  address: string,
  event: string,
  values: unknown[],
  at: { block: number; tx: string; index: number }
): Log {
  const { data, topics } = iface.encodeEventLog(event, values)
  return {
    address,
    data,
    topics,
    blockNumber: at.block,
    transactionHash: at.tx,
    index: at.index
  } as unknown as Log // the fields parseLog and the report read
}
const tx = (n: number): string => '0x' + n.toString(16).padStart(64, '0')

test('parseEvents: known events only, ordered by (block, tx hash, log index)', () => {
  const logs = [
    log(ADDR.escrow, 'EarningsWithdrawn', [A, 5n], { block: 9, tx: tx(1), index: 0 }),
    log(ADDR.models, 'ModelRevoked', [MODEL], { block: 3, tx: tx(2), index: 4 }),
    log(ADDR.models, 'ModelRevoked', [MODEL], { block: 3, tx: tx(2), index: 1 }),
    log(ADDR.models, 'ModelRevoked', [MODEL], { block: 3, tx: tx(1), index: 7 }),
    {
      ...log(ADDR.other, 'ModelRevoked', [MODEL], { block: 1, tx: tx(1), index: 0 }),
      topics: [tx(99)]
    }
  ] as Log[]
  const parsed = parseEvents(logs, names)
  assert.deepEqual(
    parsed.map((p) => [p.log.blockNumber, p.log.transactionHash, p.log.index, p.from]),
    [
      [3, tx(1), 7, 'models'],
      [3, tx(2), 1, 'models'],
      [3, tx(2), 4, 'models'],
      [9, tx(1), 0, 'escrow']
    ]
  )
})

test('collectProposals: calls decoded against the ABIs, votes, queue eta and timeline', () => {
  const approve = iface.encodeFunctionData('approveModel', [
    MODEL,
    { name: 'tiny', layers: 2, experts: 8, shardCount: 8, uri: 'file:///m' }
  ])
  const logs = [
    log(
      ADDR.governor,
      'ProposalCreated',
      [
        7n,
        A,
        [ADDR.models, ADDR.other],
        [0n, 3n],
        ['', ''],
        [approve, '0xdeadbeef'],
        10n,
        20n,
        'approve tiny'
      ],
      { block: 5, tx: tx(1), index: 0 }
    ),
    log(ADDR.governor, 'VoteCast', [B, 7n, 1, 100n, 'yes'], { block: 12, tx: tx(2), index: 0 }),
    log(ADDR.governor, 'VoteCast', [C, 7n, 0, 40n, 'no, "because"'], {
      block: 12,
      tx: tx(3),
      index: 0
    }),
    log(ADDR.governor, 'ProposalQueued', [7n, 1234n], { block: 21, tx: tx(4), index: 0 }),
    log(ADDR.governor, 'VoteCast', [C, 8n, 1, 1n, 'unknown proposal'], {
      block: 22,
      tx: tx(5),
      index: 0
    })
  ]
  const [p, ...rest] = collectProposals(parseEvents(logs, names), names)
  assert.equal(rest.length, 0)
  assert.equal(p.id, '7')
  assert.equal(p.proposer.toLowerCase(), A)
  assert.equal(p.description, 'approve tiny')
  assert.equal(p.snapshot, '10')
  assert.equal(p.deadline, '20')
  assert.equal(p.eta, '1234')
  assert.equal(p.calls[0].targetName, 'models')
  assert.match(p.calls[0].function, /^approveModel\(/)
  assert.equal(p.calls[0].args.modelId, MODEL)
  assert.equal((p.calls[0].args.info as { name: string }).name, 'tiny')
  assert.deepEqual(p.calls[1], {
    target: ADDR.other,
    targetName: 'unknown',
    value: '3',
    function: 'raw 0xdeadbeef',
    args: { data: '0xdeadbeef' }
  })
  assert.deepEqual(
    p.voters.map((v) => [v.voter.toLowerCase(), v.weight, v.support, v.block]),
    [
      [B, '100', 'for', 12],
      [C, '40', 'against', 12]
    ]
  )
  assert.deepEqual(
    p.timeline.map((e) => e.event),
    ['ProposalCreated', 'VoteCast', 'VoteCast', 'ProposalQueued']
  )
  const csv = votesCsv({ proposals: [p] } as AuditReport)
  assert.equal(csv.split('\n')[0], 'voter,weight,support,reason,block,tx')
  assert.ok(csv.includes('"no, ""because"""'), 'a reason with a comma and quotes is escaped')
})

test('collectModels and collectRegistry: history per model, registered operators', () => {
  const logs = [
    log(ADDR.models, 'ModelApproved', [MODEL, 'tiny', 2, 8, 8, 'file:///m'], {
      block: 1,
      tx: tx(1),
      index: 0
    }),
    log(
      ADDR.registry,
      'NodeRegistered',
      [A, MODEL, [0, 1], 5n, 100n, '0x01', ['/ip4/1.2.3.4/tcp/1'], '0x02'],
      { block: 2, tx: tx(2), index: 0 }
    ),
    log(ADDR.registry, 'PriceUpdated', [A, 5n, 6n], { block: 3, tx: tx(3), index: 0 }),
    log(ADDR.models, 'ModelRevoked', [MODEL], { block: 4, tx: tx(4), index: 0 })
  ]
  const parsed = parseEvents(logs, names)
  const [m] = collectModels(parsed)
  assert.equal(m.name, 'tiny')
  assert.equal(m.shardCount, 8)
  assert.equal(m.approved, false, 'revoked after approval')
  assert.deepEqual(
    m.history.map((h) => h.event),
    ['ModelApproved', 'ModelRevoked']
  )
  const { registry, operators } = collectRegistry(parsed)
  assert.deepEqual(
    registry.map((r) => [r.event, r.operator.toLowerCase()]),
    [
      ['NodeRegistered', A],
      ['PriceUpdated', A]
    ]
  )
  assert.deepEqual(registry[1].args, {
    operator: registry[1].operator,
    oldPrice: '5',
    newPrice: '6'
  })
  assert.deepEqual(
    operators.map((o) => o.toLowerCase()),
    [A]
  )
})

test('collectSettlements: totals per node and per payer net of the fee; withdrawals', () => {
  const logs = [
    log(ADDR.escrow, 'VoucherRedeemed', [A, B, 100n, 100n, 10n, 0n], {
      block: 1,
      tx: tx(1),
      index: 0
    }),
    log(ADDR.escrow, 'VoucherRedeemed', [A, C, 50n, 50n, 5n, 0n], {
      block: 1,
      tx: tx(1),
      index: 1
    }),
    log(ADDR.escrow, 'VoucherRedeemed', [C, B, 30n, 30n, 3n, 2n], {
      block: 2,
      tx: tx(2),
      index: 0
    }),
    log(ADDR.escrow, 'EarningsWithdrawn', [B, 90n], { block: 3, tx: tx(3), index: 0 }),
    log(ADDR.escrow, 'EarningsWithdrawn', [B, 27n], { block: 4, tx: tx(4), index: 0 })
  ]
  const s = collectSettlements(parseEvents(logs, names))
  assert.equal(s.vouchers.length, 3)
  assert.deepEqual(s.total, { amount: '180', fee: '18', net: '162', vouchers: 3 })
  assert.deepEqual(s.perNode[getAddress(B)], { amount: '130', fee: '13', net: '117', vouchers: 2 })
  assert.deepEqual(s.perPayer[getAddress(A)], { amount: '150', fee: '15', net: '135', vouchers: 2 })
  assert.equal(s.vouchers[2].shortfall, '2')
  assert.equal(s.withdrawnPerNode[getAddress(B)], '117')
  assert.equal(
    settlementsCsv({ settlements: s } as AuditReport).split('\n').length,
    1 + 3 + 1,
    'header, one row per voucher, final newline'
  )
})

test('dialCheck: the node must report the approved model with the approved manifest hash', () => {
  assert.equal(
    dialCheck(MODEL, [{ modelId: MODEL.toUpperCase().replace('0X', '0x'), manifestHash: MODEL }])
      .ok,
    true
  )
  assert.match(dialCheck(MODEL, []).detail, /does not report model/)
  const other = '0x' + 'ee'.repeat(32)
  const r = dialCheck(MODEL, [{ modelId: MODEL, manifestHash: other }])
  assert.equal(r.ok, false)
  assert.match(r.detail, new RegExp(`manifest hash ${other}`))
})
