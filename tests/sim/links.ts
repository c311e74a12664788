// The delay links of a simulated network, all in one child process of their own: its event loop
// does nothing but forward bytes, so a busy router or node process does not stretch the delays.
// Driven by JSON lines on stdin/stdout (`{id, ...LinkSpec}` -> `{id, port}`;
// `{id, lateness: true}` -> `{id, port: 0, lateness}` since the last such request).
import { spawn, type ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { DelayLink, type LinkSpec } from './delay-proxy.js'

/** How late the links delivered their chunks against the drawn delays, ms (negative: early). */
export interface Lateness {
  chunks: number
  mean: number
  p50: number
  p99: number
  max: number
}

interface Reply {
  id: number
  port: number
  error?: string
  lateness?: Lateness
}

const SELF = fileURLToPath(import.meta.url)

export class LinkProcess {
  private readonly child: ChildProcess
  private readonly waiting = new Map<number, (r: Reply) => void>()
  private next = 1

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve'], {
      stdio: ['pipe', 'pipe', 'inherit']
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as Reply
      this.waiting.get(r.id)?.(r)
      this.waiting.delete(r.id)
    })
  }

  /** A link to `spec.targetPort`; resolves with the port it listens on. */
  async add(spec: LinkSpec): Promise<number> {
    const r = await this.ask(spec)
    if (r.error != null) throw new Error(`delay link to port ${spec.targetPort}: ${r.error}`)
    return r.port
  }

  /** Delivery time minus due time of every link's chunks since the last call. */
  async lateness(): Promise<Lateness> {
    return (await this.ask({ lateness: true })).lateness!
  }

  private async ask(req: object): Promise<Reply> {
    const id = this.next++
    return await new Promise<Reply>((resolve) => {
      this.waiting.set(id, resolve)
      this.child.stdin!.write(JSON.stringify({ id, ...req }) + '\n')
    })
  }

  /** The link process (for its CPU time). */
  get pid(): number | undefined {
    return this.child.pid
  }

  close(): void {
    this.child.kill('SIGKILL')
  }
}

if (process.argv.includes('--serve')) {
  // The links stand for the network, which does not wait for a CPU: ahead of the nodes and
  // routers when allowed (root), so their load does not stretch the delays; as is otherwise.
  try {
    setPriority(-10)
  } catch {}
  const links: DelayLink[] = []
  createInterface({ input: process.stdin }).on('line', (line) => {
    const req = JSON.parse(line) as (LinkSpec & { id: number }) | { id: number; lateness: true }
    if ('lateness' in req) {
      const xs = links.flatMap((l) => Array.from(l.takeLateness())).sort((a, b) => a - b)
      const at = (q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]
      const lateness: Lateness = {
        chunks: xs.length,
        mean: xs.reduce((a, x) => a + x, 0) / xs.length,
        p50: at(0.5),
        p99: at(0.99),
        max: xs[xs.length - 1]
      }
      process.stdout.write(JSON.stringify({ id: req.id, port: 0, lateness }) + '\n')
      return
    }
    const link = new DelayLink(req)
    links.push(link)
    link.listen().then(
      (port) => process.stdout.write(JSON.stringify({ id: req.id, port }) + '\n'),
      (err: Error) =>
        process.stdout.write(JSON.stringify({ id: req.id, port: 0, error: err.message }) + '\n')
    )
  })
  process.stdin.once('end', () => process.exit(0))
}
