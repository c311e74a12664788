import { pino, type Logger } from 'pino'

export type { Logger }

const WARN = 40

/**
 * The one place loggers are made; modules take `logger.child({ module })`. Warnings (and errors)
 * with the same message and fields are logged once per `repeatWindowMs` (default: once per
 * process): a fallback or a refused replica reported by every worker or every call is one line,
 * not a screenful. Long-running commands (node start, serve) pass a window so that a problem that
 * persists is reported again, with how many were held back meanwhile.
 */
export function createLogger(opts: {
  level?: string
  format?: string
  repeatWindowMs?: number
}): Logger {
  const level = opts.level ?? 'info'
  const hooks = { logMethod: dedupeWarnings(opts.repeatWindowMs ?? Infinity) }
  if (opts.format === 'json') return pino({ level, hooks }, pino.destination(2))
  return pino({
    level,
    hooks,
    transport: {
      target: 'pino-pretty',
      options: {
        destination: 2,
        colorize: process.stderr.isTTY,
        ignore: 'pid,hostname',
        singleLine: true // one line per message: fields follow it
      }
    }
  })
}

/** pino's logMethod hook that holds back repeated warnings (exported for its test). */
export function dedupeWarnings(windowMs: number) {
  const seen = new Map<string, { at: number; held: number }>()
  return function (
    this: Logger,
    args: Parameters<Logger['info']>,
    method: (...a: unknown[]) => void,
    level: number
  ): void {
    if (level < WARN) {
      method.apply(this, args)
      return
    }
    let key: string
    try {
      key = JSON.stringify([level, this.bindings(), args], (_k, v: unknown) =>
        v instanceof Error ? `${v.name}: ${v.message}` : typeof v === 'bigint' ? String(v) : v
      )
    } catch {
      method.apply(this, args) // fields that do not serialise: never held back
      return
    }
    const now = Date.now()
    const s = seen.get(key)
    if (s != null && now - s.at < windowMs) {
      s.held++
      return
    }
    seen.set(key, { at: now, held: 0 })
    if (s != null && s.held > 0 && typeof args[0] === 'object' && args[0] != null) {
      // the repeat says how many identical lines were held back since the last one
      method.apply(this, [{ ...(args[0] as object), repeated: s.held }, ...args.slice(1)])
      return
    }
    method.apply(this, args)
  }
}
