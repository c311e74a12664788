// Spot re-execution: a sampled fraction of expert calls is asked again — of a replica run by
// another operator, or of the router's own copy of the experts — and the answers compared
// (router/tolerance.ts). On a mismatch a third opinion decides; the majority answer is what the
// generation uses, so its tokens stay right; a node outside the majority is convicted: never
// used again (router/reputation.ts) and an evidence file is written (router/evidence.ts).
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ExpertExecutor } from '../model/generate.js'
import type { DType } from '../protocol/expert.js'
import { decodeTensor, encodeTensor } from '../protocol/codec.js'
import { DEFAULT_VERIFY_TOLERANCE, outputDistance } from './tolerance.js'
import { buildEvidence, encodeEvidence, evidenceHash, type EvidenceBinding } from './evidence.js'
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

export interface SpotCheckOptions {
  /** Fraction of calls re-run, in [0, 1]. @default DEFAULT_VERIFY_RATE */
  rate?: number
  /** @default DEFAULT_VERIFY_TOLERANCE */
  tolerance?: number
  modelId: string
  /** Uniform [0, 1) source deciding which calls are checked. @default Math.random */
  random?: () => number
  /** The router's own experts of this model (a second or third opinion that is never wrong). */
  local?: ExpertExecutor
  /** Who runs a peer (an operator address on a paid network). @default the peer id itself */
  operatorOf?: (peer: string) => string
  /** The on-chain binding of a peer, written into evidence. */
  bindingOf?: (peer: string) => EvidenceBinding | undefined
  reputation: Reputation
  /** Where evidence files go; none: evidence is hashed and reported but not written. */
  evidenceDir?: string
  onFault?: (f: Fault) => void
  onCheck?: (c: { layer: number; expert: number; peer: string; outcome: CheckOutcome }) => void
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
      this.opts.onCheck?.({ layer: call.layer, expert: call.expert, peer: primary.peer, outcome })
    }
    const second = await another()
    if (second == null) {
      done('unchecked')
      return primary.y
    }
    opinions.push(second)
    if (this.agree(primary.y, second.y, call.hidden)) {
      done('agreed')
      return primary.y
    }
    const third = await another()
    if (third == null) {
      // two answers, no referee: nobody can be convicted; the router's own run wins if it was one
      done('undecided')
      return second.peer == null ? second.y : primary.y
    }
    opinions.push(third)
    // the majority: the first pair that agrees (at most one pair can, unless the tolerance
    // is so loose that a single opinion agrees with two that disagree — then the primary stays)
    let majority: [Opinion, Opinion] | null = null
    for (let i = 0; i < 3 && majority == null; i++)
      for (let j = i + 1; j < 3 && majority == null; j++)
        if (this.agree(opinions[i].y, opinions[j].y, call.hidden))
          majority = [opinions[i], opinions[j]]
    if (majority == null) {
      done('undecided')
      return opinions.find((o) => o.peer == null)?.y ?? primary.y
    }
    const [m] = majority
    const wrong = opinions.filter((o) => !majority.includes(o) && o.peer != null)
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
              signature: o.answer.signature
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
