import { pino, type Logger } from 'pino'

export type { Logger }

/** The one place loggers are made; modules take `logger.child({ module })`. */
export function createLogger(opts: { level?: string; format?: string }): Logger {
  const level = opts.level ?? 'info'
  if (opts.format === 'json') return pino({ level }, pino.destination(2))
  return pino({
    level,
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
