/** One line that says what failed; the stack only at debug level. Returns the exit code. */
export function reportError(err: unknown, debug: boolean): number {
  const e = err instanceof Error ? err : new Error(String(err))
  if (!(e instanceof UserError && e.reported)) process.stderr.write(`pov: ${e.message}\n`)
  if (debug && e.stack != null) process.stderr.write(`${e.stack}\n`)
  const code = (e as { exitCode?: unknown }).exitCode
  return typeof code === 'number' && code > 0 ? code : 1
}

/** An error meant for the user: printed without a stack, with its own exit code. */
export class UserError extends Error {
  override name = 'UserError'
  /** Already printed where it happened (between a partial result and its summary). */
  readonly reported: boolean
  constructor(
    message: string,
    readonly exitCode = 1,
    opts: { reported?: boolean } = {}
  ) {
    super(message)
    this.reported = opts.reported === true
  }
}
