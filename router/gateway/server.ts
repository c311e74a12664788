// `pov serve`'s HTTP server (fastify): the OpenAI-compatible API under /v1, the web page at /,
// Prometheus metrics at /metrics. Request bodies are bounded (bodyLimit) and validated against
// JSON schemas before anything is generated or paid; every error is OpenAI-shaped.
import { createHash, randomInt, randomUUID, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { formatUnits } from 'ethers'
import type { Logger } from 'pino'
import { ApiError, badRequest } from './errors.js'
import type { GatewayMetrics } from './metrics.js'
import { NetworkProbe } from './network.js'
import { unsupportedKeyword, type Schema } from './json-grammar.js'
import {
  chatBodySchema,
  completionBodySchema,
  FIELD_FORMS,
  UNSUPPORTED,
  type ChatBody,
  type CompletionBody,
  type SamplingBody
} from './schemas.js'
import type {
  GatewayService,
  GenerationResult,
  GenerationUsage,
  ServedModel,
  TokenLogprob
} from './service.js'
import { SseStream } from './sse.js'
import { activeNodesPaged } from '../../chain/registry-pages.js'

export interface GatewayServerOptions {
  service: GatewayService
  host: string
  port: number
  /** Bearer tokens accepted on /v1 and /metrics; required on a non-loopback host. */
  tokens?: string[]
  /** Largest request body in bytes. @default 1 MiB */
  bodyLimit?: number
  /** Default max_tokens of a chat completion. @default 256 (capped by the service's limit) */
  chatMaxTokens?: number
  /**
   * Browser origins allowed to call the API (CORS), e.g. `https://app.example`; `*`: any.
   * @default none: a page on another origin cannot read the answers
   */
  corsOrigins?: string[]
  metrics?: GatewayMetrics | null
  logger?: Logger
}

/** Default max_tokens of /v1/completions, as in the OpenAI API. */
export const COMPLETION_MAX_TOKENS = 16
export const DEFAULT_BODY_LIMIT = 1 << 20
const PAGE_FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
  '/favicon.svg': 'favicon.svg',
  '/favicon.ico': 'favicon.svg'
}
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml'
}
/**
 * A body over the limit is still read (and dropped) up to this many bytes before the 413 goes
 * out, so the client, done sending, reads the answer; a larger one is answered at once and the
 * connection closed under it.
 */
const DRAIN_LIMIT = 64 << 20
/** Headers a browser may send cross-origin (the openai client's own included). */
const CORS_HEADERS =
  'authorization, content-type, x-request-id, openai-organization, openai-project, openai-beta, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout'

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h === '::1') return true
  return isIP(h) === 4 && h.startsWith('127.')
}

export class GatewayServer {
  private constructor(
    readonly app: FastifyInstance,
    readonly url: string,
    private readonly probe: NetworkProbe
  ) {}

  static async start(o: GatewayServerOptions): Promise<GatewayServer> {
    const tokens = (o.tokens ?? []).filter((t) => t !== '')
    if (tokens.length === 0 && !isLoopback(o.host))
      throw new Error(
        `refusing to serve on ${o.host} without access tokens: anyone who reaches it would spend the keystore's deposit — give --token (or POV_SERVE_TOKENS), or listen on 127.0.0.1`
      )
    const probe = new NetworkProbe(o.service)
    const app = buildApp(o, tokens, probe)
    try {
      await app.listen({ host: o.host, port: o.port })
    } catch (err) {
      await probe.close()
      throw err
    }
    const addr = app.server.address()
    const port = typeof addr === 'object' && addr != null ? addr.port : o.port
    const host = o.host.includes(':') ? `[${o.host}]` : o.host
    return new GatewayServer(app, `http://${host}:${port}`, probe)
  }

  async close(): Promise<void> {
    await this.app.close()
    await this.probe.close()
  }
}

function buildApp(o: GatewayServerOptions, tokens: string[], probe: NetworkProbe): FastifyInstance {
  const { service, metrics } = o
  const log = o.logger?.child({ module: 'gateway' })
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT
  const app = Fastify({
    // the limit itself is enforced while draining (preParsing below)
    bodyLimit: Math.max(DRAIN_LIMIT, bodyLimit),
    // an x-request-id the client sent (when sane) names the request; else a fresh one
    genReqId: (req) => {
      const h = req.headers['x-request-id']
      return typeof h === 'string' && /^[\w.:@-]{1,128}$/.test(h) ? h : randomUUID()
    },
    // types as declared: no coercion of "5" into 5, no silent removal
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // generations may stream for minutes; a connection is not cut under them
    requestTimeout: 0,
    forceCloseConnections: true
  })
  const digests = tokens.map((t) => createHash('sha256').update(t).digest())
  const pageDir = new URL('./page/', import.meta.url)

  const cors = o.corsOrigins ?? []
  app.addHook('onRequest', async (req, reply) => {
    // set on the raw response: they ride on every answer, a hijacked event stream's included
    reply.raw.setHeader('x-request-id', req.id)
    const origin = req.headers.origin
    if (origin != null && (cors.includes('*') || cors.includes(origin))) {
      reply.raw.setHeader('access-control-allow-origin', cors.includes('*') ? '*' : origin)
      reply.raw.setHeader('vary', 'origin')
      reply.raw.setHeader('access-control-expose-headers', 'x-request-id')
    }
    const path = req.url.split('?')[0]
    if (req.method === 'OPTIONS') return // a CORS preflight carries no token
    if (digests.length === 0 || !(path.startsWith('/v1/') || path === '/metrics')) return
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    const d = m == null ? null : createHash('sha256').update(m[1]).digest()
    if (d == null || !digests.some((x) => timingSafeEqual(x, d)))
      throw new ApiError(
        401,
        'authentication_error',
        m == null
          ? 'missing bearer token: send Authorization: Bearer <token>'
          : 'invalid bearer token',
        'invalid_api_key'
      )
  })
  app.addHook('onResponse', async (req, reply) => {
    metrics?.requests.inc({ endpoint: endpointOf(req), status: String(reply.statusCode) })
  })

  app.setErrorHandler(
    async (
      err: Error & {
        statusCode?: number
        code?: string
        validation?: Array<{ instancePath?: string }>
      },
      req,
      reply
    ) => {
      const e = toApiError(err, bodyLimit, req.url.split('?')[0])
      if (e.status >= 500) log?.error({ err, url: req.url, id: req.id }, 'request failed')
      return await reply.code(e.status).send(e.toJSON())
    }
  )
  // 413 only once the body is in: a client still sending when the connection closes sees EPIPE
  // (and the openai client retries the upload) instead of the answer
  app.addHook('preParsing', async (req, _reply, payload) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared <= bodyLimit && req.headers['transfer-encoding'] == null) return payload
    let seen = 0
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, done: TransformCallback) {
          seen += chunk.length
          done(null, seen > bodyLimit ? undefined : chunk)
        },
        flush(done: TransformCallback) {
          done(seen > bodyLimit ? tooLarge(bodyLimit) : null)
        }
      })
    )
  })
  // every route's path and methods, for 405 and CORS preflights
  const routes: Array<{ re: RegExp; methods: Set<string> }> = []
  app.addHook('onRoute', (r) => {
    const re = new RegExp('^' + r.url.replace(/:[^/]+/g, '[^/]+') + '$')
    let e = routes.find((x) => x.re.source === re.source)
    if (e == null) routes.push((e = { re, methods: new Set() }))
    for (const m of [r.method].flat()) if (m !== 'OPTIONS') e.methods.add(m)
  })
  const allowed = (path: string): Set<string> | null =>
    routes.find((r) => r.re.test(path))?.methods ?? null
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0]
    const methods = allowed(path)
    if (methods != null) {
      const allow = [...methods, 'OPTIONS'].join(', ')
      if (req.method === 'OPTIONS')
        return await reply
          .code(204)
          .header('allow', allow)
          .header('access-control-allow-methods', allow)
          .header('access-control-allow-headers', CORS_HEADERS)
          .header('access-control-max-age', '600')
          .send()
      const e = new ApiError(
        405,
        'invalid_request_error',
        `${req.method} is not allowed on ${path}; use ${[...methods].filter((m) => m !== 'HEAD').join(' or ')}`,
        'method_not_allowed'
      )
      return await reply.code(405).header('allow', allow).send(e.toJSON())
    }
    const e = new ApiError(
      404,
      'not_found_error',
      `no endpoint ${req.method} ${path}`,
      'unknown_url'
    )
    return await reply.code(404).send(e.toJSON())
  })

  for (const [path, file] of Object.entries(PAGE_FILES))
    app.get(path, async (_req, reply) => {
      const body = await readFile(new URL(file, pageDir))
      return await reply
        .header('content-type', CONTENT_TYPES[file.split('.').pop() ?? 'html'])
        .header('cache-control', 'no-cache')
        .send(body)
    })
  app.get('/health', async () => ({ ok: true }))
  app.get('/metrics', async (_req, reply) => {
    if (metrics == null)
      throw new ApiError(404, 'not_found_error', 'metrics are off', 'unknown_url')
    return await reply
      .header('content-type', metrics.registry.contentType)
      .send(await metrics.registry.metrics())
  })

  app.get('/v1/models', async () => {
    const prices = await modelPrices(service)
    return {
      object: 'list',
      data: [...service.models.values()].map((m) => modelJson(m, prices.get(m.modelId)))
    }
  })
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const m = service.model(req.params.id)
    return modelJson(m, (await modelPrices(service)).get(m.modelId))
  })
  // tokens/s over the last 5 minutes, sampled every 5 s (tokens counted when a reply ends)
  const throughput: Array<{ t: number; tokens: number }> = [
    { t: Date.now(), tokens: service.generatedTokens }
  ]
  const sampler = setInterval(() => {
    throughput.push({ t: Date.now(), tokens: service.generatedTokens })
    if (throughput.length > 61) throughput.shift()
  }, 5000)
  sampler.unref()
  app.addHook('onClose', async () => {
    clearInterval(sampler)
  })
  app.get('/v1/pov/network', async () => {
    const view = await probe.view()
    const funds = await service.funds()
    const load = await service.load()
    return {
      ...view,
      models: view.models.map((m) => ({
        ...m,
        nodes: m.nodes.map((n) => ({ ...n, load: load.get(n.peerId) ?? null }))
      })),
      throughput: throughput.slice(1).map((x, i) => ({
        t: x.t,
        tokensPerS:
          Math.round(((x.tokens - throughput[i].tokens) / ((x.t - throughput[i].t) / 1000)) * 100) /
          100
      })),
      // live, not cached with the rest: what a request arriving now meets
      queue: service.queue(),
      lanes: Object.fromEntries(
        [...funds].map(([model, f]) => [
          model,
          {
            unallocated: formatUnits(f.free, 18),
            available: formatUnits(f.available, 18),
            lanes: f.lanes.map((l) => ({
              operator: l.operator,
              room: formatUnits(l.room, 18)
            }))
          }
        ])
      )
    }
  })

  app.post<{ Body: CompletionBody }>(
    '/v1/completions',
    { schema: { body: completionBodySchema } },
    async (req, reply) => {
      const m = service.model(req.body.model)
      const p = req.body.prompt
      let promptIds: number[]
      if (typeof p === 'string') promptIds = m.tokenizer.encode(p)
      else if (typeof p[0] === 'string') promptIds = m.tokenizer.encode(p[0])
      else {
        promptIds = p as number[]
        const V = m.bundle.config.vocabSize
        const bad = promptIds.find((id) => id >= V)
        if (bad !== undefined)
          throw badRequest(`prompt token id ${bad} is outside the vocabulary (size ${V})`, 'prompt')
      }
      return await complete(
        'completion',
        req,
        reply,
        m,
        promptIds,
        [],
        req.body.max_tokens ?? COMPLETION_MAX_TOKENS
      )
    }
  )

  app.post<{ Body: ChatBody }>(
    '/v1/chat/completions',
    { schema: { body: chatBodySchema } },
    async (req, reply) => {
      const m = service.model(req.body.model)
      let rendered
      try {
        rendered = m.template.render(req.body.messages)
      } catch (err) {
        throw badRequest(
          `the model's chat template refused these messages: ${(err as Error).message}`,
          'messages'
        )
      }
      const promptIds = m.tokenizer.encode(rendered.text, {
        addSpecialTokens: rendered.addSpecialTokens
      })
      const maxTokens =
        req.body.max_completion_tokens ??
        req.body.max_tokens ??
        Math.min(o.chatMaxTokens ?? 256, service.maxTokensLimit)
      return await complete('chat', req, reply, m, promptIds, rendered.stop, maxTokens)
    }
  )

  async function complete(
    kind: 'chat' | 'completion',
    req: FastifyRequest<{ Body: SamplingBody }>,
    reply: FastifyReply,
    m: ServedModel,
    promptIds: number[],
    templateStops: string[],
    maxTokens: number
  ): Promise<unknown> {
    const b = req.body
    // logprobs: chat asks with `logprobs: true` (+ `top_logprobs`), completions with a count
    let top: number | null = null
    if (kind === 'chat') {
      const c = b as ChatBody
      if (c.logprobs === true) top = c.top_logprobs ?? 0
      else if (c.top_logprobs != null)
        throw badRequest("'top_logprobs' needs 'logprobs': true", 'top_logprobs', 'invalid_value')
    } else {
      const n = (b as CompletionBody).logprobs
      if (n != null) top = n
    }
    const json = jsonFormat(b)
    if (b.user != null) log?.info({ id: req.id, user: b.user }, 'request user')
    const param =
      kind === 'chat' && (req.body as ChatBody).max_completion_tokens != null
        ? 'max_completion_tokens'
        : 'max_tokens'
    if (maxTokens > service.maxTokensLimit)
      throw badRequest(
        `${param} ${maxTokens} is above this gateway's limit of ${service.maxTokensLimit} tokens per request`,
        param
      )
    const ctx = m.bundle.config.maxPositionEmbeddings
    if (promptIds.length + maxTokens > ctx)
      throw badRequest(
        `this model's context is ${ctx} tokens; the prompt has ${promptIds.length} and ${param} asks for ${maxTokens} more`,
        param,
        'context_length_exceeded'
      )
    const stop = [
      ...(b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop),
      ...templateStops
    ]
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`
    const created = Math.floor(Date.now() / 1000)
    const base = {
      id,
      object: kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: m.id,
      system_fingerprint: null
    }
    const ac = new AbortController()
    const onClose = (): void => {
      if (!reply.raw.writableFinished) ac.abort(new Error('the client closed the connection'))
    }
    reply.raw.on('close', onClose)
    const stream = b.stream === true
    const includeUsage = stream && b.stream_options?.include_usage === true
    const sse = new SseStream(reply.raw)
    const chunk = (
      choice: Record<string, unknown>,
      extra: Record<string, unknown> = {}
    ): Record<string, unknown> => ({
      ...base,
      object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }],
      ...(includeUsage ? { usage: null } : {}),
      ...extra
    })
    let result: GenerationResult
    let textOffset = 0
    /** What the generation has cost so far (set once it started). */
    let usageSoFar: (() => GenerationUsage) | null = null
    try {
      result = await service.generate({
        model: m,
        promptIds,
        maxTokens,
        temperature: b.temperature ?? 1,
        topP: b.top_p ?? 1,
        seed: b.seed ?? randomInt(2 ** 32),
        ignoreEos: b.ignore_eos === true,
        stop,
        signal: ac.signal,
        receivedAt: performance.now(),
        promptParam: kind === 'chat' ? 'messages' : 'prompt',
        presencePenalty: b.presence_penalty ?? 0,
        frequencyPenalty: b.frequency_penalty ?? 0,
        json,
        logprobs: top,
        onStart: (info) => {
          usageSoFar = info.usage
          if (!stream) return
          // from here on the answer is ours to write: status 200 and events
          reply.hijack()
          sse.open()
          sse.send(
            chunk(kind === 'chat' ? { delta: { role: 'assistant', content: '' } } : { text: '' })
          )
        },
        onText: (delta, lp) => {
          if (!stream) return
          const logprobs = top == null ? null : logprobsJson(kind, lp, textOffset)
          textOffset += delta.length
          sse.send(
            chunk(
              kind === 'chat' ? { delta: { content: delta }, logprobs } : { text: delta, logprobs }
            )
          )
        }
      })
    } catch (err) {
      const partial = (usageSoFar as (() => GenerationUsage) | null)?.() ?? null
      if (ac.signal.aborted) {
        metrics?.requests.inc({ endpoint: endpointOf(req), status: '499' })
        // nobody is left to tell: the log keeps what the cut reply cost
        log?.info(
          partial != null
            ? { id, cost: partial.cost.toString(), completionTokens: partial.completionTokens }
            : { id },
          'client went away; generation cancelled'
        )
        if (!reply.sent) reply.hijack()
        return
      }
      if (!reply.sent) throw err
      // headers are out: the choice ends saying so, and the error travels as an event, as
      // OpenAI streams do; both carry what the reply cost until then, as a final chunk does
      const e = toApiError(err as Error, 0)
      if (e.status >= 500) log?.error({ err, id }, 'generation failed mid-stream')
      const spentSoFar =
        partial != null
          ? {
              pov: povJson({ ...partial, degraded: false, capped: null }),
              usage: {
                prompt_tokens: promptIds.length,
                completion_tokens: partial.completionTokens,
                total_tokens: promptIds.length + partial.completionTokens
              }
            }
          : {}
      sse.send(
        chunk(
          kind === 'chat'
            ? { delta: {}, finish_reason: 'error' }
            : { text: '', finish_reason: 'error' },
          'pov' in spentSoFar ? { pov: spentSoFar.pov } : {}
        )
      )
      sse.send({ ...e.toJSON(), ...spentSoFar })
      sse.done()
      return
    } finally {
      reply.raw.off('close', onClose)
    }
    const usage = {
      prompt_tokens: result.promptTokens,
      completion_tokens: result.completionTokens,
      total_tokens: result.promptTokens + result.completionTokens
    }
    const pov = povJson(result)
    const spent =
      result.capped === 'funds'
        ? new ApiError(
            402,
            'insufficient_quota',
            `the escrow deposit is spent after ${result.completionTokens} tokens — run \`pov deposit AMOUNT\` with the gateway's keystore (the gateway picks it up without a restart)`,
            'insufficient_funds'
          )
        : null
    // nothing generated: the request failed, and says why (a reply cut short keeps its text)
    if (!stream && spent != null && result.completionTokens === 0) throw spent
    if (!stream) {
      const logprobs =
        top == null || result.logprobs == null ? null : logprobsJson(kind, result.logprobs, 0)
      const choice =
        kind === 'chat'
          ? {
              index: 0,
              message: { role: 'assistant', content: result.text, refusal: null },
              logprobs,
              finish_reason: result.finishReason
            }
          : { index: 0, text: result.text, logprobs, finish_reason: result.finishReason }
      return { ...base, choices: [choice], usage, pov }
    }
    sse.send(
      chunk(
        kind === 'chat'
          ? { delta: {}, finish_reason: result.finishReason }
          : { text: '', finish_reason: result.finishReason },
        { pov }
      )
    )
    if (includeUsage) sse.send({ ...chunk({}), choices: [], usage, pov })
    if (spent != null) sse.send(spent.toJSON())
    sse.done()
  }

  return app
}

function endpointOf(req: FastifyRequest): string {
  return req.routeOptions.url ?? 'unknown'
}

/**
 * `response_format` as the service takes it: null for text, a schema (null: any object) for
 * JSON; a schema with a keyword the grammar cannot enforce is refused, naming the keyword.
 */
function jsonFormat(b: SamplingBody): { schema: Schema | null } | null {
  const f = b.response_format
  if (f == null || f.type === 'text') return null
  if (f.type === 'json_object') return { schema: null }
  const schema = f.json_schema.schema
  if (schema == null) return { schema: null }
  const bad = unsupportedKeyword(schema)
  if (bad != null)
    throw badRequest(
      `response_format.json_schema.${bad} cannot be enforced by pov's constrained decoding (supported: type, properties, required, additionalProperties, items, minItems, maxItems, enum, const, and annotations)`,
      `response_format.json_schema.${bad}`,
      'unsupported_value'
    )
  return { schema: schema as Schema }
}

/** Log-probabilities as OpenAI shapes them: chat's `content` list, completions' parallel arrays. */
function logprobsJson(
  kind: 'chat' | 'completion',
  lp: TokenLogprob[],
  offset: number
): Record<string, unknown> {
  if (kind === 'chat')
    return {
      content: lp.map((t) => ({
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
        top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes }))
      })),
      refusal: null
    }
  const offsets: number[] = []
  for (const t of lp) {
    offsets.push(offset)
    offset += t.token.length
  }
  return {
    tokens: lp.map((t) => t.token),
    token_logprobs: lp.map((t) => t.logprob),
    top_logprobs: lp.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
    text_offset: offsets
  }
}

const tooLarge = (limit: number): ApiError =>
  new ApiError(
    413,
    'invalid_request_error',
    `request body larger than ${limit} bytes (this gateway's --body-limit)`,
    'request_too_large'
  )

interface AjvError {
  instancePath?: string
  keyword?: string
  message?: string
  params?: Record<string, unknown>
}

function toApiError(
  err: Error & { statusCode?: number; code?: string; validation?: AjvError[] },
  bodyLimit: number,
  path = ''
): ApiError {
  if (err instanceof ApiError) return err
  if (err.validation != null) return validationError(err.validation, path)
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(bodyLimit)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        415,
        'invalid_request_error',
        'send the request body as application/json',
        'unsupported_media_type'
      )
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('the request body is empty; send a JSON object', null, 'invalid_json')
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
    return badRequest(`the request body is not valid JSON: ${err.message}`, null, 'invalid_json')
  const status = err.statusCode ?? 500
  if (status >= 400 && status < 500)
    return new ApiError(status, 'invalid_request_error', err.message, err.code ?? null)
  return new ApiError(500, 'server_error', `internal error: ${err.message}`, 'internal_error')
}

/** `/messages/0/content` → `messages[0].content`, as OpenAI names a field. */
function fieldName(pointer: string): string {
  return pointer
    .split('/')
    .filter((x) => x !== '')
    .map((x, i) => (/^\d+$/.test(x) ? `[${x}]` : i === 0 ? x : `.${x}`))
    .join('')
}

/** The schema's first complaint as a sentence that names the field (`param`) and what it takes. */
function validationError(errors: AjvError[], path: string): ApiError {
  // an anyOf's own error comes last; its branches' errors before it say less
  const e = errors.find((x) => x.keyword === 'anyOf') ?? errors[0] ?? {}
  let field = fieldName(e.instancePath ?? '')
  const p = e.params ?? {}
  if (e.keyword === 'required') {
    const missing = `${field === '' ? '' : field + '.'}${String(p.missingProperty)}`
    return badRequest(
      `Missing required parameter: '${missing}'.`,
      missing,
      'missing_required_parameter'
    )
  }
  if (e.keyword === 'additionalProperties') {
    const name = `${field === '' ? '' : field + '.'}${String(p.additionalProperty)}`
    const why = field === '' ? UNSUPPORTED[String(p.additionalProperty)] : undefined
    return badRequest(
      why != null
        ? `'${name}' is not supported: ${why}. Remove it from the request.`
        : `Unrecognized request argument supplied: '${name}' (${path} takes ${field === '' ? 'the fields of docs/client.md' : 'no such field here'}).`,
      name,
      'unsupported_parameter'
    )
  }
  const top = field.split(/[.[]/)[0]
  if (!field.includes('.') && !field.includes('[') && UNSUPPORTED[top] != null)
    return badRequest(
      `Unsupported value for '${field}': ${UNSUPPORTED[top]}.`,
      field,
      'unsupported_value'
    )
  const leaf =
    field
      .split('.')
      .pop()
      ?.replace(/\[\d+\]$/, '') ?? field
  let what: string
  switch (e.keyword) {
    case 'anyOf':
      what = `must be ${FIELD_FORMS[leaf] ?? 'one of the forms docs/client.md lists'}`
      break
    case 'type':
      what = `must be ${String(p.type).replace(/,/g, ' or ')}`
      break
    case 'enum':
      what = `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
      break
    case 'const':
      what = `must be ${JSON.stringify(p.allowedValue)}`
      break
    default:
      what = e.message ?? 'is invalid'
  }
  if (field === '') field = 'body'
  return badRequest(`Invalid value for '${field}': ${what}.`, field === 'body' ? null : field)
}

function povJson(
  r: Pick<GenerationResult, 'cost' | 'nodes' | 'degraded' | 'capped'>
): Record<string, unknown> {
  return {
    cost: r.cost.toString(),
    cost_pov: formatUnits(r.cost, 18),
    nodes: r.nodes.map((n) => ({
      operator: n.operator,
      peer_id: n.peerId,
      calls: n.calls,
      units: n.units,
      amount: n.amount.toString(),
      amount_pov: formatUnits(n.amount, 18)
    })),
    degraded: r.degraded,
    capped: r.capped
  }
}

function modelJson(m: ServedModel, price: ModelPrice | undefined): Record<string, unknown> {
  return {
    id: m.id,
    object: 'model',
    created: m.created,
    owned_by: 'pov',
    pov: {
      model_id: m.modelId,
      name: m.name,
      layers: m.bundle.config.numLayers,
      experts: m.bundle.config.numExperts,
      shards: m.bundle.manifest.shards.length,
      context_length: m.bundle.config.maxPositionEmbeddings,
      chat_template: m.template.kind,
      nodes: price?.nodes ?? 0,
      shards_without_nodes: price?.missing ?? [],
      price_per_1k_tokens: price?.per1k == null ? null : formatUnits(price.per1k, 18),
      price_per_1k_tokens_wei: price?.per1k?.toString() ?? null
    }
  }
}

interface ModelPrice {
  per1k: bigint | null
  nodes: number
  missing: number[]
}

/**
 * Estimated price of 1000 tokens (prompt or completion alike): each token is one unit of work at
 * top-k experts in every layer, and the registry picks nodes with probability ∝ stake, so a unit's
 * expected price is, averaged over shards, the stake-weighted mean price of the shard's nodes.
 */
async function modelPrices(service: GatewayService): Promise<Map<string, ModelPrice>> {
  const out = new Map<string, ModelPrice>()
  const registry = service.chain.contracts.registry
  for (const m of service.models.values()) {
    const shardCount = m.bundle.manifest.shards.length
    const lists = await Promise.all(
      Array.from(
        { length: shardCount },
        async (_, s) => await activeNodesPaged(registry, m.modelId, s)
      )
    )
    const operators = new Set<string>()
    const missing: number[] = []
    let sum = 0n
    lists.forEach((nodes, s) => {
      let stake = 0n
      let weighted = 0n
      for (const n of nodes) {
        operators.add(n.operator)
        stake += BigInt(n.stake)
        weighted += BigInt(n.stake) * BigInt(n.price)
      }
      if (stake === 0n) missing.push(s)
      else sum += weighted / stake
    })
    const per1k =
      missing.length > 0 ? null : (1000n * BigInt(m.unitsPerToken) * sum) / BigInt(shardCount)
    out.set(m.modelId, { per1k, nodes: operators.size, missing })
  }
  return out
}
