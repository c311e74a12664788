// Spot re-execution: a sampled fraction of expert calls is asked again — of a replica run by
// another operator, or of the router's own run of that one expert (router/referee.ts) — and
// the answers compared (router/tolerance.ts). On a mismatch a referee decides: the router's own
// run when it is one of the answers (it is the bundle's expert itself), else a third operator's
// replica, else the router's own run. The referee's answer is what the generation uses, so its
// tokens stay right; a node that disagrees with it is convicted: never used again
// (router/reputation.ts) and an evidence file is written (router/evidence.ts). Two answers that
// differ are never settled by taking the primary's word: with no referee at all the call fails.
// At rate 1 (strict) every answer is confirmed before use, or the call fails.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ExpertUnavailableError, type ExpertExecutor } from '../model/generate.js'
import type { DType, Voucher as WireVoucher } from '../protocol/expert.js'
import { decodeTensor, encodeTensor } from '../protocol/codec.js'
import { DEFAULT_VERIFY_TOLERANCE, outputDistance } from './tolerance.js'
import {
  buildEvidence,
  encodeEvidence,
  evidenceHash,
  paymentEvidence,
  type EvidenceBinding
} from './evidence.js'
import type { Reputation } from './reputation.js'

/** 2 %: a node cheating on every call is caught within ~50 of its calls on average, for ~2 % more expert work (docs/trust.md). */
export const DEFAULT_VERIFY_RATE = 0.02

/** One node's signed answer to one call. */
export interface SignedAnswer {
  peer: string
  requestId: bigint
  /** Output tensor bytes as received (what the signature covers). */
  output: Uint8Array
  signature: Uint8Array
  y: Float32Array
  /** The voucher sent with the call (a paid network): what the payer may claim back if the answer is proven wrong. */
  payment?: WireVoucher
}

export interface SpotCheckCall {
  layer: number
  expert: number
  rows: number
  hidden: number
  dtype: DType
  /** Input tensor bytes exactly as sent. */
  input: Uint8Array
  primary: SignedAnswer
  /**
   * Asks a replica whose operator is none of `excludeOperators` (signature checked); null when
   * no such replica is left.
   */
  ask: (excludeOperators: ReadonlySet<string>) => Promise<SignedAnswer | null>
}

export interface Fault {
  peer: string
  operator?: string
  layer: number
  expert: number
  distance: number
  evidencePath?: string
  evidenceHash: string
}

export type CheckOutcome = 'agreed' | 'convicted' | 'undecided' | 'unchecked'

/**
 * A call whose answer could not be confirmed under strict checking (rate 1): nothing unconfirmed
 * is used, so the generation stops rather than go on with an answer nobody confirmed.
 */
export class UnverifiedAnswerError extends Error {
  override name = 'UnverifiedAnswerError'
}

export interface SpotCheckOptions {
  /** Fraction of calls re-run, in [0, 1]. @default DEFAULT_VERIFY_RATE */
  rate?: number
  /** @default DEFAULT_VERIFY_TOLERANCE */
  tolerance?: number
  modelId: string
  /** Uniform [0, 1) source deciding which calls are checked. @default Math.random */
  random?: () => number
  /**
   * The router's own run of an expert (router/referee.ts: loaded on demand): asked when no other
   * operator's replica is left, and trusted over any node (it is the approved bundle's expert).
   */
  local?: ExpertExecutor
  /** What the payer was charged for a peer's answer to a call of `rows` rows (written into evidence). @default none */
  chargeOf?: (peer: string, rows: number) => bigint | undefined
  /** Who runs a peer (an operator address on a paid network). @default the peer id itself */
  operatorOf?: (peer: string) => string
  /** The on-chain binding of a peer, written into evidence. */
  bindingOf?: (peer: string) => EvidenceBinding | undefined
  reputation: Reputation
  /** Where evidence files go; none: evidence is hashed and reported but not written. */
  evidenceDir?: string
  onFault?: (f: Fault) => void
  /** After each checked call; `rows`: the call's rows (k + 1 tokens' worth in a verify pass). */
  onCheck?: (c: {
    layer: number
    expert: number
    peer: string
    rows: number
    outcome: CheckOutcome
  }) => void
}

interface Opinion {
  /** Peer id, or null for the router's own run. */
  peer: string | null
  y: Float32Array
  answer?: SignedAnswer
}

export class SpotChecker {
  readonly rate: number
  readonly tolerance: number
  private readonly random: () => number
  readonly counts: Record<CheckOutcome, number> = {
    agreed: 0,
    convicted: 0,
    undecided: 0,
    unchecked: 0
  }

  constructor(private readonly opts: SpotCheckOptions) {
    this.rate = opts.rate ?? DEFAULT_VERIFY_RATE
    if (!(this.rate >= 0 && this.rate <= 1))
      throw new Error(`verify rate must be in [0, 1], got ${this.rate}`)
    this.tolerance = opts.tolerance ?? DEFAULT_VERIFY_TOLERANCE
    this.random = opts.random ?? Math.random
  }

  get reputation(): Reputation {
    return this.opts.reputation
  }

  /** Whether to check this call. */
  sample(): boolean {
    return this.rate > 0 && this.random() < this.rate
  }

  private operatorOf(peer: string): string {
    return this.opts.operatorOf?.(peer) ?? peer
  }

  /** Rate 1: every call is checked, and an answer nobody confirmed is never used. */
  get strict(): boolean {
    return this.rate >= 1
  }

  /** Checks one call; returns the output the generation should use. */
  async check(call: SpotCheckCall): Promise<Float32Array> {
    const { primary } = call
    const opinions: Opinion[] = [{ peer: primary.peer, y: primary.y, answer: primary }]
    const usedOps = new Set([this.operatorOf(primary.peer)])
    let localUsed = false
    const another = async (): Promise<Opinion | null> => {
      const a = await call.ask(usedOps)
      if (a != null) {
        usedOps.add(this.operatorOf(a.peer))
        return { peer: a.peer, y: a.y, answer: a }
      }
      if (this.opts.local != null && !localUsed) {
        localUsed = true
        // the router's run sees the same input values the nodes decoded, and its output goes
        // through the same wire encoding, so the comparison is like for like
        const x = decodeTensor(call.input, call.dtype)
        const y = await this.opts.local.runExpert(call.layer, call.expert, x, call.rows)
        return { peer: null, y: decodeTensor(encodeTensor(y, call.dtype), call.dtype) }
      }
      return null
    }
    const done = (outcome: CheckOutcome): void => {
      this.counts[outcome]++
      this.opts.onCheck?.({
        layer: call.layer,
        expert: call.expert,
        peer: primary.peer,
        rows: call.rows,
        outcome
      })
    }
    const where = `expert ${call.expert} of layer ${call.layer}`
    const second = await another()
    if (second == null) {
      done('unchecked')
      if (this.strict)
        throw new UnverifiedAnswerError(
          `no second operator and no referee for ${where}: the answer cannot be confirmed (--verify-rate 1 uses nothing unconfirmed)`
        )
      return primary.y
    }
    opinions.push(second)
    if (this.agree(primary.y, second.y, call.hidden)) {
      done('agreed')
      return primary.y
    }
    // a mismatch: the router's own run, when it answered, is the referee; else one more opinion
    if (second.peer != null) {
      const third = await another()
      if (third != null) opinions.push(third)
    }
    const local = opinions.find((o) => o.peer == null)
    if (local != null) {
      const wrong = opinions.filter((o) => o.peer != null && !this.agree(o.y, local.y, call.hidden))
      await this.convict(call, opinions, wrong, local.y)
      done(wrong.length > 0 ? 'convicted' : 'agreed')
      return wrong.some((o) => o.peer === primary.peer) ? local.y : primary.y
    }
    // three operators' answers: the first pair that agrees is the majority (at most one pair can,
    // unless the tolerance is so loose that one answer agrees with two that disagree)
    let majority: [Opinion, Opinion] | null = null
    for (let i = 0; i < opinions.length && majority == null; i++)
      for (let j = i + 1; j < opinions.length && majority == null; j++)
        if (this.agree(opinions[i].y, opinions[j].y, call.hidden))
          majority = [opinions[i], opinions[j]]
    if (majority == null) {
      // answers that differ and nothing to settle them: neither is used
      done('undecided')
      const msg = `${opinions.length} operators answered ${where} differently and no referee is left (give the router the bundle to referee)`
      throw this.strict
        ? new UnverifiedAnswerError(msg)
        : new ExpertUnavailableError(call.layer, call.expert, msg)
    }
    const [m] = majority
    const wrong = opinions.filter((o) => !majority.includes(o))
    await this.convict(call, opinions, wrong, m.y)
    done(wrong.length > 0 ? 'convicted' : 'agreed')
    return majority.includes(opinions[0]) ? primary.y : m.y
  }

  private agree(a: Float32Array, b: Float32Array, hidden: number): boolean {
    return outputDistance(a, b, hidden) <= this.tolerance
  }

  private async convict(
    call: SpotCheckCall,
    opinions: Opinion[],
    wrong: Opinion[],
    majority: Float32Array
  ): Promise<void> {
    if (wrong.length === 0) return
    const convicted = wrong.map((o) => o.peer!)
    const evidence = buildEvidence({
      modelId: this.opts.modelId,
      layer: call.layer,
      expert: call.expert,
      dtype: call.dtype,
      rows: call.rows,
      hidden: call.hidden,
      input: call.input,
      answers: opinions.map((o) =>
        o.answer != null
          ? {
              peerId: o.answer.peer,
              binding: this.opts.bindingOf?.(o.answer.peer),
              requestId: o.answer.requestId,
              output: o.answer.output,
              signature: o.answer.signature,
              ...(o.answer.payment != null
                ? {
                    payment: paymentEvidence(
                      o.answer.payment,
                      this.opts.chargeOf?.(o.answer.peer, call.rows)
                    )
                  }
                : {})
            }
          : { output: encodeTensor(o.y, call.dtype) }
      ),
      tolerance: this.tolerance,
      convicted
    })
    const bytes = encodeEvidence(evidence)
    const hash = evidenceHash(bytes)
    let evidencePath: string | undefined
    if (this.opts.evidenceDir != null) {
      await mkdir(this.opts.evidenceDir, { recursive: true })
      evidencePath = join(
        this.opts.evidenceDir,
        `fault-L${call.layer}-E${call.expert}-${convicted.map((p) => p.slice(-8)).join('-')}-${hash.slice(2, 10)}.json`
      )
      await writeFile(evidencePath, bytes)
    }
    for (const o of wrong) {
      const peer = o.peer!
      const operator = this.opts.operatorOf?.(peer)
      const distance = outputDistance(o.y, majority, call.hidden)
      this.opts.reputation.convict(peer, {
        ...(operator != null && operator !== peer ? { operator } : {}),
        at: new Date().toISOString(),
        layer: call.layer,
        expert: call.expert,
        distance,
        ...(evidencePath != null ? { evidence: evidencePath } : {})
      })
      this.opts.onFault?.({
        peer,
        ...(operator != null && operator !== peer ? { operator } : {}),
        layer: call.layer,
        expert: call.expert,
        distance,
        evidencePath,
        evidenceHash: hash
      })
    }
  }
}
