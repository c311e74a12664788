// `pov oracle serve`: one pass over the inference requests at a time. Fulfils the open requests
// of its model it can afford — the POV it has out (bonds not yet returned, expert payments no fee
// has paid back yet) and the ETH it spent on gas stay under caps — checks the results
// others post while their window is open and challenges a wrong one (not a near-tie), and
// finalises what is due to it. Runs are cached per request: a request is generated once.
import { formatUnits, type Signer } from 'ethers'
import type { InferenceRequestsContract, PovContracts } from '../chain/contracts.js'
import {
  challengeRequest,
  finalizeRequest,
  fulfilRequest,
  listRequests,
  type RequestView
} from '../chain/oracle.js'
import { compareResults, type OracleRun } from './oracle.js'

export interface OracleWorkerOptions {
  contracts: PovContracts
  ir: InferenceRequestsContract
  signer: Signer
  modelId: string
  /** Generates a request's answer (router/oracle.ts runOracleRequest on the opened model). */
  run: (v: RequestView) => Promise<OracleRun>
  /** Stores a run's evidence file; returns its URI (posted with the result). */
  saveEvidence: (v: RequestView, run: OracleRun) => Promise<string>
  /**
   * POV wei this worker may have out at once: bonds of fulfilments and challenges not settled,
   * plus what its runs paid expert nodes that no fee paid to it has covered yet (checks that
   * agreed never are), plus the estimated expert cost of the run it is about to make.
   */
  maxSpend: bigint
  /** ETH wei this worker may spend on gas in all (its balance's fall since the first pass). */
  maxGas?: bigint
  /** An upper bound on what running `v` pays expert nodes (POV wei); 0 when experts are not paid. */
  estimateCost?: (v: RequestView) => bigint
  /** Requests paying less than this are left to others. */
  minFee: bigint
  /** Check others' results and challenge wrong ones. */
  challenge: boolean
  /** Leave a request alone when its deadline is closer than this (seconds): no time to answer. */
  deadlineMargin?: number
  fromBlock?: number
  log: (line: string) => void
}

/** Gas of one post (the bond's approval and the fulfil or challenge) at most: the gas cap's step. */
export const GAS_PER_POST = 300_000n

export interface OracleWorkerAction {
  id: number
  action: 'fulfilled' | 'challenged' | 'agreed' | 'near-tie' | 'finalised' | 'skipped' | 'failed'
  detail: string
}

export class OracleWorker {
  private readonly runs = new Map<number, OracleRun>()
  private readonly checked = new Set<number>()
  private me = ''
  private ethAtStart: bigint | null = null
  private ethNow = 0n
  private gasPrice = 0n

  constructor(private readonly o: OracleWorkerOptions) {}

  /** POV wei bonded in requests this worker fulfilled or challenged that are not settled yet. */
  bonded(views: readonly RequestView[]): bigint {
    let sum = 0n
    for (const v of views) {
      const mine =
        (v.result?.by === this.me && (v.status === 'Fulfilled' || v.status === 'Disputed')) ||
        (v.dispute?.by === this.me && v.status === 'Disputed')
      if (mine) sum += v.params.bond
    }
    return sum
  }

  /** POV wei out at once: bonds not returned, and run costs no fee paid to this worker covered. */
  atRisk(views: readonly RequestView[]): bigint {
    let sum = this.bonded(views)
    const byId = new Map(views.map((v) => [v.id, v]))
    for (const [id, run] of this.runs)
      if (byId.get(id)?.finalised?.paidTo !== this.me) sum += run.cost
    return sum
  }

  /** ETH wei spent on gas since the first pass. */
  gasSpent(): bigint {
    const d = (this.ethAtStart ?? this.ethNow) - this.ethNow
    return d > 0n ? d : 0n
  }

  /** Why posting for `v` (a run still to make or made) would break a cap; null when it fits. */
  private overCap(v: RequestView, views: readonly RequestView[], gasPrice: bigint): string | null {
    const o = this.o
    const run = this.runs.get(v.id)
    const cost = run == null ? (o.estimateCost?.(v) ?? 0n) : 0n
    const risk = this.atRisk(views) + v.params.bond + cost
    if (risk > o.maxSpend)
      return `bonds and expert payments out would reach ${formatUnits(risk, 18)} POV, over --max-spend ${formatUnits(o.maxSpend, 18)}`
    const gas = this.gasSpent() + GAS_PER_POST * gasPrice
    if (o.maxGas != null && gas > o.maxGas)
      return `gas spent would reach ${formatUnits(gas, 18)} ETH, over --max-gas ${formatUnits(o.maxGas, 18)}`
    return null
  }

  /** One pass; returns what it did. */
  async tick(): Promise<OracleWorkerAction[]> {
    const o = this.o
    this.me ||= await o.signer.getAddress()
    const views = await listRequests(o.ir, o.fromBlock ?? 0)
    const provider = o.signer.provider!
    const [block, eth, fees] = await Promise.all([
      provider.getBlock('latest'),
      provider.getBalance(this.me),
      provider.getFeeData()
    ])
    const now = block!.timestamp
    this.ethAtStart ??= eth
    this.ethNow = eth
    this.gasPrice = fees.maxFeePerGas ?? fees.gasPrice ?? 0n
    const done: OracleWorkerAction[] = []
    const note = (a: OracleWorkerAction): void => {
      done.push(a)
      o.log(`request #${a.id}: ${a.action} — ${a.detail}`)
    }
    for (const v of views) {
      if (v.params.modelId.toLowerCase() !== o.modelId.toLowerCase()) continue
      try {
        await this.handle(v, views, now, note)
      } catch (err) {
        note({ id: v.id, action: 'failed', detail: (err as Error).message.split('\n')[0] })
      }
    }
    return done
  }

  private async handle(
    v: RequestView,
    views: readonly RequestView[],
    now: number,
    note: (a: OracleWorkerAction) => void
  ): Promise<void> {
    const o = this.o
    if (v.status === 'Open') {
      if (v.params.deadline < now + (o.deadlineMargin ?? 30)) return
      if (v.params.fee < o.minFee) return
      if (v.prompt == null) return // hash + URI prompts: fetching them is the requester's URI's business
      const over = this.overCap(v, views, this.gasPrice)
      if (over != null) {
        note({ id: v.id, action: 'skipped', detail: over })
        return
      }
      const run = await this.runOf(v)
      if (run.record.degraded) {
        note({ id: v.id, action: 'skipped', detail: 'degraded run (an expert was unavailable)' })
        return
      }
      const uri = await o.saveEvidence(v, run)
      await fulfilRequest(o.contracts, o.ir, o.signer, v, run.result, uri)
      note({
        id: v.id,
        action: 'fulfilled',
        detail: `[${run.result.tokens.join(',')}], ${run.record.calls.length} expert calls, paid ${formatUnits(run.cost, 18)} POV`
      })
      return
    }
    if (v.status === 'Fulfilled' && v.result != null) {
      const open = now <= v.result.challengeDeadline
      if (open && o.challenge && v.result.by !== this.me && !this.checked.has(v.id)) {
        if (v.prompt == null) return
        const over = this.runs.has(v.id) ? null : this.overCap(v, views, this.gasPrice)
        if (over != null) {
          this.checked.add(v.id)
          note({ id: v.id, action: 'skipped', detail: `not checked: ${over}` })
          return
        }
        const run = await this.runOf(v)
        this.checked.add(v.id)
        const tie = Number(await o.ir.tieMargin())
        const verdict = compareResults(v.result, run.result, tie)
        if (verdict.agree) {
          note({ id: v.id, action: 'agreed', detail: `result of ${v.result.by} checked` })
          return
        }
        if (verdict.nearTie) {
          note({
            id: v.id,
            action: 'near-tie',
            detail: `differs at token ${verdict.position}, margins ${verdict.postedMargin} / ${verdict.myMargin} µlogit below ${tie}: both honest, not challenged`
          })
          return
        }
        const overBond = this.overCap(v, views, this.gasPrice)
        if (overBond != null) {
          note({ id: v.id, action: 'skipped', detail: `wrong result, not challenged: ${overBond}` })
          return
        }
        const uri = await o.saveEvidence(v, run)
        await challengeRequest(o.contracts, o.ir, o.signer, v, run.result, uri)
        note({
          id: v.id,
          action: 'challenged',
          detail: `first difference at token ${verdict.position}: posted ${v.result.tokens[verdict.position]}, mine ${run.result.tokens[verdict.position]}`
        })
        return
      }
      if (!open && v.result.by === this.me) await this.finalise(v, note)
      return
    }
    if (v.status === 'Decided') {
      const winner = v.dispute?.outcome === 'ChallengerRight' ? v.dispute.by : v.result?.by
      if (winner === this.me) await this.finalise(v, note)
    }
  }

  private async finalise(v: RequestView, note: (a: OracleWorkerAction) => void): Promise<void> {
    const r = await finalizeRequest(this.o.ir, this.o.signer, v)
    note({
      id: v.id,
      action: 'finalised',
      detail: `callback ${r.callbackOk == null ? 'none' : r.callbackOk ? 'ran' : 'failed'}`
    })
  }

  private async runOf(v: RequestView): Promise<OracleRun> {
    let run = this.runs.get(v.id)
    if (run == null) {
      run = await this.o.run(v)
      this.runs.set(v.id, run)
    }
    return run
  }
}
