// An operator's standing (chain/standing.ts) read from the real contracts, and what a running node
// makes of it (cli/node/standing-watch.ts): /ready's answer, one warning per change with the
// command that fixes it, the metric, and "not ready" while the chain does not answer.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  by,
  ethers,
  load,
  MIN_STAKE,
  MODEL_ID,
  networkHelpers,
  POV,
  registerNode
} from './fixture.js'
import { readStanding } from '../../chain/standing.js'
import { formatPov } from '../../cli/chain.js'
import { StandingWatch } from '../../cli/node/standing-watch.js'
import { createNodeMetrics } from '../../node/metrics.js'
import type { Logger } from 'pino'

const now = async (): Promise<bigint> => BigInt(await networkHelpers.time.latest())
const codes = (s: { issues: Array<{ code: string }> }): string[] => s.issues.map((i) => i.code)

/** A logger that keeps what it was given (the watch's own lines are what the operator sees). */
function recordingLogger() {
  const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = []
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push(
        typeof obj === 'string'
          ? { level, msg: obj, obj: {} }
          : { level, msg: msg ?? '', obj: obj as Record<string, unknown> }
      )
    }
  return {
    lines,
    logger: { warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as Logger
  }
}

describe('operator standing', () => {
  it('names each reason routers skip a node, with the command that fixes it', async () => {
    const env = await load()
    const { registry, models } = env.contracts
    const op = env.op1.address

    const none = await readStanding(env.contracts, op, formatPov, await now())
    assert.deepEqual(codes(none), ['not-registered'])
    assert.match(none.issues[0].remedy, /pov node register/)

    await registerNode(env, env.op1, POV(1500))
    const ok = await readStanding(env.contracts, op, formatPov, await now())
    assert.deepEqual(codes(ok), [])
    assert.equal(ok.active, true)

    // slashed below the minimum: how much to add, as the add-stake command takes it
    await by(registry, env.timelock).slash(op, POV(700), 'wrong output')
    const low = await readStanding(env.contracts, op, formatPov, await now())
    assert.deepEqual(codes(low), ['below-min-stake'])
    assert.equal(low.active, false)
    assert.equal(low.stake, POV(800))
    assert.match(low.issues[0].reason, /800 POV is below the registry minimum 1000 POV/)
    assert.match(low.issues[0].remedy, /pov node add-stake 200\b/)
    await by(env.contracts.token, env.op1).approve(await registry.getAddress(), POV(200))
    await by(registry, env.op1).addStake(POV(200))
    assert.deepEqual(codes(await readStanding(env.contracts, op, formatPov, await now())), [])

    // the model revoked by governance
    await by(models, env.timelock).revokeModel(MODEL_ID)
    const revoked = await readStanding(env.contracts, op, formatPov, await now())
    assert.ok(codes(revoked).includes('model-revoked'), codes(revoked).join(','))
    assert.equal(revoked.modelApproved, false)
  })

  it('unbonding and a frozen withdrawal are reported; a freeze does not stop serving', async () => {
    const env = await load()
    const { registry } = env.contracts
    const op = env.op2.address
    await registerNode(env, env.op2, MIN_STAKE)
    // the deployment's freezer (FaultReports) freezes it, as a fault report would
    const freezerAddress = await registry.freezer()
    await networkHelpers.impersonateAccount(freezerAddress)
    await networkHelpers.setBalance(freezerAddress, POV(1))
    const freezer = await ethers.getSigner(freezerAddress)
    const until = (await now()) + 86_400n
    await by(registry, freezer).freezeWithdrawal(op, until)
    const frozen = await readStanding(env.contracts, op, formatPov, await now())
    assert.deepEqual(codes(frozen), ['frozen'])
    assert.equal(frozen.issues[0].blocking, false)
    assert.equal(frozen.frozenUntil, until)
    await by(registry, env.op2).unbond()
    const leaving = await readStanding(env.contracts, op, formatPov, await now())
    assert.deepEqual(codes(leaving).sort(), ['frozen', 'unbonding'])
    assert.match(
      leaving.issues.find((i) => i.code === 'unbonding')!.remedy,
      /pov node withdraw-stake/
    )
  })

  it('a running node: ready while in good standing, a warning once per change, not ready while the chain is down', async () => {
    const env = await load()
    const { registry } = env.contracts
    const op = env.op3.address
    await registerNode(env, env.op3, MIN_STAKE)
    const { lines, logger } = recordingLogger()
    const metrics = createNodeMetrics()
    let down = false
    // the real contracts, behind a switch that makes every call fail as an unreachable RPC would
    const contracts = {
      registry: new Proxy(registry, {
        get(t, p, r) {
          const v = Reflect.get(t, p, r) as unknown
          if (down && typeof v === 'function')
            return () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8545'))
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
        }
      }),
      models: env.contracts.models
    }
    const watch = new StandingWatch(contracts, op, logger, metrics, now)
    await watch.poll()
    assert.deepEqual(watch.readiness(), { ok: true, reasons: [] })
    assert.equal(lines.filter((l) => l.level === 'warn').length, 0)

    await by(registry, env.timelock).slash(op, POV(1), 'late answers')
    await watch.poll()
    await watch.poll() // unchanged: no second warning
    const r = watch.readiness()
    assert.equal(r.ok, false)
    assert.match(r.reasons[0], /below the registry minimum .*pov node add-stake 1\b/)
    const warns = lines.filter((l) => l.level === 'warn')
    assert.equal(warns.length, 1, JSON.stringify(lines))
    assert.match(warns[0].msg, /standing changed: stake .* routers no longer pick this node/)
    assert.equal(warns[0].obj.code, 'below-min-stake')
    assert.match(
      await metrics.registry.getSingleMetricAsString('pov_standing_issue'),
      /pov_standing_issue\{code="below-min-stake"\} 1/
    )

    down = true
    await watch.poll()
    const d = watch.readiness()
    assert.equal(d.ok, false)
    assert.match(d.reasons[0], /chain unreachable \(connect ECONNREFUSED/)
    assert.match(
      await metrics.registry.getSingleMetricAsString('pov_standing_issue'),
      /code="chain-unreachable"\} 1/
    )
    down = false
    await by(env.contracts.token, env.op3).approve(await registry.getAddress(), POV(1))
    await by(registry, env.op3).addStake(POV(1))
    await watch.poll()
    assert.deepEqual(watch.readiness(), { ok: true, reasons: [] })
    assert.ok(lines.some((l) => l.msg === 'standing restored: routers pick this node again'))
    assert.ok(lines.some((l) => l.msg === 'chain reachable again'))
  })

  it('a paid node reads nodeOf once for its price and its standing', async () => {
    const env = await load()
    const { registry } = env.contracts
    const op = env.op2.address
    await registerNode(env, env.op2, MIN_STAKE)
    const calls: string[] = []
    const counted = new Proxy(registry, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r) as unknown
        if (typeof v !== 'function') return v
        return (...a: unknown[]) => {
          calls.push(String(p))
          return (v as (...a: unknown[]) => unknown).apply(t, a)
        }
      }
    })
    const { logger, lines } = recordingLogger()
    const watch = new StandingWatch(
      { registry: counted, models: env.contracts.models },
      op,
      logger,
      null,
      now
    )
    await by(registry, env.timelock).slash(op, POV(1), 'late answers')
    // the price poll's read (cli/node/paid-start.ts) is handed to the standing check
    const n = await counted.nodeOf(op)
    await watch.poll(n)
    assert.equal(calls.filter((c) => c === 'nodeOf').length, 1, calls.join(','))
    assert.match(watch.readiness().reasons[0], /below the registry minimum/)
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1)
    // without it, the check reads the record itself
    await watch.poll()
    assert.equal(calls.filter((c) => c === 'nodeOf').length, 2, calls.join(','))
  })
})
