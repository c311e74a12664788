import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseEther } from 'ethers'
import { combinedInterface } from '../../../chain/contracts.js'
import {
  asUserError,
  describeChainError,
  describeFileError,
  formatParam,
  isoTime,
  listenError
} from '../../../cli/error-format.js'
import { UserError } from '../../../cli/errors.js'
import { GovInputError } from '../../../chain/gov-actions.js'
import { FaultInputError, FaultReportsMissingError } from '../../../chain/faults.js'
import { InferenceRequestsMissingError, OracleInputError } from '../../../chain/oracle.js'
import { NoPeerAnsweredError } from '../../../router/router.js'

/** A revert as ethers v6 reports a failed eth_call / estimateGas: the data under `data`. */
function reverted(name: string, args: unknown[]): Error {
  const data = combinedInterface().encodeErrorResult(name, args)
  return Object.assign(new Error('execution reverted (unknown custom error)'), {
    code: 'CALL_EXCEPTION',
    shortMessage: 'execution reverted (unknown custom error)',
    data
  })
}
const PAYER = '0x00000000000000000000000000000000000000aa'
const ONE_LINE = /^[^\n]+$/

test('EscrowUnlockPending: ISO times, how long is left, and what to run', () => {
  const msg = describeChainError(reverted('EscrowUnlockPending', [PAYER, 1796188537n, 1796184942n]))
  assert.match(msg, ONE_LINE)
  assert.match(
    msg,
    /unlocks at 2026-12-02T05:15:37Z \(in 60 min; chain time 2026-12-02T04:15:42Z\)/
  )
  assert.match(msg, /`pov withdraw` after that, or `pov cancel-unlock`/)
  assert.doesNotMatch(msg, /1796188537/)
})

test('an unknown model id says it is not approved and where to look', () => {
  const id = '0x' + 'ab'.repeat(32)
  const msg = describeChainError(reverted('ModelsNotApproved', [id]))
  assert.match(msg, new RegExp(`model ${id} is not approved on this chain — \`pov gov list\``))
  assert.doesNotMatch(msg, /bytes32|execution reverted/)
})

test('amounts of POV in POV, not wei; unknown errors decoded generically', () => {
  const msg = describeChainError(
    reverted('RegistryInsufficientStake', [PAYER, parseEther('500'), parseEther('1000')])
  )
  assert.match(msg, /a stake of 500 POV is below the minimum of 1000 POV/)
  const generic = describeChainError(
    reverted('EscrowStaleVoucher', [PAYER, PAYER, parseEther('1.5'), parseEther('2')])
  )
  assert.match(generic, /cumulativeAmount=1.5 POV, alreadyPaid=2 POV/)
  assert.equal(formatParam({ name: 'withdrawableAt', type: 'uint64', value: 0n }), '0')
  assert.equal(isoTime(0), '1970-01-01T00:00:00Z')
})

test('no ETH for gas: the node answer behind "could not coalesce error" in plain words', () => {
  const err = Object.assign(new Error('could not coalesce error'), {
    code: 'UNKNOWN_ERROR',
    shortMessage: 'could not coalesce error',
    error: {
      code: -32000,
      message:
        "Sender doesn't have enough funds to send tx. The max upfront cost is: 21725194997834 and the sender's balance is: 0."
    }
  })
  const msg = describeChainError(err, PAYER)
  assert.match(msg, ONE_LINE)
  assert.match(
    msg,
    new RegExp(
      `^${PAYER} has too little ETH to pay for gas \\(the transaction may cost up to 0.000021725194997834 ETH; it holds 0.0 ETH\\)`
    )
  )
  assert.match(msg, new RegExp(`pov dev fund ${PAYER}`))
  assert.doesNotMatch(msg, /coalesce/)
  const converted = asUserError(err)
  assert.ok(converted instanceof UserError)
})

test('missing files and plain errors', () => {
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'pw'"), {
    code: 'ENOENT',
    path: 'pw'
  })
  assert.equal(
    describeFileError(enoent, 'the password file'),
    'the password file pw does not exist'
  )
  assert.equal(describeFileError(new Error('x'), 'f'), undefined)
  const bug = new TypeError('x is undefined')
  assert.equal(asUserError(bug), bug, 'programming errors keep their stack')
  assert.equal(describeChainError(new Error('boom\nstack')), 'boom')
})

test('no node answered: one sentence per address, no flag the command does not have', () => {
  const e = new NoPeerAnsweredError('0xab', ['/ip4/127.0.0.1/tcp/1: connection refused'])
  assert.equal(
    e.message,
    'no node answered for model 0xab (/ip4/127.0.0.1/tcp/1: connection refused)'
  )
  assert.doesNotMatch(e.message, /--peers/)
})

test('a busy port names the address and the flag to change, whatever layer reports it', () => {
  const libp2p = new Error(
    'Transport (@libp2p/tcp) could not listen on any available address; see transportManager.faultTolerance'
  )
  const busy = listenError(
    Object.assign(libp2p, { cause: new Error('listen EADDRINUSE: address already in use') }),
    ['/ip4/127.0.0.1/tcp/4101']
  )
  assert.equal(
    busy?.message,
    'cannot listen on /ip4/127.0.0.1/tcp/4101: the port is already in use — stop the process that holds it, or choose another port with --listen'
  )
  const http = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })
  assert.match(listenError(http, ['127.0.0.1:9464'], '--metrics-port')!.message, /--metrics-port$/)
  assert.equal(listenError(new Error('other'), undefined), undefined)
})

test('the chain layer’s input errors become one line; a contract the deployment lacks says which', () => {
  for (const err of [
    new GovInputError('unknown parameter "x"'),
    new FaultInputError('invalid fault report "x"'),
    new OracleInputError('request #3 has no result'),
    new InferenceRequestsMissingError(),
    new FaultReportsMissingError()
  ]) {
    const u = asUserError(err)
    assert.ok(u instanceof UserError, err.name)
    assert.equal(u.message, err.message)
  }
  assert.match(
    (asUserError(new InferenceRequestsMissingError()) as Error).message,
    /no InferenceRequests contract/
  )
})
