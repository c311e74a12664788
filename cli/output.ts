// What commands print: one text block for people, or one JSON object with --json. Loads nothing
// heavy, so any command can use it.

/** JSON with bigints as decimal strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)
}

/** Prints `json` (with --json) or `text`, followed by a newline, on stdout. */
export function print(opts: { json?: boolean }, json: unknown, text: string): void {
  process.stdout.write((opts.json === true ? toJson(json) : text) + '\n')
}
