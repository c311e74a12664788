// A running node's view of its own standing: re-read from the chain every few seconds, logged at
// warn level (with the command that fixes it) when it changes, exported as a metric and answered
// on /ready. A node whose chain is unreachable, or that routers no longer pick, is not ready.
import type { Logger } from 'pino'
import type { PovContracts } from '../../chain/contracts.js'
import {
  readStanding,
  standingKey,
  type NodeView,
  type StandingIssue
} from '../../chain/standing.js'
import type { NodeMetrics } from '../../node/metrics.js'
import { formatPov } from '../chain.js'

export interface Readiness {
  ok: boolean
  /** One line per reason, each with its remedy. */
  reasons: string[]
}

const CODES = [
  'not-registered',
  'unbonding',
  'below-min-stake',
  'frozen',
  'model-revoked',
  'chain-unreachable'
] as const

export class StandingWatch {
  private issues: StandingIssue[] = []
  private unreachable: string | null = null
  private key = ''
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly contracts: Pick<PovContracts, 'registry' | 'models'>,
    private readonly operator: string,
    private readonly logger: Logger,
    private readonly metrics: NodeMetrics | null,
    private readonly now: () => Promise<bigint>
  ) {}

  /** Reads once (so /ready is right from the start), then every `intervalMs` (a node that reads
   *  the registry anyway drives poll() itself instead: cli/node/paid-start.ts). */
  async start(intervalMs = 10_000): Promise<void> {
    await this.poll()
    this.timer = setInterval(() => void this.poll(), intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = null
  }

  readiness(): Readiness {
    const reasons: string[] = []
    if (this.unreachable != null)
      reasons.push(
        `chain unreachable (${this.unreachable}) — the node cannot see unlocks, price or standing changes; check --rpc`
      )
    for (const i of this.issues) if (i.blocking) reasons.push(`${i.reason} — ${i.remedy}`)
    return { ok: reasons.length === 0, reasons }
  }

  /** `node`: the registry record just read by the caller (the price poll), not read again. */
  async poll(node?: NodeView): Promise<void> {
    let next: StandingIssue[]
    try {
      next = (await readStanding(this.contracts, this.operator, formatPov, await this.now(), node))
        .issues
      if (this.unreachable != null) this.logger.info('chain reachable again')
      this.unreachable = null
    } catch (err) {
      const msg = (err as Error).message.split('\n')[0].slice(0, 160)
      if (this.unreachable == null)
        this.logger.warn(
          { err: msg },
          'chain unreachable: /ready answers false until it is back (check --rpc)'
        )
      this.unreachable = msg
      this.setMetrics()
      return
    }
    const key = standingKey({ issues: next })
    if (key !== this.key) {
      const before = new Set(this.issues.map((i) => i.code))
      for (const i of next)
        if (!before.has(i.code))
          this.logger.warn(
            { code: i.code, remedy: i.remedy },
            `standing changed: ${i.reason}${i.blocking ? ' — routers no longer pick this node' : ''}`
          )
      if (next.length === 0 && this.key !== '')
        this.logger.info('standing restored: routers pick this node again')
      this.key = key
    }
    this.issues = next
    this.setMetrics()
  }

  private setMetrics(): void {
    if (this.metrics == null) return
    const on = new Set<string>(this.issues.map((i) => i.code))
    if (this.unreachable != null) on.add('chain-unreachable')
    for (const c of CODES) this.metrics.standingIssue.set({ code: c }, on.has(c) ? 1 : 0)
  }
}
