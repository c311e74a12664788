// `pov gov propose set` / `pov gov params` on the deployed contracts: the fault-report and
// inference-request settings are read through their real getters and changed by a full Governor
// round through their real setters; a value outside the contract's bound fails the round.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ethers, load, POV } from './fixture.js'
import { connectFaultReports, connectInferenceRequests } from '../../chain/contracts.js'
import { devChainClock, governanceRound } from '../../chain/governance.js'
import {
  formatParamValue,
  readParams,
  setParamAction,
  type GovContracts
} from '../../chain/gov-actions.js'

async function contracts(): Promise<{ env: Awaited<ReturnType<typeof load>>; all: GovContracts }> {
  const env = await load()
  const d = env.deployment
  assert.ok(d.faultReports != null && d.inferenceRequests != null, 'the local preset deploys both')
  return {
    env,
    all: {
      ...env.contracts,
      faultReports: connectFaultReports(d.faultReports, ethers.provider),
      inferenceRequests: connectInferenceRequests(d.inferenceRequests, ethers.provider)
    }
  }
}

const valueOf = async (all: GovContracts, name: string): Promise<string> => {
  const row = (await readParams(all)).find((r) => r.param.name === name)
  assert.ok(row != null, `${name} is listed`)
  return formatParamValue(row.param, row.value)
}

describe('gov params: fault-report and inference-request settings', () => {
  it('are listed with their deployed values and changed by one governance round', async () => {
    const { env, all } = await contracts()
    assert.equal(await valueOf(all, 'report-bond'), '100 POV')
    assert.equal(await valueOf(all, 'report-bond-bps'), '100 bps (1 %)')
    assert.equal(await valueOf(all, 'reporter-share'), '2000 bps (20 %)')
    assert.equal(await valueOf(all, 'tie-margin'), '50000 µlogit (0.05 logit)')
    assert.equal(await valueOf(all, 'fulfil-bond'), '100 POV')
    const sets = [
      setParamAction(all, 'report-bond', '250'),
      setParamAction(all, 'report-bond-bps', '200'),
      setParamAction(all, 'report-decision-period', '2h'),
      setParamAction(all, 'reporter-share', '1500'),
      setParamAction(all, 'fault-treasury', env.alice.address),
      setParamAction(all, 'tie-margin', '80000'),
      setParamAction(all, 'challenge-window', '120'),
      setParamAction(all, 'fulfil-bond', '40')
    ]
    await governanceRound({
      contracts: env.contracts,
      proposer: env.deployer,
      voters: [env.deployer],
      actions: sets.flatMap((s) => s.actions),
      description: sets.map((s) => s.description).join('; '),
      clock: devChainClock(ethers.provider)
    })
    assert.equal(await all.faultReports!.reportBond(), POV(250))
    assert.equal(await valueOf(all, 'report-bond-bps'), '200 bps (2 %)')
    assert.equal(await valueOf(all, 'report-decision-period'), '7200 s (2h)')
    assert.equal(await valueOf(all, 'reporter-share'), '1500 bps (15 %)')
    assert.equal(await valueOf(all, 'fault-treasury'), env.alice.address)
    assert.equal(await all.inferenceRequests!.tieMargin(), 80000n)
    assert.equal(await valueOf(all, 'challenge-window'), '120 s (2m)')
    assert.equal(await valueOf(all, 'fulfil-bond'), '40 POV')
  })

  it('a value outside the contract’s bound fails the round and changes nothing', async () => {
    const { env, all } = await contracts()
    await assert.rejects(
      governanceRound({
        contracts: env.contracts,
        proposer: env.deployer,
        voters: [env.deployer],
        actions: setParamAction(all, 'report-bond-bps', '5').actions, // bound [10, 10000]
        description: 'report bond bps 5',
        clock: devChainClock(ethers.provider)
      })
    )
    assert.equal(await valueOf(all, 'report-bond-bps'), '100 bps (1 %)')
  })
})
