// `pov serve` against a local network (chain, 2 paid nodes, the tiny model), driven by the
// official `openai` client, raw HTTP and a headless Chromium: answers, streaming, costs, caps,
// hostile input, disconnects, and the web page. One network is shared by every case.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'node:http'
import OpenAI from 'openai'
import { Wallet, formatUnits, getAddress, parseEther } from 'ethers'
import { REPO, type LocalNet, type OperatorHandle } from '../../deploy/localnet.js'
import type { Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import { generateAll } from '../../model/generate.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { GatewayService } from '../../router/gateway/service.js'
import { GatewayServer } from '../../router/gateway/server.js'
import { createGatewayMetrics } from '../../router/gateway/metrics.js'
import { startPaidNetwork, type PaidNetwork } from './paid-network.js'

const PRICE = '0.001' // POV per unit; a tiny-model token is 2 layers × top-2 = 4 units
const MAX_COST = '0.2' // per request: 50 tokens at most
const SCREENSHOTS = join(REPO, 'test-results', 'gateway')

let dir: string
let net: LocalNet
let bundle: Bundle
let ops: OperatorHandle[] = []
const nodeMetricsPorts: number[] = []
let network: PaidNetwork | undefined
let serve: ChildProcess
let url: string
let client: OpenAI
let modelName: string

before(async () => {
  modelName = 'tiny-gateway'
  // both nodes with metrics: the cost checks read what they earned
  network = await startPaidNetwork({
    tmpPrefix: 'pov-e2e-gateway-',
    modelName,
    price: PRICE,
    dense: true,
    metrics: () => true
  })
  ;({ dir, net, bundle, ops } = network)
  for (const p of network.metricsPorts) nodeMetricsPorts.push(p as number)
  // the gateway, as a user starts it (no deposit yet: the first case checks the 402)
  serve = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'cli', 'bin.ts'),
      'serve',
      '--port',
      '0',
      '--max-cost',
      MAX_COST,
      '--max-tokens-limit',
      '256',
      ...net.chainFlags(network.clientKeystore, join(dir, 'client')),
      '--json',
      '--log-level',
      'error',
      '--log-format',
      'json'
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let stderr = ''
  serve.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
    process.stderr.write(d) // its errors, with stacks, in the test output
  })
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`pov serve not ready in 120 s: ${stderr}`))
    }, 120_000)
    createInterface({ input: serve.stdout! }).on('line', (line) => {
      try {
        const e = JSON.parse(line)
        if (e.event === 'ready') {
          clearTimeout(timer)
          resolve(e.url)
        }
      } catch {}
    })
    serve.once('exit', (c) => {
      clearTimeout(timer)
      reject(new Error(`pov serve exited with ${c}: ${stderr}`))
    })
  })
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 })
})

after(async () => {
  if (serve != null && serve.exitCode == null && serve.signalCode == null)
    await new Promise((resolve) => {
      serve.once('exit', resolve)
      serve.kill('SIGTERM')
    })
  await network?.close()
})

/** A gauge or counter of the gateway's /metrics (summed over label sets). */
async function metric(name: string, base = url): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  let sum = 0
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm')))
    sum += Number(m[1])
  return sum
}

const metricAt = async (base: string, name: string): Promise<number> => await metric(name, base)

/** POV the nodes accepted in vouchers, from their own metrics. */
async function nodesEarned(): Promise<number> {
  let sum = 0
  for (const p of nodeMetricsPorts) {
    const text = await (await fetch(`http://127.0.0.1:${p}/metrics`)).text()
    sum += Number(/^pov_earned_total (\S+)$/m.exec(text)?.[1] ?? 0)
  }
  return sum
}

const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9

async function settled(): Promise<void> {
  for (let i = 0; i < 200 && (await metric('pov_gateway_generations_in_flight')) > 0; i++)
    await new Promise((r) => setTimeout(r, 100))
}

test('GET /v1/models lists the approved model with its estimated price; no deposit is a 402', async () => {
  const list = await client.models.list()
  const m = list.data.find((x) => x.id === modelName) as unknown as {
    id: string
    pov: { model_id: string; price_per_1k_tokens: string; nodes: number }
  }
  assert.ok(m != null, 'the model is listed under its approved name')
  assert.equal(m.pov.model_id, bundle.modelId)
  assert.equal(m.pov.nodes, 2)
  // 1000 tokens × 4 units × 0.001 POV
  assert.equal(m.pov.price_per_1k_tokens, '4.0')
  await assert.rejects(
    client.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: 'hi' }]
    }),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 402)
      assert.equal(err.code, 'no_deposit')
      assert.match(err.message, /no deposit in escrow .* `pov deposit AMOUNT`/)
      return true
    }
  )
  await net.povJson([
    'deposit',
    '20',
    ...net.chainFlags(join(dir, 'client', 'keystore'), join(dir, 'client'))
  ])
})

test('completions equal the single-process run; usage and the POV cost in the response', async () => {
  const local = await net.povJson<{ text: string; tokens: number[] }>([
    'generate',
    '--model',
    bundle.dir,
    '--local',
    '--prompt-ids',
    '1,2,3',
    '--max-tokens',
    '8'
  ])
  const spent0 = await metric('pov_gateway_spent_pov')
  const r = await client.completions.create({
    model: modelName,
    prompt: [1, 2, 3],
    max_tokens: 8,
    temperature: 0
  })
  const pov = (
    r as unknown as {
      pov: { cost: string; cost_pov: string; nodes: Array<{ amount: string; units: number }> }
    }
  ).pov
  assert.equal(r.choices[0].text, local.text)
  assert.equal(r.usage?.prompt_tokens, 3)
  assert.equal(r.usage?.completion_tokens, local.tokens.length)
  assert.equal(r.usage?.total_tokens, 3 + local.tokens.length)
  assert.equal(r.choices[0].finish_reason, local.tokens.length < 8 ? 'stop' : 'length')
  // every token-row through an expert is paid at the node's price: 4 units per token at least
  // (prefill rows + one row per decoded token, × layers × top-k; a hedged call is paid twice)
  const units = pov.nodes.reduce((a, n) => a + n.units, 0)
  assert.ok(units >= 4 * (3 + local.tokens.length - 1), `${units} units`)
  assert.equal(BigInt(pov.cost), BigInt(units) * parseEther(PRICE))
  assert.equal(
    pov.nodes.reduce((a, n) => a + BigInt(n.amount), 0n),
    BigInt(pov.cost)
  )
  assert.ok(close((await metric('pov_gateway_spent_pov')) - spent0, Number(pov.cost_pov)))
})

test('chat completions, streamed and not, with the official client', async () => {
  const messages = [
    // short: the per-request cap must cover the prompt even when calls are hedged
    { role: 'user' as const, content: 'Name a colour.' }
  ]
  const whole = await client.chat.completions.create({
    model: modelName,
    messages,
    max_tokens: 6,
    temperature: 0,
    ignore_eos: true
  } as OpenAI.ChatCompletionCreateParamsNonStreaming)
  assert.equal(whole.object, 'chat.completion')
  assert.equal(whole.choices[0].message.role, 'assistant')
  assert.equal(whole.usage?.completion_tokens, 6)
  assert.equal(whole.choices[0].finish_reason, 'length')
  assert.ok(BigInt((whole as unknown as { pov: { cost: string } }).pov.cost) > 0n)

  const stream = await client.chat.completions.create({
    model: modelName,
    messages,
    max_tokens: 6,
    temperature: 0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true }
  } as OpenAI.ChatCompletionCreateParamsStreaming)
  let text = ''
  let finish: string | null = null
  let usage: OpenAI.CompletionUsage | null | undefined
  let pov: { cost: string } | undefined
  let chunks = 0
  for await (const c of stream) {
    chunks++
    if (c.choices.length > 0) {
      text += c.choices[0].delta.content ?? ''
      finish = c.choices[0].finish_reason ?? finish
    }
    if (c.usage != null) usage = c.usage
    pov = (c as unknown as { pov?: { cost: string } }).pov ?? pov
  }
  assert.equal(text, whole.choices[0].message.content, 'the stream spells the same reply')
  assert.equal(finish, 'length')
  assert.equal(usage?.completion_tokens, 6)
  assert.equal(usage?.prompt_tokens, whole.usage?.prompt_tokens)
  assert.ok(chunks >= 3, `${chunks} chunks`)
  assert.ok(
    BigInt(pov?.cost ?? 0) >= BigInt(4 * (whole.usage?.total_tokens ?? 0) - 4) * parseEther(PRICE)
  )

  // a stop sequence ends the reply before it, and says so
  const full = whole.choices[0].message.content ?? ''
  const stopAt = full.slice(2, 4)
  if (stopAt.length === 2 && full.indexOf(stopAt) === 2) {
    const s = await client.chat.completions.create({
      model: modelName,
      messages,
      max_tokens: 6,
      temperature: 0,
      ignore_eos: true,
      stop: [stopAt]
    } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    assert.equal(s.choices[0].message.content, full.slice(0, 2))
    assert.equal(s.choices[0].finish_reason, 'stop')
  }
})

test('raw SSE framing: data events, a blank line after each, [DONE] last', async () => {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: bundle.modelId,
      prompt: 'Hello',
      max_tokens: 3,
      ignore_eos: true,
      stream: true
    })
  })
  assert.equal(r.status, 200)
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
  const body = await r.text()
  assert.ok(body.endsWith('data: [DONE]\n\n'), 'ends with [DONE]')
  const events = body.split('\n\n').slice(0, -1)
  assert.ok(
    events.every((e) => /^data: \S/.test(e) && !e.includes('\n')),
    'one data line per event'
  )
  const json = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)))
  assert.ok(
    json.every(
      (j) => j.object === 'text_completion' && j.model === modelName && j.id === json[0].id
    )
  )
  const last = json[json.length - 1]
  assert.equal(last.choices[0].finish_reason, 'length')
  assert.ok(BigInt(last.pov.cost) > 0n, 'the cost rides on the final chunk')
  assert.ok(json.slice(0, -1).every((j) => j.choices[0].finish_reason === null))
  assert.equal(
    json.filter((j) => 'usage' in j).length,
    0,
    'no usage without stream_options.include_usage'
  )
})

test('hostile input: each a clear OpenAI-shaped error, and nothing paid', async () => {
  const spent0 = await metric('pov_gateway_spent_pov')
  const post = async (
    path: string,
    body: string | Uint8Array,
    headers: Record<string, string> = {}
  ): Promise<{
    status: number
    json: { error: { message: string; type: string; code: string | null; param: string | null } }
  }> => {
    const r = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body
    })
    return { status: r.status, json: (await r.json()) as never }
  }
  // 100 MB announced, beyond what the gateway drains before a 413: it answers from the
  // Content-Length alone. The body is not sent (a server that closes while a body is still
  // arriving resets the socket, and the reset can discard its answer before the client reads it;
  // bodies up to 64 MiB are read off first, the openai client's case below)
  const huge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(100 * 1024 * 1024) }
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body })
        req.destroy()
      })
    })
    req.on('error', reject)
    req.flushHeaders()
  })
  assert.equal(huge.status, 413)
  assert.match(huge.body, /request body larger than 1048576 bytes/)

  const bad = await post('/v1/chat/completions', '{"model": "x", "messages": [')
  assert.equal(bad.status, 400)
  assert.equal(bad.json.error.code, 'invalid_json')
  assert.match(bad.json.error.message, /not valid JSON/)

  const unknown = await post(
    '/v1/chat/completions',
    JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
  )
  assert.equal(unknown.status, 404)
  assert.equal(unknown.json.error.code, 'model_not_found')
  assert.match(unknown.json.error.message, /gpt-4o/)

  for (const max of [-5, 0, 1.5, '7'])
    for (const path of ['/v1/chat/completions', '/v1/completions']) {
      const r = await post(
        path,
        JSON.stringify({
          model: modelName,
          ...(path === '/v1/completions'
            ? { prompt: 'hi' }
            : { messages: [{ role: 'user', content: 'hi' }] }),
          max_tokens: max
        })
      )
      assert.equal(r.status, 400, `max_tokens ${max}`)
      assert.equal(r.json.error.type, 'invalid_request_error')
      assert.equal(r.json.error.param, 'max_tokens')
    }
  const tooMany = await post(
    '/v1/completions',
    JSON.stringify({ model: modelName, prompt: 'hi', max_tokens: 1e9 })
  )
  assert.equal(tooMany.status, 400)
  assert.match(
    tooMany.json.error.message,
    /max_tokens 1000000000 is above this gateway's limit of 256/
  )

  const noMessages = await post(
    '/v1/chat/completions',
    JSON.stringify({ model: modelName, messages: [] })
  )
  assert.equal(noMessages.status, 400)
  assert.equal(noMessages.json.error.param, 'messages')
  const badRole = await post(
    '/v1/chat/completions',
    JSON.stringify({ model: modelName, messages: [{ role: 'wizard', content: 'x' }] })
  )
  assert.equal(badRole.status, 400)
  const badTemp = await post(
    '/v1/completions',
    JSON.stringify({ model: modelName, prompt: 'x', temperature: 9 })
  )
  assert.equal(badTemp.status, 400)
  assert.equal(badTemp.json.error.param, 'temperature')
  const badId = await post(
    '/v1/completions',
    JSON.stringify({ model: modelName, prompt: [1, 99999] })
  )
  assert.equal(badId.status, 400)
  assert.match(badId.json.error.message, /token id 99999 is outside the vocabulary/)
  const notFound = await fetch(`${url}/v1/nope`)
  assert.equal(notFound.status, 404)
  assert.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'unknown_url')

  // and the official client maps them to its error classes
  await assert.rejects(
    client.completions.create({ model: modelName, prompt: 'x', max_tokens: -1 }),
    OpenAI.BadRequestError
  )
  await assert.rejects(
    client.completions.create({ model: 'nope', prompt: 'x' }),
    OpenAI.NotFoundError
  )

  assert.equal(await metric('pov_gateway_spent_pov'), spent0, 'no request above paid anything')
  assert.equal(await metric('pov_gateway_generations_in_flight'), 0)
})

test('every request field is honoured or refused with a 400 naming it', async () => {
  const spent0 = await metric('pov_gateway_spent_pov')
  const chat = { model: modelName, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }
  const refused: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools', /function calling/],
    [{ tool_choice: 'auto' }, 'tool_choice', /function calling/],
    [{ logit_bias: { '5': 10 } }, 'logit_bias', /logit bias/],
    [{ n: 2 }, 'n', /one choice/],
    [{ frobnicate: 1 }, 'frobnicate', /Unrecognized request argument/],
    [{ top_logprobs: 2 }, 'top_logprobs', /needs 'logprobs': true/],
    [{ stop: 5 }, 'stop', /a string, an array of up to 4/],
    [{ response_format: { type: 'xml' } }, 'response_format', /json_object/],
    [
      {
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } }
        }
      },
      'response_format.json_schema.schema.pattern',
      /cannot be enforced/
    ],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /a string, an array of/],
    [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role', /must be one of/],
    [
      { messages: [{ role: 'user', content: 'x', tool_calls: [] }] },
      'messages[0].tool_calls',
      /Unrecognized/
    ]
  ]
  for (const [extra, param, message] of refused) {
    await assert.rejects(
      client.chat.completions.create({ ...chat, ...extra } as never),
      (err: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(err.status, 400, JSON.stringify(extra))
        assert.equal(err.param, param, JSON.stringify(extra))
        assert.match(err.message, message)
        return true
      }
    )
  }
  // a missing field names itself; /v1/completions names `prompt`, not `messages`
  await assert.rejects(
    client.completions.create({ model: modelName } as never),
    (err: InstanceType<typeof OpenAI.APIError>) => err.status === 400 && err.param === 'prompt'
  )
  await assert.rejects(
    client.completions.create({ model: modelName, prompt: 'x', echo: true }),
    (err: InstanceType<typeof OpenAI.APIError>) => err.status === 400 && err.param === 'echo'
  )
  assert.equal(await metric('pov_gateway_spent_pov'), spent0, 'nothing refused was paid')
})

test('logprobs and top_logprobs (chat and completions, streamed and not) match the reply', async () => {
  const r = await client.chat.completions.create({
    model: modelName,
    messages: [{ role: 'user', content: 'Name a colour.' }],
    max_tokens: 5,
    temperature: 0,
    ignore_eos: true,
    logprobs: true,
    top_logprobs: 3
  } as OpenAI.ChatCompletionCreateParamsNonStreaming)
  const content = r.choices[0].logprobs?.content ?? []
  assert.equal(content.length, 5)
  for (const t of content) {
    assert.ok(t.logprob <= 0)
    assert.equal(t.top_logprobs.length, 3)
    // greedy: the chosen token is the most likely one
    assert.equal(t.top_logprobs[0].logprob, t.logprob)
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob)
  }
  assert.equal(
    Buffer.from(content.flatMap((t) => t.bytes ?? [])).toString('utf8'),
    r.choices[0].message.content,
    "the tokens' bytes spell the reply"
  )
  const s = await client.completions.create({
    model: modelName,
    prompt: [1, 2, 3],
    max_tokens: 4,
    temperature: 0,
    ignore_eos: true,
    logprobs: 2,
    stream: true
  } as OpenAI.CompletionCreateParamsStreaming)
  const tokens: string[] = []
  let text = ''
  for await (const c of s) {
    text += c.choices[0]?.text ?? ''
    const lp = c.choices[0]?.logprobs
    if (lp != null) {
      tokens.push(...(lp.tokens ?? []))
      for (const top of lp.top_logprobs ?? []) assert.equal(Object.keys(top).length, 2)
    }
  }
  assert.equal(tokens.length, 4)
  assert.equal(tokens.join(''), text)
})

test('response_format json_object and json_schema: constrained decoding, the reply parses', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: 'Describe a cat as JSON.' }],
      max_tokens: 24,
      temperature: 1,
      seed,
      response_format: { type: 'json_object' }
    } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    const text = r.choices[0].message.content ?? ''
    assert.equal(r.choices[0].finish_reason, 'stop', text)
    const v = JSON.parse(text) as unknown
    assert.equal(typeof v, 'object', text)
  }
  // short keys: this test's tokenizer spends about a token per byte, and the per-request cost
  // cap (MAX_COST) leaves room for ~40 tokens
  const schema = {
    type: 'object',
    properties: {
      n: { type: 'string' },
      legs: { type: 'integer' },
      fur: { enum: ['b', 'w'] }
    },
    required: ['n', 'legs', 'fur'],
    additionalProperties: false
  }
  const s = await client.chat.completions.create({
    model: modelName,
    messages: [{ role: 'user', content: 'A cat.' }],
    max_tokens: 34,
    temperature: 0.8,
    seed: 5,
    stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'cat', schema, strict: true } }
  } as OpenAI.ChatCompletionCreateParamsStreaming)
  let text = ''
  let finish: string | null = null
  for await (const c of s) {
    text += c.choices[0]?.delta.content ?? ''
    finish = c.choices[0]?.finish_reason ?? finish
  }
  assert.equal(finish, 'stop', text)
  const cat = JSON.parse(text) as { n: unknown; legs: unknown; fur: unknown }
  assert.equal(typeof cat.n, 'string', text)
  assert.ok(Number.isInteger(cat.legs), text)
  assert.ok(['b', 'w'].includes(cat.fur as string), text)
  assert.deepEqual(Object.keys(cat).sort(), ['fur', 'legs', 'n'])
  // a budget too small for the shortest such document is refused before anything is paid
  await assert.rejects(
    client.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: 'A cat.' }],
      max_tokens: 2,
      response_format: { type: 'json_schema', json_schema: { name: 'cat', schema } }
    }),
    (err: InstanceType<typeof OpenAI.APIError>) => err.status === 400 && err.param === 'max_tokens'
  )
})

test('presence and frequency penalties: the greedy reply equals a single-process run with the same penalties', async () => {
  const PROMPT = [1, 2, 3]
  const N = 24
  // the reference: every expert in this process, the OpenAI penalty formula written out here
  // (logit −= presence once a token was generated + frequency × its count so far)
  const dense = await loadDenseRuntime(bundle, { device: 'cpu', allowSpinning: false })
  const experts = await loadExpertRuntime(
    bundle,
    bundle.manifest.shards.map((x) => x.id),
    { device: 'cpu', intraOpNumThreads: 0, allowSpinning: false }
  )
  const tokenizer = await loadTokenizer(bundle.dir)
  const reference = async (presence: number, frequency: number): Promise<number[]> => {
    const margins: number[] = []
    const r = await generateAll({
      dense,
      experts,
      promptIds: PROMPT,
      maxTokens: N,
      temperature: 0,
      eosTokenId: null,
      processLogits: (logits, generated) => {
        const seen = new Map<number, number>()
        for (const id of generated) seen.set(id, (seen.get(id) ?? 0) + 1)
        for (const [id, n] of seen) logits[id] -= presence + frequency * n
        const top = [...logits].sort((a, b) => b - a)
        margins.push(top[0] - top[1])
      }
    })
    // a near-tie could go either way between two runs of the same maths: not an oracle there
    margins.forEach((m, i) => {
      assert.ok(
        m > 1e-3,
        `step ${i}: penalised top1-top2 margin ${m} is a near-tie; pick another prompt`
      )
    })
    return r.tokens
  }
  let plainRef: number[]
  let penalisedRef: number[]
  try {
    plainRef = await reference(0, 0)
    penalisedRef = await reference(0.8, 1.5)
  } finally {
    await experts.close()
    await dense.close()
  }
  const ask = async (presence: number, frequency: number): Promise<string> => {
    const r = await client.completions.create({
      model: modelName,
      prompt: PROMPT,
      max_tokens: N,
      temperature: 0,
      ignore_eos: true,
      presence_penalty: presence,
      frequency_penalty: frequency
    } as OpenAI.CompletionCreateParamsNonStreaming)
    assert.equal(r.usage?.completion_tokens, N)
    return r.choices[0].text
  }
  assert.equal(await ask(0, 0), tokenizer.decode(plainRef))
  assert.equal(await ask(0.8, 1.5), tokenizer.decode(penalisedRef))
  // the penalties mattered on this prompt (else the check above would prove nothing about them)
  assert.notDeepEqual(penalisedRef, plainRef)
})

test('HTTP manners: 413 the openai client reads, CORS when asked, x-request-id, 405, /health', async () => {
  // 5 MB of prompt: the client finishes its upload and reads the 413 (no retry, no EPIPE)
  const big = 'x'.repeat(5 * 1024 * 1024)
  let uploads = 0
  const counting = new OpenAI({
    baseURL: `${url}/v1`,
    apiKey: 'unused',
    maxRetries: 2,
    fetch: async (u, init) => {
      uploads++
      return await fetch(u, init)
    }
  })
  await assert.rejects(
    counting.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: big }]
    }),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 413)
      assert.equal(err.code, 'request_too_large')
      return true
    }
  )
  assert.equal(uploads, 1, 'the 413 is read, not retried')

  const id = 'trace-42.a'
  const r = await fetch(`${url}/v1/models`, { headers: { 'x-request-id': id } })
  assert.equal(r.headers.get('x-request-id'), id)
  const gen = await fetch(`${url}/v1/models`)
  assert.match(gen.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
  // a stream carries it too
  const st = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: modelName, prompt: 'x', max_tokens: 1, stream: true })
  })
  assert.equal(st.headers.get('x-request-id'), id)
  await st.text()
  // no CORS unless asked for (this gateway was started without --cors-origins)
  const plain = await fetch(`${url}/v1/models`, { headers: { origin: 'https://app.example' } })
  assert.equal(plain.headers.get('access-control-allow-origin'), null)

  const wrong = await fetch(`${url}/v1/chat/completions`)
  assert.equal(wrong.status, 405)
  assert.match(wrong.headers.get('allow') ?? '', /POST/)
  const body = (await wrong.json()) as { error: { code: string; message: string } }
  assert.equal(body.error.code, 'method_not_allowed')
  assert.equal((await fetch(`${url}/v1/models`, { method: 'DELETE' })).status, 405)
  assert.equal((await fetch(`${url}/health`)).status, 200)
  assert.deepEqual(await (await fetch(`${url}/health`)).json(), { ok: true })
  const icon = await fetch(`${url}/favicon.ico`)
  assert.equal(icon.status, 200)
  assert.match(icon.headers.get('content-type') ?? '', /svg/)
})

test('100 concurrent streams all finish, and their costs add up to what the gateway spent', async () => {
  const spent0 = await metric('pov_gateway_spent_pov')
  const results = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const s = await client.completions.create({
        model: modelName,
        // one prompt token and one generated: 4 paid expert calls per stream (the payer signs
        // each call's voucher in turn, which is what bounds this case's time)
        prompt: [1],
        max_tokens: 1,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true }
      } as OpenAI.CompletionCreateParamsStreaming)
      let finish: string | null = null
      let cost = 0n
      let tokens = 0
      for await (const c of s) {
        if (c.choices.length > 0) finish = c.choices[0].finish_reason ?? finish
        if (c.usage != null) tokens = c.usage.completion_tokens
        const p = (c as unknown as { pov?: { cost: string } }).pov
        if (p != null) cost = BigInt(p.cost)
      }
      return { finish, cost, tokens }
    })
  )
  for (const r of results) {
    assert.equal(r.finish, 'length')
    assert.equal(r.tokens, 1)
    assert.ok(r.cost >= 4n * parseEther(PRICE), `one token: 2 layers × top-2 rows, cost ${r.cost}`)
  }
  const total = results.reduce((a, r) => a + r.cost, 0n)
  assert.ok(close((await metric('pov_gateway_spent_pov')) - spent0, Number(formatUnits(total, 18))))
})

/** A streamed completion long enough (200 tokens, no stop) to be cut or left in the middle. */
async function streamLongStory(signal?: AbortSignal): Promise<Response> {
  return await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: modelName,
      prompt: 'a long story',
      max_tokens: 200,
      ignore_eos: true,
      stream: true
    }),
    signal
  })
}

test('a client that disconnects mid-stream cancels its generation and stops paying', async () => {
  await settled()
  const spent0 = await metric('pov_gateway_spent_pov')
  const ac = new AbortController()
  const r = await streamLongStory(ac.signal)
  assert.equal(r.status, 200)
  const reader = r.body!.getReader()
  let events = 0
  let buf = ''
  while (events < 4) {
    const { value, done } = await reader.read()
    assert.ok(done !== true, 'the stream ended before the disconnect')
    buf += new TextDecoder().decode(value)
    events = buf.split('\n\n').length - 1
  }
  ac.abort()
  await settled()
  const spentAfter = await metric('pov_gateway_spent_pov')
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(
    await metric('pov_gateway_spent_pov'),
    spentAfter,
    'nothing is paid after the generation stopped'
  )
  // at most what 50 tokens cost (the per-request cap), and far below 200 tokens
  const paid = spentAfter - spent0
  assert.ok(paid > 0 && paid < 50 * 4 * Number(PRICE), `paid ${paid} POV for a cancelled reply`)
  assert.match(
    await (await fetch(`${url}/metrics`)).text(),
    /^pov_gateway_requests_total\{endpoint="\/v1\/completions",status="499"\} [1-9]/m,
    'the cancelled request is counted as 499'
  )
  // nodes accepted vouchers only for calls the gateway counted (a voucher counted for a call
  // that never left, when the cancel came in between, is the only gap)
  const earned = await nodesEarned()
  const spent = await metric('pov_gateway_spent_pov')
  assert.ok(
    earned > 0 && earned <= spent + 1e-9,
    `nodes earned ${earned} POV, gateway spent ${spent}`
  )
})

test('the per-request cost cap ends a reply early; the cost never passes it', async () => {
  const r = await client.completions.create({
    model: modelName,
    prompt: 'tell me everything',
    max_tokens: 200,
    ignore_eos: true
  } as OpenAI.CompletionCreateParamsNonStreaming)
  const pov = (r as unknown as { pov: { cost: string; capped: string | null } }).pov
  assert.equal(pov.capped, 'request')
  assert.equal(r.choices[0].finish_reason, 'length')
  assert.ok(BigInt(pov.cost) <= parseEther(MAX_COST), `cost ${pov.cost}`)
  assert.ok((r.usage?.completion_tokens ?? 0) > 0 && (r.usage?.completion_tokens ?? 0) < 50)
})

test('the web page at 1280 and 390 px: streams a reply with its cost and nodes, new chat, the network pictured, deposit, lanes and queue; asks for a token where one is needed (headless Chromium)', async (t) => {
  if (!existsSync('/usr/bin/chromium')) {
    // .ci/run installs it (apt-get install chromium)
    console.log('# skipped: /usr/bin/chromium is absent — apt-get install -y chromium')
    t.skip('/usr/bin/chromium is absent (apt-get install -y chromium)')
    return
  }
  const { chromium } = await import('playwright-core')
  const profile = await mkdtemp(join(tmpdir(), 'pov-chromium-'))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ],
    viewport: { width: 1280, height: 900 }
  })
  // a token-guarded gateway of a second payer (no deposit needed to list models)
  const guardedService = await GatewayService.init({
    chain: {
      provider: net.provider,
      contracts: net.contracts,
      chainId: net.deployment.chainId,
      deployment: net.deployment
    },
    signer: new Wallet(Wallet.createRandom().privateKey, net.provider)
  })
  const guarded = await GatewayServer.start({
    service: guardedService,
    host: '127.0.0.1',
    port: 0,
    tokens: ['page-token']
  })
  const consoleErrors: string[] = []
  const watch = (page: import('playwright-core').Page): void => {
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`)
    })
    page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`))
  }
  /** Page width beyond the viewport (0: no horizontal scrolling). */
  const overflow = async (page: import('playwright-core').Page): Promise<number> =>
    await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth'
    )
  try {
    await mkdir(SCREENSHOTS, { recursive: true })
    const page = await browser.newPage()
    watch(page)
    await page.goto(url)
    await page.waitForSelector(`#model option[value="${modelName}"]`, { state: 'attached' })
    assert.equal(await page.isHidden('#token-box'), true, 'no token asked on an open gateway')
    const icon = await page.evaluate(async () => (await fetch('/favicon.svg')).status)
    assert.equal(icon, 200)
    await page.fill('#max-tokens', '12')
    await page.fill('#prompt', 'What is the capital of France?')
    await page.click('#send')
    // tokens appear while the reply is still streaming
    await page
      .waitForSelector('.msg.assistant.streaming .text:not(:empty)', { timeout: 60_000 })
      .catch(() => {})
    await page.waitForSelector('.msg.assistant.done', { timeout: 60_000 })
    const meta = await page.textContent('.msg.assistant .meta')
    assert.match(meta ?? '', /cost 0\.\d+ POV/)
    assert.match(meta ?? '', /served by:/)
    const served = await page.$$eval('.msg.assistant li[data-peer-id]', (li) =>
      li.map((x) => x.getAttribute('data-peer-id'))
    )
    assert.ok(served.length > 0 && served.every((p) => ops.some((o) => o.peerId === p)))
    assert.notEqual((await page.textContent('.msg.assistant .text'))?.length ?? 0, 0)
    assert.match(
      (await page.textContent('#privacy')) ?? '',
      /nodes that run the experts see your prompt/
    )
    await page.screenshot({ path: join(SCREENSHOTS, 'chat-1280.png'), fullPage: true })
    // a new chat starts empty: the next turn does not resend the history
    await page.click('#new-chat')
    assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 0)

    await page.click('#tab-network')
    await page.waitForSelector('table.nodes tbody tr[data-peer-id]')
    const peers = await page.$$eval('table.nodes tbody tr[data-peer-id]', (tr) =>
      tr.map((x) => x.getAttribute('data-peer-id'))
    )
    assert.deepEqual([...peers].sort(), ops.map((o) => o.peerId).sort())
    const rtts = await page.$$eval('table.nodes tbody tr td:nth-child(6)', (td) =>
      td.map((x) => x.textContent)
    )
    assert.ok(
      rtts.every((t) => /^\d+\.\d$/.test(t ?? '')),
      `measured RTTs ${rtts.join(',')}`
    )
    // the picture: one row per node, a cell per shard it serves (all 8 here)
    const rows = await page.$$eval('svg.network-picture g.node-row', (g) =>
      g.map((x) => [x.getAttribute('data-peer-id'), x.querySelectorAll('rect.serves').length])
    )
    assert.deepEqual(rows.map((r) => r[0]).sort(), ops.map((o) => o.peerId).sort())
    assert.ok(
      rows.every((r) => r[1] === 8),
      JSON.stringify(rows)
    )
    assert.match((await page.textContent('#funds')) ?? '', /Deposit not yet in a lane: [\d.]+ POV/)
    assert.equal(await page.$$eval('#funds .lane', (l) => l.length), ops.length, 'a lane per node')
    assert.match(
      (await page.textContent('#queue')) ?? '',
      /queue: \d+\/\d+ generating, \d+ waiting/
    )
    assert.equal(await page.$$eval('#throughput svg', (x) => x.length), 1)
    const gov = await page.textContent('#governance tbody')
    assert.match(gov ?? '', /ModelApproved/)
    assert.match(gov ?? '', /ProposalExecuted/)
    assert.equal(await overflow(page), 0, 'no horizontal scrolling at 1280 px')
    await page.screenshot({ path: join(SCREENSHOTS, 'network-1280.png'), fullPage: true })

    // a phone: 390 px wide, nothing scrolls sideways but the tables' own boxes
    await page.setViewportSize({ width: 390, height: 844 })
    await page.click('#tab-chat')
    await page.fill('#prompt', 'Hello')
    await page.click('#send')
    await page.waitForSelector('.msg.assistant.done', { timeout: 60_000 })
    assert.equal(await overflow(page), 0, 'no horizontal scrolling at 390 px (chat)')
    await page.screenshot({ path: join(SCREENSHOTS, 'chat-390.png'), fullPage: true })
    await page.click('#tab-network')
    await page.waitForSelector('table.nodes tbody tr[data-peer-id]')
    assert.equal(await overflow(page), 0, 'no horizontal scrolling at 390 px (network)')
    await page.screenshot({ path: join(SCREENSHOTS, 'network-390.png'), fullPage: true })

    // a token-guarded gateway: the page asks for the token, then works with it
    const g = await browser.newPage()
    watch(g)
    await g.setViewportSize({ width: 390, height: 844 })
    await g.goto(guarded.url)
    await g.waitForSelector('#token-box:not([hidden])')
    assert.match((await g.textContent('#token-why')) ?? '', /needs an access token/)
    await g.screenshot({ path: join(SCREENSHOTS, 'token-390.png'), fullPage: true })
    await g.fill('#token', 'page-token')
    await g.click('#token-box button[type=submit]')
    await g.waitForSelector(`#model option[value="${modelName}"]`, { state: 'attached' })
    assert.equal(await g.isHidden('#token-box'), true)
    // the expected 401 before the token is the only error a browser logs
    const unexpected = consoleErrors.filter((e) => !/401/.test(e) || !e.startsWith(guarded.url))
    assert.deepEqual(unexpected, [], 'no console errors')
  } finally {
    await browser.close()
    await guarded.close()
    await guardedService.close()
    await rm(profile, { recursive: true, force: true })
  }
})

test('a gateway-wide spending cap, bearer tokens, and no listening off loopback without them', async () => {
  // a second payer (its own vouchers: two gateways must not share one key's voucher stream)
  const wallet = new Wallet(Wallet.createRandom().privateKey, net.provider)
  await net.fund(wallet.address, parseEther('10'))
  await (
    await (net.contracts.token.connect(wallet) as typeof net.contracts.token).approve(
      net.deployment.contracts.escrow,
      parseEther('5')
    )
  ).wait()
  await (
    await (net.contracts.escrow.connect(wallet) as typeof net.contracts.escrow).deposit(
      parseEther('5')
    )
  ).wait()
  const metrics = createGatewayMetrics()
  const service = await GatewayService.init({
    chain: {
      provider: net.provider,
      contracts: net.contracts,
      chainId: net.deployment.chainId,
      deployment: net.deployment
    },
    signer: wallet,
    spendingCap: parseEther('0.04'), // 10 tokens
    metrics
  })
  await assert.rejects(
    GatewayServer.start({ service, host: '0.0.0.0', port: 0 }),
    /refusing to serve on 0\.0\.0\.0 without access tokens/
  )
  const server = await GatewayServer.start({
    service,
    host: '127.0.0.1',
    port: 0,
    tokens: ['s3cret'],
    corsOrigins: ['https://app.example'],
    metrics
  })
  try {
    // CORS: the preflight needs no token; the allowed origin is echoed, another is not
    const pre = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type'
      }
    })
    assert.equal(pre.status, 204)
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example')
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/)
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/)
    const other = await fetch(`${server.url}/v1/models`, {
      headers: { origin: 'https://evil.example', authorization: 'Bearer s3cret' }
    })
    assert.equal(other.headers.get('access-control-allow-origin'), null)
    const ok = await fetch(`${server.url}/v1/models`, {
      headers: { origin: 'https://app.example', authorization: 'Bearer s3cret' }
    })
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example')
    assert.match(ok.headers.get('access-control-expose-headers') ?? '', /x-request-id/)

    const anon = await fetch(`${server.url}/v1/models`)
    assert.equal(anon.status, 401)
    assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'invalid_api_key')
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 })
    await assert.rejects(wrong.models.list(), OpenAI.AuthenticationError)
    assert.equal((await fetch(`${server.url}/`)).status, 200, 'the page itself needs no token')

    const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 's3cret', maxRetries: 0 })
    const r = await c.completions.create({
      model: modelName,
      prompt: 'spend it all',
      max_tokens: 100,
      ignore_eos: true
    } as OpenAI.CompletionCreateParamsNonStreaming)
    const pov = (r as unknown as { pov: { cost: string; capped: string } }).pov
    assert.equal(pov.capped, 'gateway')
    assert.ok(BigInt(pov.cost) <= parseEther('0.04'))
    assert.ok(service.spent <= parseEther('0.04'))
    await assert.rejects(
      c.completions.create({ model: modelName, prompt: 'more', max_tokens: 5 }),
      (err: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(err.status, 402)
        assert.equal(err.code, 'spending_cap_reached')
        return true
      }
    )
  } finally {
    await server.close()
    await service.close()
  }
})

/** A second payer (its own voucher stream) with `deposit` POV in escrow, and its gateway. */
async function payerGateway(
  deposit: string,
  operators?: string[]
): Promise<{
  wallet: Wallet
  service: GatewayService
  server: GatewayServer
  client: OpenAI
  deposit: (pov: string) => Promise<void>
  close: () => Promise<void>
}> {
  const wallet = new Wallet(Wallet.createRandom().privateKey, net.provider)
  await net.fund(wallet.address, parseEther('50'))
  const escrow = net.contracts.escrow.connect(wallet) as typeof net.contracts.escrow
  const token = net.contracts.token.connect(wallet) as typeof net.contracts.token
  const depositMore = async (pov: string): Promise<void> => {
    await (await token.approve(net.deployment.contracts.escrow, parseEther(pov))).wait()
    await (await escrow.deposit(parseEther(pov))).wait()
  }
  await depositMore(deposit)
  const metrics = createGatewayMetrics()
  const service = await GatewayService.init({
    chain: {
      provider: net.provider,
      contracts: net.contracts,
      chainId: net.deployment.chainId,
      deployment: net.deployment
    },
    signer: wallet,
    metrics,
    lanes: { tickMs: 200 },
    router: operators != null ? { operators } : undefined
  })
  const server = await GatewayServer.start({ service, host: '127.0.0.1', port: 0, metrics })
  return {
    wallet,
    service,
    server,
    client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 }),
    deposit: depositMore,
    close: async () => {
      await server.close()
      await service.close()
    }
  }
}

type Outcome =
  | { kind: 'done'; finish: string | null; cost: bigint; tokens: number }
  | {
      kind: 'error'
      status: number | undefined
      code: string | null | undefined
      finish: string | null
      cost: bigint
      tokens: number
    }
  | { kind: 'hung' }

/**
 * One request through the official client — a chat stream, a completion stream or a plain
 * completion — and how it ended; a request that neither ends nor fails in 60 s is 'hung'.
 */
async function outcome(c: OpenAI, i: number, maxTokens: number): Promise<Outcome> {
  let finish: string | null = null
  let cost = 0n
  let tokens = 0
  const note = (x: unknown): void => {
    const p = (x as { pov?: { cost: string } }).pov
    if (p != null) cost = BigInt(p.cost)
    const u = (x as { usage?: { completion_tokens: number } | null }).usage
    if (u != null) tokens = u.completion_tokens
  }
  const run = async (): Promise<Outcome> => {
    try {
      if (i % 3 === 0) {
        const s = await c.chat.completions.create({
          model: modelName,
          messages: [{ role: 'user', content: `story ${i}` }],
          max_tokens: maxTokens,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true }
        } as OpenAI.ChatCompletionCreateParamsStreaming)
        for await (const x of s) {
          if (x.choices.length > 0) finish = x.choices[0].finish_reason ?? finish
          note(x)
        }
      } else if (i % 3 === 1) {
        const s = await c.completions.create({
          model: modelName,
          prompt: `story ${i}`,
          max_tokens: maxTokens,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true }
        } as OpenAI.CompletionCreateParamsStreaming)
        for await (const x of s) {
          if (x.choices.length > 0) finish = x.choices[0].finish_reason ?? finish
          note(x)
        }
      } else {
        const r = await c.completions.create({
          model: modelName,
          prompt: `story ${i}`,
          max_tokens: maxTokens,
          ignore_eos: true
        } as OpenAI.CompletionCreateParamsNonStreaming)
        finish = r.choices[0].finish_reason
        note(r)
      }
      return { kind: 'done', finish, cost, tokens }
    } catch (err) {
      if (!(err instanceof OpenAI.APIError)) throw err
      return { kind: 'error', status: err.status, code: err.code, finish, cost, tokens }
    }
  }
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => {
      resolve({ kind: 'hung' })
    }, 60_000)
  })
  try {
    return await Promise.race([run(), hung])
  } finally {
    clearTimeout(timer)
  }
}

test('a deposit spent to the end: every request ends (402 or finish_reason insufficient_funds), none hangs', async () => {
  const g = await payerGateway('0.6')
  try {
    const outcomes: Outcome[] = []
    // rounds of 3 concurrent requests (chat stream, completion stream, plain) until all three
    // are refused at once
    for (let round = 0; round < 40; round++) {
      const r = await Promise.all(
        [0, 1, 2].map(async (k) => await outcome(g.client, 3 * round + k, 24))
      )
      outcomes.push(...r)
      if (r.every((o) => o.kind === 'error' && o.status === 402)) break
    }
    const hung = outcomes.filter((o) => o.kind === 'hung').length
    const done = outcomes.filter((o) => o.kind === 'done')
    const errors = outcomes.filter((o) => o.kind === 'error')
    console.log(
      `# spend-to-the-end: ${outcomes.length} requests, ${done.length} finished, ${errors.length} refused or cut (${errors.map((e) => `${e.status ?? 'stream'}:${e.code}`).join(' ')}), ${hung} hung; spent ${formatUnits(g.service.spent, 18)} of 0.6 POV`
    )
    assert.equal(hung, 0, 'no request hangs')
    assert.ok(done.length > 0, 'the deposit paid for some requests first')
    for (const e of errors) {
      assert.equal(e.code, 'insufficient_funds', `refused for the deposit: ${e.status} ${e.code}`)
      // a stream cut short says why in its last choice, then the error event
      if (e.status === undefined) assert.equal(e.finish, 'insufficient_funds')
      else assert.equal(e.status, 402)
    }
    const last = outcomes.slice(-3)
    assert.ok(
      last.every((o) => o.kind === 'error' && o.status === 402),
      'at the end, each request is a 402 at once'
    )
    // the lanes were used to (nearly) the end: at most one voucher margin (64 units) per lane left
    const funds = [...(await g.service.funds()).values()][0]
    assert.equal(funds.free, 0n)
    const margin = 64n * parseEther(PRICE)
    assert.ok(
      g.service.spent >= parseEther('0.6') - 2n * margin - 2n * parseEther(MAX_COST),
      `spent ${formatUnits(g.service.spent, 18)} POV of 0.6`
    )
    // and a deposit made now is used without a restart
    await g.deposit('1')
    const after = await outcome(g.client, 2, 8)
    assert.equal(
      after.kind,
      'done',
      JSON.stringify(after, (_k, v) => (typeof v === 'bigint' ? String(v) : v))
    )
  } finally {
    await g.close()
  }
})

test('a deposit topped up mid-run: the lanes follow it, requests go on without a restart', async () => {
  const g = await payerGateway('0.5')
  try {
    const outcomes: Outcome[] = []
    let cost = 0n
    let deposited = false
    // 2 concurrent requests at a time; 1 POV more arrives once a fifth of the first deposit is
    // spent. The run stops at 1 POV spent as the gateway counts it (vouchers promised, cut replies
    // included), well before the 1.5 POV deposited: this test is about the top-up, not about
    // running dry (the test above); a stop rule on the replies' reported costs alone let a run
    // whose speculation paid more rows per token spend the whole deposit
    for (let round = 0; round < 30 && g.service.spent < parseEther('1'); round++) {
      const r = await Promise.all(
        [0, 1].map(async (k) => await outcome(g.client, 2 * round + k, 16))
      )
      outcomes.push(...r)
      for (const o of r) if (o.kind !== 'hung') cost += o.cost
      if (!deposited && cost > parseEther('0.1')) {
        await g.deposit('1')
        deposited = true
      }
    }
    const failed = outcomes.filter((o) => o.kind !== 'done')
    console.log(
      `# top-up mid-run: ${outcomes.length} requests, ${failed.length} not finished, spent ${formatUnits(cost, 18)} POV, ${g.service.spent} wei; lanes topped up ${await metricAt(g.server.url, 'pov_gateway_lane_topups_pov_total')} POV`
    )
    assert.ok(deposited)
    assert.deepEqual(failed, [], 'no request failed or hung')
    assert.ok(
      cost > parseEther('0.5'),
      `more than the first deposit was spent: ${formatUnits(cost, 18)}`
    )
    assert.ok((await metricAt(g.server.url, 'pov_gateway_lane_topups_pov_total')) > 0)
  } finally {
    await g.close()
  }
})

test('--operators keeps prompts among allowed operators: only their nodes are sent work or paid', async () => {
  const g = await payerGateway('0.5', [ops[0].address])
  try {
    const r = await g.client.completions.create({
      model: modelName,
      prompt: 'secret',
      max_tokens: 4,
      ignore_eos: true
    } as OpenAI.CompletionCreateParamsNonStreaming)
    const nodes = (r as unknown as { pov: { nodes: Array<{ operator: string; units: number }> } })
      .pov.nodes
    assert.ok(nodes.length > 0)
    assert.deepEqual([...new Set(nodes.map((n) => n.operator))], [getAddress(ops[0].address)])
    const view = (await (await fetch(`${g.server.url}/v1/pov/network`)).json()) as {
      lanes: Record<string, { lanes: Array<{ operator: string }> }>
    }
    assert.deepEqual(
      Object.values(view.lanes).flatMap((m) => m.lanes.map((l) => l.operator)),
      [getAddress(ops[0].address)],
      'a lane to the allowed operator only'
    )
  } finally {
    await g.close()
  }
})

test('a stream cut by an error reports what the reply cost until then (error event and last chunk)', async () => {
  await settled()
  const spent0 = await metric('pov_gateway_spent_pov')
  const r = await streamLongStory()
  assert.equal(r.status, 200)
  const reader = r.body!.getReader()
  const events: string[] = []
  let buf = ''
  let killed = false
  for (;;) {
    const { value, done } = await reader.read()
    if (done === true) break
    buf += new TextDecoder().decode(value, { stream: true })
    const parts = buf.split('\n\n')
    buf = parts.pop() ?? ''
    for (const p of parts) events.push(p.replace(/^data: /, ''))
    // a few tokens in, every node dies at once: the reply cannot go on
    if (!killed && events.length >= 4) {
      killed = true
      await Promise.all(
        ops.map(async (op) => {
          await net.stopNode(op, 'SIGKILL')
        })
      )
    }
  }
  assert.ok(killed, `the stream ended after ${events.length} events, before the nodes died`)
  assert.equal(events.at(-1), '[DONE]')
  const json = events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, any>)
  const last = json.find((e) => e.choices?.[0]?.finish_reason === 'error')
  const error = json.at(-1)!
  assert.ok(last != null, 'the choice ends with finish_reason "error"')
  assert.equal(error.error?.code, 'no_node_available')
  // both carry what the reply cost until the error, as a finished reply's last chunk does
  assert.deepEqual(last.pov, error.pov)
  const cost = BigInt(error.pov.cost)
  assert.ok(cost > 0n, 'the tokens generated before the cut were paid for')
  assert.equal(error.pov.cost_pov, formatUnits(cost, 18))
  const calls = (error.pov.nodes as Array<{ calls: number; amount: string }>).reduce(
    (a, n) => a + n.calls,
    0
  )
  assert.ok(calls > 0, 'the nodes that served it, with their calls')
  assert.equal(
    (error.pov.nodes as Array<{ amount: string }>).reduce((a, n) => a + BigInt(n.amount), 0n),
    cost
  )
  const texts = json.filter(
    (e) => typeof e.choices?.[0]?.text === 'string' && e.choices[0].text !== ''
  )
  assert.ok(
    error.usage.completion_tokens >= texts.length && error.usage.completion_tokens < 200,
    `completion tokens ${error.usage.completion_tokens} for ${texts.length} text events`
  )
  assert.equal(error.usage.total_tokens, error.usage.prompt_tokens + error.usage.completion_tokens)
  await settled()
  // the reported cost is what the gateway counts as spent for it
  assert.ok(
    close((await metric('pov_gateway_spent_pov')) - spent0, Number(formatUnits(cost, 18))),
    `gateway spent ${(await metric('pov_gateway_spent_pov')) - spent0} POV, the reply reported ${formatUnits(cost, 18)}`
  )
})

test('no node available is a 503', async () => {
  await Promise.all(
    ops.map(async (op) => {
      await net.stopNode(op)
    })
  )
  await assert.rejects(
    client.completions.create({ model: modelName, prompt: 'anyone?', max_tokens: 2 }),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 503)
      assert.equal(err.code, 'no_node_available')
      return true
    }
  )
})
