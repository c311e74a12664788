// Incremental detokenisation with stop sequences: after each token the whole completion is
// decoded again and only a stable new suffix is released — a trailing U+FFFD (a multi-byte
// character split across tokens) and any tail that could still grow into a stop sequence are
// held back, so a streamed reply never shows part of a stop sequence.

export class StopTextStream {
  private emitted = ''
  /** Set once a stop sequence appeared; the text ends just before it. */
  stopped = false

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: readonly string[]
  ) {}

  /** The released text so far. */
  get text(): string {
    return this.emitted
  }

  /** Feeds every generated id so far; returns the newly released text ('' when none). */
  push(ids: number[], final = false): string {
    let text = this.decode(ids)
    let cut = -1
    for (const s of this.stops) {
      const i = text.indexOf(s)
      if (i >= 0 && (cut < 0 || i < cut)) cut = i
    }
    if (cut >= 0) {
      text = text.slice(0, cut)
      this.stopped = true
      final = true
    }
    if (!final) {
      text = text.replace(/\uFFFD+$/, '')
      text = text.slice(0, text.length - this.pendingStopPrefix(text))
    }
    // a later token rewrote text already released: wait (the final push releases the rest)
    if (!text.startsWith(this.emitted)) return ''
    const out = text.slice(this.emitted.length)
    this.emitted = text
    return out
  }

  /** Length of the longest tail of `text` that is a proper prefix of a stop sequence. */
  private pendingStopPrefix(text: string): number {
    let best = 0
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, text.length); n > best; n--)
        if (text.endsWith(s.slice(0, n))) {
          best = n
          break
        }
    return best
  }
}
