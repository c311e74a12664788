// The delay links of a simulated network, all in one child process of their own: its event loop
// does nothing but forward bytes, so a busy router or node process does not stretch the delays.
// Driven by JSON lines on stdin/stdout (`{id, ...LinkSpec}` -> `{id, port}`).
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { DelayLink, type LinkSpec } from './delay-proxy.js'

const SELF = fileURLToPath(import.meta.url)

export class LinkProcess {
  private readonly child: ChildProcess
  private readonly waiting = new Map<number, (r: { port: number; error?: string }) => void>()
  private next = 1

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve'], {
      stdio: ['pipe', 'pipe', 'inherit']
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as { id: number; port: number; error?: string }
      this.waiting.get(r.id)?.(r)
      this.waiting.delete(r.id)
    })
  }

  /** A link to `spec.targetPort`; resolves with the port it listens on. */
  async add(spec: LinkSpec): Promise<number> {
    const id = this.next++
    const r = await new Promise<{ port: number; error?: string }>((resolve) => {
      this.waiting.set(id, resolve)
      this.child.stdin!.write(JSON.stringify({ id, ...spec }) + '\n')
    })
    if (r.error != null) throw new Error(`delay link to port ${spec.targetPort}: ${r.error}`)
    return r.port
  }

  close(): void {
    this.child.kill('SIGKILL')
  }
}

if (process.argv.includes('--serve')) {
  createInterface({ input: process.stdin }).on('line', (line) => {
    const req = JSON.parse(line) as LinkSpec & { id: number }
    const link = new DelayLink(req)
    link.listen().then(
      (port) => process.stdout.write(JSON.stringify({ id: req.id, port }) + '\n'),
      (err: Error) =>
        process.stdout.write(JSON.stringify({ id: req.id, port: 0, error: err.message }) + '\n')
    )
  })
  process.stdin.once('end', () => process.exit(0))
}
