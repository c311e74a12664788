// npm run bench:gateway — the gateway's single-stream tokens/s with speculative decoding against
// without it (`pov serve --no-speculative`), on the demo's network: a local chain, models/tiny-en
// approved by governance, four paid operator nodes on loopback (every shard on 2 nodes, the
// demo's layout and prices). Two `pov serve` processes on that network, each with its own paying
// client (its own deposit and lanes): one as users start it (speculation on: the bundle's draft,
// adaptive k), one with --no-speculative. One request at a time, through the official `openai`
// client, streamed; the two gateways take turns on the same prompts (which goes first
// alternates), temperature 0, so every pair must give the same text. Per request: tokens/s end to
// end (completion tokens / request time) and decode tokens/s (after the first token), TTFT, and
// the POV cost the gateway reports.
//   npm run bench:gateway [-- --tokens N] [--prompts N] [--reps N] [--cpu-prof DIR]
//                         [--node-args=--no-spin] [--serve-args='--busy-poll-us 0']
// --cpu-prof DIR: the nodes and both gateways run under `node --cpu-prof` (profiles in DIR/<name>),
// and where their CPU went during the greedy requests is printed per process (tests/bench/cpu-profile.ts).
// Target (#21): single-stream tokens/s with speculation ≥ 1.5 × without.
// The last line of output is one JSON object with every figure.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import OpenAI from 'openai'
import { formatSummary, readProfile, summarize } from './cpu-profile.js'
import { LocalNet, REPO, type OperatorHandle } from '../../deploy/localnet.js'

const { values: args } = parseArgs({
  options: {
    tokens: { type: 'string', default: '64' },
    prompts: { type: 'string', default: '6' },
    reps: { type: 'string', default: '2' },
    /** Temperatures measured, each over every prompt: 0 (greedy: both gateways must give the same
     *  text) and the demo's 0.7 with top-p 0.9 (speculative sampling). */
    temperatures: { type: 'string', default: '0,0.7' },
    'top-p': { type: 'string', default: '0.9' },
    'cpu-prof': { type: 'string' },
    /** Extra flags, space-separated, for every `pov node start` / both `pov serve` (e.g.
     *  `--no-spin`, `--busy-poll-us 0`: the machine's cores are shared by every process). */
    'node-args': { type: 'string', default: '' },
    'serve-args': { type: 'string', default: '' }
  }
})
const words = (s: string): string[] => s.split(/\s+/).filter((w) => w !== '')
const PROF = args['cpu-prof'] != null ? resolve(args['cpu-prof']) : null
const TOKENS = Number(args.tokens)
const PROMPTS = Number(args.prompts)
const REPS = Number(args.reps)
const TEMPERATURES = args.temperatures.split(',').map(Number)
const TOP_P = Number(args['top-p'])

const t0 = Date.now()
const say = (s: string): void => {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`)
}

interface Sample {
  tokens: number
  text: string
  ms: number
  ttftMs: number
  /** First to last streamed text. */
  decodeMs: number
  cost: bigint
  /** Expert calls paid for the reply (hedges and spot checks included). */
  calls: number
  /** CPU the request took in every process that served it (its gateway and the 4 nodes), ms. */
  cpuMs: number
}

/** CPU time (user + system) a process has used so far, ms (Linux /proc; NaN elsewhere). */
const TICK_MS = 10 // USER_HZ is 100 on Linux
function cpuMs(pid: number | undefined): number {
  try {
    // the fields after the command name (which may hold spaces): utime and stime are 14 and 15
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * TICK_MS
  } catch {
    return NaN
  }
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]
}

const dir = await mkdtemp(join(tmpdir(), 'pov-bench-gateway-'))
const net = new LocalNet(dir)
const gateways: ChildProcess[] = []
const stopGateways = async (): Promise<void> => {
  await Promise.all(
    gateways.map(
      async (g) =>
        await new Promise((resolve) => {
          if (g.exitCode != null || g.signalCode != null) resolve(null)
          else {
            g.once('exit', resolve)
            g.kill('SIGTERM')
          }
        })
    )
  )
}
const shutdown = async (): Promise<void> => {
  await stopGateways()
  await net.close()
  await rm(dir, { recursive: true, force: true })
}

/** `pov serve` with its own paying client; resolves its base URL and pid once it is ready. */
async function gateway(name: string, extra: string[]): Promise<{ url: string; pid?: number }> {
  // a paying client of its own: its own deposit and lanes
  const client = await net.addClient(name, { deposit: '20' })
  const g = spawn(
    process.execPath,
    [
      ...(PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${join(PROF, name)}`] : []),
      '--import',
      'tsx',
      join(REPO, 'cli', 'bin.ts'),
      'serve',
      '--port',
      '0',
      '--max-tokens-limit',
      String(Math.max(256, TOKENS)),
      ...net.chainFlags(client.keystore, client.dir),
      '--bundle',
      join(dir, 'bundle'),
      ...extra,
      ...words(args['serve-args']),
      '--json',
      '--log-level',
      'error',
      '--log-format',
      'json'
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  gateways.push(g)
  let stderr = ''
  g.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return await new Promise<{ url: string; pid?: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`pov serve (${name}) not ready in 180 s: ${stderr}`))
    }, 180_000)
    createInterface({ input: g.stdout! }).on('line', (line) => {
      try {
        const e = JSON.parse(line) as { event?: string; url?: string }
        if (e.event === 'ready' && e.url != null) {
          clearTimeout(timer)
          resolve({ url: e.url, pid: g.pid })
        }
      } catch {}
    })
    g.once('exit', (c) => {
      clearTimeout(timer)
      reject(new Error(`pov serve (${name}) exited with ${c}: ${stderr}`))
    })
  })
}

/** One streamed completion, timed. */
async function complete(
  client: OpenAI,
  model: string,
  prompt: string,
  temperature = 0
): Promise<Sample> {
  const start = performance.now()
  let first = NaN
  let last = NaN
  let text = ''
  let tokens = 0
  let cost = 0n
  let calls = 0
  const stream = await client.completions.create({
    model,
    prompt,
    max_tokens: TOKENS,
    temperature,
    ...(temperature > 0 ? { top_p: TOP_P, seed: 1 } : {}),
    stream: true,
    stream_options: { include_usage: true }
  })
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.text ?? ''
    if (delta !== '') {
      const now = performance.now()
      if (Number.isNaN(first)) first = now
      last = now
      text += delta
    }
    if (chunk.usage != null) {
      tokens = chunk.usage.completion_tokens
      const pov = (
        chunk as unknown as { pov?: { cost?: string; nodes?: Array<{ calls: number }> } }
      ).pov
      if (pov?.cost != null) cost = BigInt(pov.cost)
      calls = (pov?.nodes ?? []).reduce((a, n) => a + n.calls, 0)
    }
  }
  const end = performance.now()
  return {
    tokens,
    text,
    ms: end - start,
    ttftMs: first - start,
    decodeMs: last - first,
    cost,
    calls,
    cpuMs: NaN
  }
}

try {
  const load0 = loadavg()
  say('local chain, contracts')
  await net.start()
  say('models/tiny-en → bundle; governance approves it')
  const conv = await net.povJson<{
    modelId: string
    shards: number
    config: { numLayers: number; numExperts: number }
  }>(['model', 'convert', join(REPO, 'models', 'tiny-en'), join(dir, 'bundle')])
  const modelName = 'tiny-mixtral-demo'
  await net.approveModel({
    modelId: conv.modelId,
    name: modelName,
    layers: conv.config.numLayers,
    experts: conv.config.numExperts,
    shardCount: conv.shards,
    uri: 'file://' + join(dir, 'bundle')
  })
  say("four operators (the demo's layout and prices: every shard on 2 nodes), nodes started")
  const ops: OperatorHandle[] = await net.addDemoOperators(conv.modelId)
  await Promise.all(
    ops.map(async (op) => {
      const prof = PROF != null ? join(PROF, op.name) : null
      if (prof != null) mkdirSync(prof, { recursive: true })
      await net.startNode(op, join(dir, 'bundle'), {
        args: words(args['node-args']),
        ...(prof != null ? { wrap: ['env', `NODE_OPTIONS=--cpu-prof --cpu-prof-dir=${prof}`] } : {})
      })
    })
  )
  say('two gateways: speculative (default) and --no-speculative, each with its own deposit')
  const [spec, plain] = await Promise.all([
    gateway('spec', []),
    gateway('plain', ['--no-speculative'])
  ])
  const [specUrl, plainUrl] = [spec.url, plain.url]
  const gatewayPids = { spec: spec.pid, plain: plain.pid }
  const clients = {
    spec: new OpenAI({ baseURL: `${specUrl}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }),
    plain: new OpenAI({ baseURL: `${plainUrl}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 })
  }
  // the demo's prompt, then the first words of held-out paragraphs
  const held = readFileSync(join(REPO, 'models', 'tiny-en', 'heldout.txt'), 'utf8')
    .split('\n')
    .filter((p) => p.split(/\s+/).length > 12)
    .map((p) => p.split(/\s+/).slice(0, 8).join(' '))
  const prompts = ['She was', ...held].slice(0, PROMPTS)
  say('warm-up: one request per gateway (connections, latency estimates, adaptive k)')
  for (const c of Object.values(clients)) await complete(c, modelName, prompts[0])

  const fig = (s: Sample[]): Record<string, number> => {
    const tokens = s.reduce((a, x) => a + x.tokens, 0)
    return {
      requests: s.length,
      tokens,
      tokensPerS: (tokens / s.reduce((a, x) => a + x.ms, 0)) * 1000,
      tokensPerSP50: median(s.map((x) => (x.tokens / x.ms) * 1000)),
      decodeTokensPerS:
        (s.reduce((a, x) => a + x.tokens - 1, 0) / s.reduce((a, x) => a + x.decodeMs, 0)) * 1000,
      ttftMsP50: median(s.map((x) => x.ttftMs)),
      costPerToken: Number(s.reduce((a, x) => a + x.cost, 0n)) / 1e18 / tokens,
      callsPerToken: s.reduce((a, x) => a + x.calls, 0) / tokens,
      // all the CPU a token took on this machine: on loopback the cores are the bottleneck
      cpuMsPerToken: s.reduce((a, x) => a + x.cpuMs, 0) / tokens
    }
  }
  const byTemperature: Array<Record<string, unknown>> = []
  /** The greedy requests' window on the profiles' clock (µs), and the calls made in it. */
  const greedyWindow = { from: NaN, to: NaN, calls: { spec: 0, plain: 0 } }
  const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)
  for (const temperature of TEMPERATURES) {
    if (temperature === 0) greedyWindow.from = nowUs()
    say(`temperature ${temperature}${temperature > 0 ? `, top-p ${TOP_P}, seed 1` : ''}`)
    const samples = { spec: [] as Sample[], plain: [] as Sample[] }
    let same = 0
    let pairs = 0
    for (let r = 0; r < REPS; r++)
      for (const [i, prompt] of prompts.entries()) {
        const order: Array<'spec' | 'plain'> =
          (r + i) % 2 === 0 ? ['plain', 'spec'] : ['spec', 'plain']
        const got: Partial<Record<'spec' | 'plain', Sample>> = {}
        for (const w of order) {
          const pids = [gatewayPids[w], ...ops.map((o) => o.proc?.pid)]
          const cpu = (): number => pids.reduce((a: number, p) => a + cpuMs(p), 0)
          const cpu0 = cpu()
          const s = await complete(clients[w], modelName, prompt, temperature)
          s.cpuMs = cpu() - cpu0
          got[w] = s
          samples[w].push(s)
        }
        pairs++
        if (got.spec!.text === got.plain!.text) same++
        say(
          `  ${JSON.stringify(prompt.slice(0, 30))}: plain ${((got.plain!.tokens / got.plain!.ms) * 1000).toFixed(1)} tok/s, speculative ${((got.spec!.tokens / got.spec!.ms) * 1000).toFixed(1)} tok/s${temperature > 0 || got.spec!.text === got.plain!.text ? '' : ' — TEXT DIFFERS'}`
        )
      }
    if (temperature === 0) {
      greedyWindow.to = nowUs()
      for (const w of ['spec', 'plain'] as const)
        greedyWindow.calls[w] = samples[w].reduce((a, x) => a + x.calls, 0)
    }
    const plain = fig(samples.plain)
    const spec = fig(samples.spec)
    const pairRatios = samples.spec.map(
      (s, i) => s.tokens / s.ms / (samples.plain[i].tokens / samples.plain[i].ms)
    )
    byTemperature.push({
      temperature,
      ...(temperature > 0 ? { topP: TOP_P } : {}),
      plain,
      speculative: spec,
      tokensPerSVsPlain: spec.tokensPerS / plain.tokensPerS,
      tokensPerSVsPlainMedianPair: median(pairRatios),
      decodeTokensPerSVsPlain: spec.decodeTokensPerS / plain.decodeTokensPerS,
      costPerTokenVsPlain: spec.costPerToken / plain.costPerToken,
      // greedy only: sampled texts differ (speculative sampling draws other numbers)
      ...(temperature > 0 ? {} : { sameText: `${same}/${pairs}` })
    })
  }

  // what a round costs on this network: `pov infer --json` (the same paying router, speculative
  // and not) reports its decode rounds, so ms per round and tokens per round are measured there
  say('pov infer --json, speculative and --no-speculative: ms per round, tokens per round')
  // its own payer: a gateway's lanes are the gateway's
  const inferClient = await net.addClient('infer', { deposit: '20' })
  const perRound = {
    spec: { ms: 0, rounds: 0, tokens: 0, drafted: 0, accepted: 0 },
    plain: { ms: 0, rounds: 0, tokens: 0, drafted: 0, accepted: 0 }
  }
  for (const prompt of prompts.slice(0, 3))
    for (const w of ['plain', 'spec'] as const) {
      const inf = await net.povJson<{
        tokens: number[]
        timings: { decodeMs: number; rounds: number; draftedTokens: number; acceptedTokens: number }
      }>([
        'infer',
        '--model',
        conv.modelId,
        '--bundle',
        join(dir, 'bundle'),
        '--max-tokens',
        String(TOKENS),
        '--ignore-eos',
        ...(w === 'plain' ? ['--no-speculative'] : []),
        ...net.chainFlags(inferClient.keystore, inferClient.dir),
        prompt
      ])
      const f = perRound[w]
      f.ms += inf.timings.decodeMs
      f.rounds += inf.timings.rounds
      f.tokens += inf.tokens.length - 1
      f.drafted += inf.timings.draftedTokens
      f.accepted += inf.timings.acceptedTokens
    }
  const round = {
    plainMsPerRound: perRound.plain.ms / perRound.plain.rounds,
    specMsPerRound: perRound.spec.ms / perRound.spec.rounds,
    specTokensPerRound: perRound.spec.tokens / perRound.spec.rounds,
    specDraftedPerRound: perRound.spec.drafted / perRound.spec.rounds,
    specAcceptance: perRound.spec.accepted / Math.max(1, perRound.spec.drafted),
    decodeTokensPerSVsPlain:
      perRound.spec.tokens / perRound.spec.ms / (perRound.plain.tokens / perRound.plain.ms)
  }
  const load1 = loadavg()

  // the profiles are written when the processes exit
  const profiles: Record<string, Record<string, number>> = {}
  if (PROF != null) {
    await stopGateways()
    for (const op of ops) await net.stopNode(op)
    const calls = greedyWindow.calls.spec + greedyWindow.calls.plain
    for (const name of ['spec', 'plain', ...ops.map((o) => o.name)]) {
      const d = join(PROF, name)
      const files = readdirSync(d).filter((f) => f.endsWith('.cpuprofile'))
      if (files.length !== 1) throw new Error(`${d}: expected one profile, found ${files.length}`)
      // a gateway's own calls; a node serves both gateways' calls, a share of them each
      const n = name === 'spec' || name === 'plain' ? greedyWindow.calls[name] : undefined
      const s = summarize(readProfile(join(d, files[0])), greedyWindow.from, greedyWindow.to)
      console.log(
        formatSummary(
          `${name} (greedy requests; ${n ?? calls} calls ${n != null ? 'made' : 'made to all nodes'})`,
          s,
          n
        )
      )
      console.log('')
      profiles[name] = Object.fromEntries([
        ['busyMs', s.busyMs],
        ...s.concerns.map((c) => [c.name, c.ms])
      ])
    }
  }

  const greedy = byTemperature.find((t) => t.temperature === 0) ?? byTemperature[0]
  const json = {
    network: "local chain; 4 paid nodes on loopback, every shard on 2 (the demo's)",
    model: 'models/tiny-en',
    maxTokens: TOKENS,
    prompts: prompts.length,
    reps: REPS,
    tokensPerSVsPlain: greedy.tokensPerSVsPlain,
    byTemperature,
    inferRounds: round,
    target: 1.5,
    loadavgStart: load0,
    loadavgEnd: load1,
    ...(PROF != null ? { profileMs: profiles, profileCalls: greedyWindow.calls } : {}),
    wallS: (Date.now() - t0) / 1000
  }
  const x = (v: number, d = 2): string => v.toFixed(d)
  console.log(
    `gateway single stream, ${prompts.length} prompts × ${REPS}, ${TOKENS} tokens (load average ${x(load0[0])} → ${x(load1[0])})`
  )
  console.log('')
  console.log(
    '| temperature | gateway | tokens/s (end to end) | p50 per request | decode tokens/s | TTFT p50 | POV per token |'
  )
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const t of byTemperature)
    for (const [name, f] of [
      ['--no-speculative', t.plain],
      ['speculative', t.speculative]
    ] as Array<[string, Record<string, number>]>)
      console.log(
        `| ${String(t.temperature)} | ${name} | ${x(f.tokensPerS, 1)} | ${x(f.tokensPerSP50, 1)} | ${x(f.decodeTokensPerS, 1)} | ${x(f.ttftMsP50, 0)} ms | ${f.costPerToken.toExponential(3)} |`
      )
  console.log('')
  for (const t of byTemperature) {
    const [p, sp] = [t.plain, t.speculative] as Array<Record<string, number>>
    console.log(
      `temperature ${String(t.temperature)}: expert calls per token ${x(p.callsPerToken)} plain, ${x(sp.callsPerToken)} speculative; CPU per token (gateway + nodes) ${x(p.cpuMsPerToken, 1)} ms plain, ${x(sp.cpuMsPerToken, 1)} ms speculative`
    )
  }
  for (const t of byTemperature)
    console.log(
      `temperature ${String(t.temperature)}: speculative / plain tokens/s ${x(t.tokensPerSVsPlain as number)} × (median pair ${x(t.tokensPerSVsPlainMedianPair as number)}; target ≥ 1.5), decode ${x(t.decodeTokensPerSVsPlain as number)} ×, cost per token ${x(t.costPerTokenVsPlain as number)} ×${t.sameText != null ? `; same text ${String(t.sameText)}` : ''}`
    )
  console.log(
    `pov infer on this network, temperature 0: a plain round ${x(round.plainMsPerRound, 1)} ms, a speculative round ${x(round.specMsPerRound, 1)} ms for ${x(round.specTokensPerRound)} tokens (${x(round.specDraftedPerRound)} drafted, acceptance ${x(round.specAcceptance)}): decode ${x(round.decodeTokensPerSVsPlain)} × plain`
  )
  console.log(JSON.stringify(json))
} finally {
  await shutdown()
}
