// `pov oracle serve`: one pass over the inference requests at a time. Fulfils the open requests
// of its model it can afford (the bonds it has outstanding stay under a cap), checks the results
// others post while their window is open and challenges a wrong one (not a near-tie), and
// finalises what is due to it. Runs are cached per request: a request is generated once.
import type { Signer } from 'ethers'
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
  /** POV wei this worker may have bonded at once (fulfilments and challenges not yet settled). */
  maxBonded: bigint
  /** Requests paying less than this are left to others. */
  minFee: bigint
  /** Check others' results and challenge wrong ones. */
  challenge: boolean
  /** Leave a request alone when its deadline is closer than this (seconds): no time to answer. */
  deadlineMargin?: number
  fromBlock?: number
  log: (line: string) => void
}

export interface OracleWorkerAction {
  id: number
  action: 'fulfilled' | 'challenged' | 'agreed' | 'near-tie' | 'finalised' | 'skipped' | 'failed'
  detail: string
}

export class OracleWorker {
  private readonly runs = new Map<number, OracleRun>()
  private readonly checked = new Set<number>()
  private me = ''

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

  /** One pass; returns what it did. */
  async tick(): Promise<OracleWorkerAction[]> {
    const o = this.o
    this.me ||= await o.signer.getAddress()
    const views = await listRequests(o.ir, o.fromBlock ?? 0)
    const block = await o.signer.provider!.getBlock('latest')
    const now = block!.timestamp
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
      if (this.bonded(views) + v.params.bond > o.maxBonded) {
        note({ id: v.id, action: 'skipped', detail: 'the bond would exceed --max-bonded' })
        return
      }
      const run = await this.runOf(v)
      if (run.record.degraded) {
        note({ id: v.id, action: 'skipped', detail: 'degraded run (an expert was unavailable)' })
        return
      }
      const uri = await o.saveEvidence(v, run)
      await fulfilRequest(o.contracts, o.ir, o.signer, v, run.result, uri)
      note({ id: v.id, action: 'fulfilled', detail: `[${run.result.tokens.join(',')}]` })
      return
    }
    if (v.status === 'Fulfilled' && v.result != null) {
      const open = now <= v.result.challengeDeadline
      if (open && o.challenge && v.result.by !== this.me && !this.checked.has(v.id)) {
        if (v.prompt == null) return
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
        if (this.bonded(views) + v.params.bond > o.maxBonded) {
          note({
            id: v.id,
            action: 'skipped',
            detail: 'wrong result, but a challenge bond would exceed --max-bonded'
          })
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
