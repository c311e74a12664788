// Refused connections, streams and requests: every one counted in /metrics by reason, and logged
// at info at most once per interval per reason (with how many were not logged since), so a
// flood cannot fill the log.
import type { Logger } from 'pino'
import type { NodeMetrics } from './metrics.js'

export type RefusalReason =
  | 'malformed' // a request frame that breaks the decoding rules (answered with a status)
  | 'frame' // an oversize or undecodable frame (the stream is reset)
  | 'denied' // a peer or address outside the allow-list
  | 'ip-connections' // over the per-IP connection cap
  | 'peer-connections' // over the per-peer connection cap
  | 'streams' // over a stream cap
  | 'overloaded' // over the in-flight cap of a stream
  | 'idle' // a connection closed for idling
  | 'handshake' // a connection that did not finish its handshake in time

export class RefusalLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>()

  constructor(
    private readonly opts: {
      logger?: Logger
      metrics?: NodeMetrics | null
      /** @default 10000 */
      intervalMs?: number
    } = {}
  ) {}

  note(reason: RefusalReason, fields: Record<string, unknown>, message: string): void {
    this.opts.metrics?.refusals.inc({ reason })
    const now = Date.now()
    const s = this.last.get(reason)
    if (s != null && now - s.at < (this.opts.intervalMs ?? 10_000)) {
      s.suppressed++
      return
    }
    this.opts.logger?.info({ reason, ...fields, notLogged: s?.suppressed ?? 0 }, message)
    this.last.set(reason, { at: now, suppressed: 0 })
  }
}
