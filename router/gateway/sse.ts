// Server-sent events as the OpenAI API frames them: one `data: <json>` event per chunk, a blank
// line after each, and `data: [DONE]` last. Writes to the raw Node response (fastify's reply is
// hijacked), and reports a closed connection so the caller stops generating.
import type { ServerResponse } from 'node:http'

export class SseStream {
  private opened = false

  constructor(private readonly res: ServerResponse) {}

  /** True once the client went away (the connection closed before end()). */
  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded
  }

  open(headers: Record<string, string> = {}): void {
    if (this.opened) return
    this.opened = true
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // proxies (nginx) must not buffer a token stream
      ...headers
    })
    this.res.flushHeaders()
  }

  send(data: unknown): void {
    if (this.closed) return
    this.open()
    this.res.write(`data: ${JSON.stringify(data)}\n\n`)
  }

  /** `data: [DONE]` and the end of the response. */
  done(): void {
    if (this.closed) return
    this.open()
    this.res.end('data: [DONE]\n\n')
  }
}
