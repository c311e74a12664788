import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Interface, parseEther } from 'ethers'
import {
  ABIS,
  connectContracts,
  connectFaultReports,
  connectInferenceRequests
} from '../../../chain/contracts.js'
import {
  GOV_PARAMS,
  approveModelAction,
  findParam,
  formatParamValue,
  parseDuration,
  parseParamValue,
  setParamAction,
  slashAction
} from '../../../chain/gov-actions.js'
import { pickProposal, type ProposalRecord } from '../../../chain/proposals.js'

const ADDR = {
  token: '0x0000000000000000000000000000000000000001',
  models: '0x0000000000000000000000000000000000000002',
  registry: '0x0000000000000000000000000000000000000003',
  escrow: '0x0000000000000000000000000000000000000004',
  governor: '0x0000000000000000000000000000000000000005',
  timelock: '0x0000000000000000000000000000000000000006'
}
const c = connectContracts(ADDR)
const ABI_OF = {
  token: 'PovToken',
  models: 'ModelApprovals',
  registry: 'ExpertRegistry',
  escrow: 'PovEscrow',
  governor: 'PovGovernor',
  timelock: 'PovTimelock',
  faultReports: 'FaultReports',
  inferenceRequests: 'InferenceRequests'
} as const
const FAULTS = '0x0000000000000000000000000000000000000007'
const ORACLE = '0x0000000000000000000000000000000000000008'
const all = {
  ...c,
  faultReports: connectFaultReports(FAULTS),
  inferenceRequests: connectInferenceRequests(ORACLE)
}

test('every parameter row names a real one-argument setter and a view on its contract', () => {
  for (const p of GOV_PARAMS) {
    const iface = new Interface(ABIS[ABI_OF[p.contract]])
    const setter = iface.getFunction(p.setter)
    assert.ok(setter, `${p.name}: ${p.setter} not in ${p.contract}`)
    assert.equal(setter.inputs.length, 1, p.name)
    const getter = iface.getFunction(p.getter)
    assert.ok(getter, `${p.name}: ${p.getter} not in ${p.contract}`)
    assert.equal(getter.inputs.length, 0, p.name)
    assert.ok(['view', 'pure'].includes(getter.stateMutability), p.name)
  }
  assert.equal(new Set(GOV_PARAMS.map((p) => p.name)).size, GOV_PARAMS.length, 'unique names')
})

test('set: POV amounts are given in POV, durations with units, and encode the setter call', () => {
  const a = setParamAction(c, 'min-stake', '2500')
  assert.equal(a.actions[0].target, ADDR.registry)
  const decoded = c.registry.interface.decodeFunctionData('setMinStake', a.actions[0].data)
  assert.equal(decoded[0], parseEther('2500'))
  assert.equal(a.description, 'Set min-stake to 2500 POV')
  const u = setParamAction(c, 'unlock-period', '2h')
  assert.equal(
    c.escrow.interface.decodeFunctionData('setUnlockPeriod', u.actions[0].data)[0],
    7200n
  )
  assert.equal(u.description, 'Set unlock-period to 7200 s (2h)')
})

test('set: the fault-report and inference-request settings target their contracts', () => {
  const bond = setParamAction(all, 'report-bond', '250')
  assert.equal(bond.actions[0].target, FAULTS)
  assert.equal(
    all.faultReports.interface.decodeFunctionData('setReportBond', bond.actions[0].data)[0],
    parseEther('250')
  )
  assert.equal(bond.description, 'Set report-bond to 250 POV')
  const share = setParamAction(all, 'reporter-share', '1500')
  assert.equal(
    all.faultReports.interface.decodeFunctionData('setReporterShare', share.actions[0].data)[0],
    1500n
  )
  const bps = setParamAction(all, 'report-bond-bps', '200')
  assert.equal(
    all.faultReports.interface.decodeFunctionData('setBondBps', bps.actions[0].data)[0],
    200n
  )
  const period = setParamAction(all, 'report-decision-period', '3d')
  assert.equal(
    all.faultReports.interface.decodeFunctionData('setDecisionPeriod', period.actions[0].data)[0],
    259200n
  )
  const tie = setParamAction(all, 'tie-margin', '80000')
  assert.equal(tie.actions[0].target, ORACLE)
  assert.equal(
    all.inferenceRequests.interface.decodeFunctionData('setTieMargin', tie.actions[0].data)[0],
    80000n
  )
  assert.equal(tie.description, 'Set tie-margin to 80000 µlogit (0.08 logit)')
  assert.throws(
    () => setParamAction(all, 'tie-margin', '0.05'),
    /invalid value for tie-margin \(micro-logits: 50000 = 0.05 logit\) "0.05": expected a whole number from 0 to 10000000/
  )
  // a deployment without the contract: one line, no call built
  assert.throws(
    () => setParamAction(c, 'report-bond', '250'),
    /this deployment has no FaultReports contract: report-bond cannot be set/
  )
  assert.throws(
    () => setParamAction(c, 'challenge-window', '2h'),
    /this deployment has no InferenceRequests contract: challenge-window cannot be set/
  )
})

test('bad parameter names and values get one line that says what is expected', () => {
  assert.throws(() => findParam('min-stak'), /unknown parameter "min-stak" — one of: min-stake,/)
  assert.throws(() => parseParamValue(findParam('fee-bps'), '20000'), /from 0 to 10000/)
  assert.throws(() => parseParamValue(findParam('min-stake'), 'lots'), /amount of POV/)
  assert.throws(() => parseDuration('1 year', 'x'), /s, m, h, d or w/)
  assert.throws(() => parseParamValue(findParam('minting-enabled'), 'maybe'), /true or false/)
  assert.equal(parseParamValue(findParam('minting-enabled'), 'on'), true)
  assert.equal(formatParamValue(findParam('fee-bps'), 250n), '250 bps (2.5 %)')
  assert.equal(formatParamValue(findParam('voting-delay'), 1n), '1 block')
})

test('approve-model and slash build the calls the timelock will make', () => {
  const id = '0x' + 'ab'.repeat(32)
  const a = approveModelAction(c, {
    modelId: id,
    name: 'tiny',
    layers: 2,
    experts: 8,
    shardCount: 8,
    uri: 'file:///b'
  })
  const d = c.models.interface.decodeFunctionData('approveModel', a.actions[0].data)
  assert.equal(d[0], id)
  assert.equal(d[1].shardCount, 8n)
  const s = slashAction(c, {
    operator: '0x00000000000000000000000000000000000000aa',
    amount: '12.5',
    reason: 'wrong output',
    evidence: '0x' + '11'.repeat(32)
  })
  const sd = c.registry.interface.decodeFunctionData('slash', s.actions[0].data)
  assert.equal(sd[1], parseEther('12.5'))
  assert.equal(sd[2], `wrong output (evidence 0x${'11'.repeat(32)})`)
  assert.throws(() => slashAction(c, { operator: '0x1', amount: '1', reason: 'x' }), /address/)
  assert.throws(
    () =>
      slashAction(c, {
        operator: '0x00000000000000000000000000000000000000aa',
        amount: '0',
        reason: 'x'
      }),
    /above 0/
  )
})

test('proposals are picked by number, id or latest, with a clear error otherwise', () => {
  const rec = (n: number, id: bigint): ProposalRecord => ({
    number: n,
    id,
    proposer: ADDR.token,
    description: `p${n}`,
    descriptionHash: '0x',
    targets: [],
    values: [],
    calldatas: [],
    voteStart: 0n,
    voteEnd: 0n,
    block: n
  })
  const list = [rec(1, 10n ** 70n), rec(2, 12345678901234567890n)]
  assert.equal(pickProposal(list, '#2').number, 2)
  assert.equal(pickProposal(list, 'latest').number, 2)
  assert.equal(pickProposal(list, String(10n ** 70n)).number, 1)
  assert.equal(pickProposal(list, '0x' + 12345678901234567890n.toString(16)).number, 2)
  assert.throws(() => pickProposal(list, '7'), /no proposal "7" on this deployment \(there are 2/)
  assert.throws(() => pickProposal([], 'latest'), /no proposal has been made/)
  assert.throws(() => pickProposal(list, 'abc'), /number from `pov gov list`/)
})
