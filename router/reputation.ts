// The router's local reputation: peers convicted of a wrong answer, kept in a JSON file so a
// restarted router does not route to them again. A conviction is final here (the evidence file
// says why); governance decides the on-chain consequence.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export interface Conviction {
  /** The operator address bound to the PeerId on-chain, when known. */
  operator?: string
  /** ISO time of the conviction. */
  at: string
  layer: number
  expert: number
  /** Path of the evidence file. */
  evidence?: string
  /** The wrong answer's distance from the majority (router/tolerance.ts). */
  distance: number
}

interface ReputationFile {
  version: 1
  convicted: Record<string, Conviction>
}

export class Reputation {
  private readonly convicted = new Map<string, Conviction>()

  /** `path`: where convictions persist (read now if it exists); none: in memory only. */
  constructor(private readonly path?: string) {
    if (path == null) return
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let data: ReputationFile
    try {
      data = JSON.parse(text) as ReputationFile
    } catch (err) {
      throw new Error(
        `reputation file ${path} is not valid JSON (${(err as Error).message}) — fix or remove it`,
        { cause: err }
      )
    }
    if (data?.version !== 1 || typeof data.convicted !== 'object' || data.convicted == null)
      throw new Error(
        `reputation file ${path} is not a version 1 pov reputation file — fix or remove it`
      )
    for (const [peer, c] of Object.entries(data.convicted)) this.convicted.set(peer, c)
  }

  isConvicted(peer: string): boolean {
    return this.convicted.has(peer)
  }

  get(peer: string): Conviction | undefined {
    return this.convicted.get(peer)
  }

  /** Convicted peers, in conviction order. */
  list(): Array<[string, Conviction]> {
    return [...this.convicted]
  }

  /** Records a conviction and writes the file (atomically: a crash leaves the old or the new one). */
  convict(peer: string, c: Conviction): void {
    if (this.convicted.has(peer)) return
    this.convicted.set(peer, c)
    if (this.path == null) return
    const data: ReputationFile = { version: 1, convicted: Object.fromEntries(this.convicted) }
    mkdirSync(dirname(this.path), { recursive: true })
    const tmp = `${this.path}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n')
    renameSync(tmp, this.path)
  }
}
