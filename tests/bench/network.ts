// npm run bench:network — the network in the wild, measured against its physical floor.
// A local chain; --nodes paid nodes (default 12), each serving 2 of the 8 shards (every shard on
// 3 nodes), each reachable only through its own delay link (one-way 5–60 ms drawn per node,
// seeded, plus jitter); paying clients that follow the registry, choose replicas by measured
// latency and hedge after the p95. Runs:
//   1. C = 1, 2, 4, 8 concurrent clients, --gens greedy generations each: TTFT, per-token
//      latency, aggregate tokens/s, every generation compared with the single-process run;
//   2. churn, with the most clients: a third of the nodes SIGKILLed and restarted one after the
//      other, one node unbonding and a new one registering, while the clients keep generating.
// The floor of a decode token is the sum over layers of the largest round trip among the
// replicas that answered that layer's calls (the k experts of a layer are called in parallel).
// Targets: ≥ 99.9 % exact completions under churn; decode per-token p50 ≤ 1.25 × floor;
// 8-client aggregate ≥ 5 × one client. Writes an SVG (per-token latency vs floor, throughput vs
// clients). The last line of output is one JSON object with every figure.
import { readFileSync } from 'node:fs'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { SimNetwork, CallLog, timedGeneration, type GenerationRecord } from '../sim/network.js'
import type { Lateness } from '../sim/links.js'
import { percentile } from '../../router/latency.js'
import { seededRandom } from '../../model/sampling.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import { openDraft } from '../../model/draft/index.js'
import type { PaidRouter } from '../../router/paid.js'
import type { DenseRuntime } from '../../model/dense/index.js'
import { plotSvg } from './network-plot.js'
import { NgramDraft } from '../../model/draft/ngram.js'
import type { Draft } from '../../model/draft.js'
import { DraftLength, type SpeculativeOptions } from '../../model/speculative.js'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '12' },
    clients: { type: 'string', default: '1,2,4,8' },
    gens: { type: 'string', default: '3' },
    /** Generated tokens per generation. @default 12 on the random model, 48 on a checkpoint (the
     *  length bench:draft measures drafts at: a shorter reply gives a draft less to go on). */
    tokens: { type: 'string' },
    layers: { type: 'string', default: '4' },
    /** 'random' (a seeded random tiny model, --layers) or a checkpoint directory such as
     *  models/tiny-en (its trained draft is used by the speculative runs; prompts from its
     *  heldout.txt). */
    model: { type: 'string', default: 'random' },
    seed: { type: 'string', default: '1' },
    svg: { type: 'string', default: 'bench-out/network.svg' },
    'no-churn': { type: 'boolean', default: false },
    /** Skip the speculative-decoding runs (1 and the most clients, n-gram draft; a bad draft). */
    'no-speculative': { type: 'boolean', default: false },
    /** Kill/restart cycles in the churn run: more generations under churn (~130 per cycle at 8 clients). */
    'churn-rounds': { type: 'string', default: '1' }
  }
})
const NODES = Number(args.nodes)
const CLIENTS = args.clients.split(',').map(Number)
const GENS = Number(args.gens)
const TOKENS = Number(args.tokens ?? (args.model === 'random' ? 12 : 48))
const MAX_C = Math.max(...CLIENTS)
/** Greedy tokens are comparable only when no step is a near-tie (see the generate oracle test). */
const MIN_MARGIN = 1e-3

const t0 = Date.now()
const say = (s: string): void => {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`)
}

/** Failed attempts (not aborted hedge losers) by message, across all clients. */
const failures = new Map<string, number>()
const onAttempt = (a: { ok: boolean; error?: string }): void => {
  if (!a.ok) failures.set(a.error ?? '?', (failures.get(a.error ?? '?') ?? 0) + 1)
}

interface Client {
  paid: PaidRouter
  log: CallLog
  prompt: number[]
  reference: number[]
}

interface RunFigures {
  clients: number
  generations: number
  ok: number
  exact: number
  tokens: number
  wallS: number
  tokensPerS: number
  ttftP50: number
  ttftP99: number
  tokenP50: number
  tokenP99: number
  floorP50: number
  /** Per decode token, p50: Σ over layers of the longest call as the router timed it. */
  callP50: number
  /** Per decode token, p50: the rest — the router's own work between calls (dense layers, gate, combine). */
  localP50: number
  /** Per decode token, p50: calls − floor — what links, wire and nodes add above the drawn RTTs. */
  excessP50: number
  /** Per decode token, p50: the floor had every call gone to its closest live replica. */
  bestFloorP50: number
  /** Median over decode tokens of latency / floor. */
  ratioP50: number
  /** Median over decode tokens of latency / the closest-replica floor. */
  ratioBestP50: number
  /** Decode rounds (speculative decoding: one per target pass), drafted and accepted tokens, and
   *  draft time, all generations. */
  rounds: number
  draftedTokens: number
  acceptedTokens: number
  draftMs: number
  /** Work units paid per generated token (prefill included), when measured. */
  unitsPerToken?: number
  hedgedCalls: number
  retriedCalls: number
  calls: number
  /** How late the delay links delivered chunks against their drawn delays (the simulation's own error). */
  linkLateness?: Lateness
  /** CPU time spent during the run, by process group, and the machine's busy share. */
  cpu?: CpuFigures
}

interface CpuFigures {
  /** CPU seconds: the bench process (every client's router and dense layers), the nodes, the chain, the links. */
  routersS: number
  nodesS: number
  chainS: number
  linksS: number
  /** Of all of them, per generated token, ms. */
  msPerToken: number
  /** The machine's busy share over the run (both cores, everyone's processes), 0–1. */
  machineBusy: number
  /** This bench's processes' share of the machine's capacity, 0–1. */
  ours: number
  loadAvg: number
}

const dir = await mkdtemp(join(tmpdir(), 'pov-bench-network-'))
let sim: SimNetwork | undefined
const clients: Client[] = []
let dense: DenseRuntime | undefined
process.on('exit', () => sim?.net.killAll())
try {
  say(`starting ${NODES} nodes behind delay links (chain, model approval, registrations)`)
  sim = await SimNetwork.start({
    dir,
    nodes: NODES,
    shardsPerNode: 2,
    model:
      args.model === 'random'
        ? { seed: 7, layers: Number(args.layers), experts: 8 }
        : { checkpoint: resolve(args.model) },
    seed: Number(args.seed),
    delayMs: [5, 60],
    jitterMs: 2,
    // every process shares these cores: one ORT thread per node, no idle spinning
    nodeArgs: ['--threads', '1', '--no-spin']
  })
  const s = sim
  for (const n of s.nodes)
    say(
      `  node${n.index} shards ${n.shards.join(',')}: one-way ${n.delayMs} ms (RTT ${s.rttOf(n.op.peerId)} ms)`
    )
  dense = await s.dense()
  const d = dense
  say(`${MAX_C} clients: funding, deposits, routers that follow the registry`)
  // a trained model gets prompts of real text (its held-out text, 8 tokens each)
  const textPrompts =
    args.model === 'random'
      ? null
      : await (async () => {
          const tok = await loadTokenizer(s.bundle.dir)
          const ids = tok.encode(readFileSync(join(resolve(args.model), 'heldout.txt'), 'utf8'))
          return Array.from({ length: MAX_C }, (_, i) => ids.slice(i * 200, i * 200 + 8))
        })()
  for (let i = 0; i < MAX_C; i++) {
    const prompt = textPrompts?.[i] ?? [1, 2, 3 + i]
    const ref = await s.reference(d, prompt, TOKENS)
    if (ref.minMargin < MIN_MARGIN)
      say(
        `  warning: prompt ${prompt.join(',')} has a near-tie (margin ${ref.minMargin}); its comparison may fail for numeric reasons`
      )
    const log = new CallLog()
    const paid = await s.router(await s.client('200'), {
      onCall: log.onCall,
      onAttempt: (a) => {
        onAttempt(a)
        log.onAttempt(a)
      }
    })
    clients.push({ paid, log, prompt, reference: ref.tokens })
  }
  const gen = async (c: Client, speculative?: SpeculativeOptions): Promise<GenerationRecord> =>
    await timedGeneration({
      dense: d,
      experts: c.paid.router.executor,
      log: c.log,
      rttOf: (p) => s.rttOf(p),
      bestRttOf: (l, e) => s.bestRtt(l, e),
      promptIds: c.prompt,
      maxTokens: TOKENS,
      reference: c.reference,
      ...(speculative != null ? { speculative } : {})
    })
  /** Work units paid so far by the first `C` clients (a row through one expert = 1 unit). */
  const unitsPaid = (C: number): number =>
    clients
      .slice(0, C)
      .reduce((a, c) => a + [...c.paid.payer.spent().values()].reduce((b, x) => b + x.units, 0), 0)
  /** C clients × GENS generations, all at once. */
  const run = async (
    C: number,
    speculative?: (c: Client) => SpeculativeOptions
  ): Promise<RunFigures & { records: GenerationRecord[] }> => {
    await s.links.lateness() // from here on
    const cpu0 = cpuSample(s)
    const units0 = unitsPaid(C)
    const start = performance.now()
    const recs = (
      await Promise.all(
        clients.slice(0, C).map(async (c) => {
          const out: GenerationRecord[] = []
          for (let g = 0; g < GENS; g++) out.push(await gen(c, speculative?.(c)))
          return out
        })
      )
    ).flat()
    const f = figures(C, recs, (performance.now() - start) / 1000)
    return {
      ...f,
      unitsPerToken: (unitsPaid(C) - units0) / f.tokens,
      linkLateness: await s.links.lateness(),
      cpu: cpuFigures(cpu0, cpuSample(s), f),
      records: recs
    }
  }
  say('warm-up: one generation per client (connections, latency estimates)')
  await Promise.all(clients.map(async (c) => await gen(c)))

  const runs: Array<RunFigures & { records: GenerationRecord[] }> = []
  for (const C of CLIENTS) {
    say(`run: ${C} client(s) × ${GENS} generations of ${TOKENS} tokens`)
    runs.push(await run(C))
  }

  // speculative decoding (model/speculative.ts) on the same prompts: the n-gram draft (the
  // random tiny model has no trained draft) with adaptive k, at 1 and at the most clients; and
  // a deliberately bad draft (random tokens) at 1 client, which adaptive k must make harmless
  const specRuns: Array<RunFigures & { records: GenerationRecord[]; draft: string }> = []
  if (!args['no-speculative']) {
    // the bundle's draft (openDraft: a trained one when the bundle carries it, else n-gram), one
    // per client (a model draft keeps a KV cache; a client's generations run one after another)
    const drafts = new Map<Client, Draft>()
    for (const c of clients) drafts.set(c, await openDraft(s.bundle.dir))
    const draftName = drafts.get(clients[0])?.name ?? 'ngram'
    // each client keeps its adaptive k's measurements from one generation to the next, as a
    // gateway does per model (SpeculativeOptions.length); a run starts from a fresh one
    const lengthsOf = (): ((c: Client) => DraftLength) => {
      const m = new Map<Client, DraftLength>()
      return (c) => m.get(c) ?? m.set(c, new DraftLength()).get(c)!
    }
    for (const C of [...new Set([1, MAX_C])]) {
      say(`speculative run: ${C} client(s), draft ${draftName}, adaptive k`)
      const length = lengthsOf()
      specRuns.push({
        ...(await run(C, (c) => ({
          draft: drafts.get(c) ?? new NgramDraft(),
          length: length(c)
        }))),
        draft: draftName
      })
    }
    say('speculative run: 1 client, a bad draft (random tokens), adaptive k')
    const rnd = seededRandom(99)
    const bad: Draft = {
      name: 'random',
      async propose(_context, k) {
        const tokens = Array.from({ length: k }, () => Math.floor(rnd() * d.config.vocabSize))
        return { tokens, q: tokens.map(() => null) }
      }
    }
    const badLength = lengthsOf()
    specRuns.push({
      ...(await run(1, (c) => ({ draft: bad, length: badLength(c) }))),
      draft: 'random'
    })
  }

  // what the first client's router believes of each node after the runs (before churn), beside
  // the link's drawn round trip
  const view = clients[0].paid.router.executor.latency.forChoice(
    s.nodes.map((n) => n.op.peerId),
    1
  )
  const beliefs = s.nodes.map((n) => ({
    node: n.index,
    rttMs: s.rttOf(n.op.peerId),
    expectedMs: view.expected.get(n.op.peerId) ?? null,
    perCallMs: view.perCall.get(n.op.peerId) ?? null
  }))

  let churn:
    | (RunFigures & {
        kills: number
        restarts: number
        unbonded: number
        joined: number
        errors: string[]
      })
    | null = null
  if (!args['no-churn']) {
    const victims = pickVictims(s, Math.floor(NODES / 3))
    say(
      `churn: ${MAX_C} clients generate while ${victims.length} nodes are SIGKILLed and restarted, one unbonds, one joins`
    )
    let stop = false
    const start = performance.now()
    const loops = clients.map(async (c) => {
      const out: GenerationRecord[] = []
      while (!stop) out.push(await gen(c))
      return out
    })
    let kills = 0
    let restarts = 0
    for (let round = 0; round < Number(args['churn-rounds']); round++)
      for (const v of victims) {
        say(`  SIGKILL node${v.index} (shards ${v.shards.join(',')})`)
        await s.kill(v)
        kills++
        await sleep(2000)
        await s.startNode(v)
        restarts++
        say(`  node${v.index} restarted`)
      }
    const leaving = s.nodes.find((n) => n.state === 'up' && !victims.includes(n)) ?? s.nodes[0]
    say(`  node${leaving.index} unbonds; a new node registers the same shards`)
    const joined = await s.addNode(leaving.shards)
    await s.unbond(leaving)
    await sleep(8000) // generations run on the new table
    stop = true
    const recs = (await Promise.all(loops)).flat()
    churn = {
      ...figures(MAX_C, recs, (performance.now() - start) / 1000),
      kills,
      restarts,
      unbonded: 1,
      joined: joined != null ? 1 : 0,
      errors: recs
        .filter((r) => !r.exact)
        .map(
          (r) =>
            (r.error ?? (r.degraded ? 'degraded' : 'tokens differ')) +
            (r.failedAttempts.length > 0
              ? ` (failed attempts: ${r.failedAttempts.slice(0, 4).join('; ')}${r.failedAttempts.length > 4 ? ` … ${r.failedAttempts.length} in all` : ''})`
              : '')
        )
    }
  }

  // ------------------------------------------------------------------ report
  const one = runs.find((r) => r.clients === 1)
  const most = runs.find((r) => r.clients === MAX_C)
  const scaling = one != null && most != null ? most.tokensPerS / one.tokensPerS : NaN
  const hdr = [
    'clients',
    'gens',
    'exact',
    'tok/s',
    'TTFT p50',
    'TTFT p99',
    'tok p50',
    'tok p99',
    'floor p50',
    'calls p50',
    'local p50',
    'ratio p50',
    'hedged',
    'retried'
  ]
  const row = (r: RunFigures, name = String(r.clients)): string[] => [
    name,
    String(r.generations),
    `${r.exact}/${r.generations}`,
    r.tokensPerS.toFixed(1),
    ms(r.ttftP50),
    ms(r.ttftP99),
    ms(r.tokenP50),
    ms(r.tokenP99),
    ms(r.floorP50),
    ms(r.callP50),
    ms(r.localP50),
    r.ratioP50.toFixed(2),
    `${r.hedgedCalls}/${r.calls}`,
    String(r.retriedCalls)
  ]
  const rows = [
    ...runs.map((r) => row(r)),
    ...specRuns.map((r) => row(r, `${r.clients} spec ${r.draft}`)),
    ...(churn != null ? [row(churn, `${MAX_C}+churn`)] : [])
  ]
  const widths = hdr.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  console.log(
    `\nbench:network — ${NODES} nodes (2 shards each, ${(NODES * 2) / 8} replicas per shard), ${args.layers} layers, one-way delays 5–60 ms + jitter`
  )
  console.log(line(hdr))
  for (const r of rows) console.log(line(r))
  console.log(
    `aggregate tokens/s at ${MAX_C} clients / 1 client: ${scaling.toFixed(2)}× (target ≥ 5)`
  )
  const decodeRatio = most?.ratioP50 ?? NaN
  console.log(
    `decode per-token p50 / floor (median over tokens, ${MAX_C} clients): ${(one?.ratioP50 ?? NaN).toFixed(2)} at 1 client, ${decodeRatio.toFixed(2)} at ${MAX_C} (target ≤ 1.25)`
  )
  console.log(
    `per decode token (p50): calls ${ms(one?.callP50 ?? NaN)} (floor ${ms(one?.floorP50 ?? NaN)}, excess ${ms(one?.excessP50 ?? NaN)}), router work between calls ${ms(one?.localP50 ?? NaN)} at 1 client; ${ms(most?.callP50 ?? NaN)} (excess ${ms(most?.excessP50 ?? NaN)}), ${ms(most?.localP50 ?? NaN)} at ${MAX_C}`
  )
  console.log(
    `replica choice: floor p50 ${runs.map((r) => `${r.clients}: ${ms(r.floorP50)} (closest replicas ${ms(r.bestFloorP50)})`).join(', ')}`
  )
  console.log(
    `client 0's view of the nodes (drawn RTT → expected call ms): ${beliefs.map((b) => `node${b.node} ${b.rttMs} → ${b.expectedMs?.toFixed(0) ?? '?'}`).join(', ')}`
  )
  console.log(
    'CPU (s: routers+dense in this process / nodes / chain / links; per token; machine busy; this bench; load):'
  )
  for (const r of runs)
    if (r.cpu != null)
      console.log(
        `  ${r.clients} client(s): ${r.cpu.routersS.toFixed(1)} / ${r.cpu.nodesS.toFixed(1)} / ${r.cpu.chainS.toFixed(1)} / ${r.cpu.linksS.toFixed(1)} s; ${r.cpu.msPerToken.toFixed(0)} ms CPU per token; machine ${pct(r.cpu.machineBusy)} busy, this bench ${pct(r.cpu.ours)} of ${cpus().length} cores; load ${r.cpu.loadAvg.toFixed(1)}`
      )
  console.log(
    `delay links, chunk delivery minus drawn delay (p50 / p99 / max): ${runs.map((r) => `${r.clients}: ${late(r.linkLateness)}`).join(', ')}`
  )
  if (failures.size > 0)
    console.log(`failed attempts: ${[...failures].map(([m, n]) => `${n} × ${m}`).join(' | ')}`)
  if (churn != null)
    console.log(
      `churn: ${churn.exact}/${churn.generations} generations exact (${pct(churn.exact / churn.generations)}; target ≥ 99.9 %) while a third of the ${NODES} nodes were SIGKILLed and restarted (${churn.kills} kills), 1 unbonded, 1 joined${churn.errors.length > 0 ? `; failures: ${[...new Set(churn.errors)].join(' | ')}` : ''}`
    )
  // speculative decoding against plain decoding on the same prompts and network
  const plainAt = (C: number): (typeof runs)[number] | undefined =>
    runs.find((r) => r.clients === C)
  const specAt = (C: number, bad = false): (typeof specRuns)[number] | undefined =>
    specRuns.find((r) => r.clients === C && (r.draft === 'random') === bad)
  const decodeTokens = (r: RunFigures): number => r.rounds + r.acceptedTokens
  const speculative =
    specRuns.length === 0
      ? null
      : (() => {
          const s1 = specAt(1)
          const s8 = specAt(MAX_C)
          const bad = specAt(1, true)
          const p1 = plainAt(1)
          const p8 = plainAt(MAX_C)
          const ngram = specRuns.filter((r) => r.draft !== 'random')
          const sum = (f: (r: RunFigures) => number, rs = ngram): number =>
            rs.reduce((a, r) => a + f(r), 0)
          const ratio = (a?: number, b?: number): number | null =>
            a != null && b != null && b > 0 ? a / b : null
          return {
            draft: s1?.draft ?? s8?.draft ?? null,
            clientsMost: MAX_C,
            ratioClosestFloorP50OneClient: s1?.ratioBestP50 ?? null,
            ratioClosestFloorP50EightClients: s8?.ratioBestP50 ?? null,
            plainRatioClosestFloorP50OneClient: p1?.ratioBestP50 ?? null,
            plainRatioClosestFloorP50EightClients: p8?.ratioBestP50 ?? null,
            exactT0: sum((r) => r.exact, specRuns) / sum((r) => r.generations, specRuns),
            exactT0Generations: `${sum((r) => r.exact, specRuns)}/${sum((r) => r.generations, specRuns)}`,
            acceptanceRate:
              sum((r) => r.acceptedTokens) /
              Math.max(
                1,
                sum((r) => r.draftedTokens)
              ),
            meanTokensPerRound:
              sum(decodeTokens) /
              Math.max(
                1,
                sum((r) => r.rounds)
              ),
            meanDraftedPerRoundOneClient: s1 != null ? s1.draftedTokens / s1.rounds : null,
            meanDraftedPerRoundEightClients: s8 != null ? s8.draftedTokens / s8.rounds : null,
            draftMsPerRound:
              sum((r) => r.draftMs) /
              Math.max(
                1,
                sum((r) => r.rounds)
              ),
            costPerTokenVsPlain: ratio(
              sum((r) => (r.unitsPerToken ?? NaN) * r.tokens) / sum((r) => r.tokens),
              [p1, p8].reduce((a, r) => a + (r?.unitsPerToken ?? NaN) * (r?.tokens ?? 0), 0) /
                [p1, p8].reduce((a, r) => a + (r?.tokens ?? 0), 0)
            ),
            tokenP50VsPlainOneClient: ratio(s1?.tokenP50, p1?.tokenP50),
            tokensPerS8VsPlain: ratio(s8?.tokensPerS, p8?.tokensPerS),
            badDraft:
              bad != null && p1 != null
                ? {
                    acceptanceRate: bad.acceptedTokens / Math.max(1, bad.draftedTokens),
                    meanDraftedPerRound: bad.draftedTokens / bad.rounds,
                    tokenP50VsPlain: ratio(bad.tokenP50, p1.tokenP50),
                    tokensPerSVsPlain: ratio(bad.tokensPerS, p1.tokensPerS),
                    costPerTokenVsPlain: ratio(bad.unitsPerToken, p1.unitsPerToken),
                    exact: `${bad.exact}/${bad.generations}`
                  }
                : null
          }
        })()
  if (speculative != null) {
    const x = (v: number | null | undefined, d = 2): string =>
      v != null && Number.isFinite(v) ? v.toFixed(d) : '—'
    console.log(
      `speculative (draft ${speculative.draft}, adaptive k): per accepted token p50 / closest-replica floor ${x(speculative.ratioClosestFloorP50OneClient)} at 1 client (plain ${x(speculative.plainRatioClosestFloorP50OneClient)}; target ≤ 0.5), ${x(speculative.ratioClosestFloorP50EightClients)} at ${MAX_C} (plain ${x(speculative.plainRatioClosestFloorP50EightClients)}); exact ${speculative.exactT0Generations}`
    )
    console.log(
      `  acceptance ${x(speculative.acceptanceRate)}, ${x(speculative.meanTokensPerRound)} tokens per round, drafted per round ${x(speculative.meanDraftedPerRoundOneClient)} at 1 client / ${x(speculative.meanDraftedPerRoundEightClients)} at ${MAX_C}, draft ${x(speculative.draftMsPerRound, 3)} ms per round; cost per token ${x(speculative.costPerTokenVsPlain)} × plain (target ≤ 1.5); ${MAX_C}-client tokens/s ${x(speculative.tokensPerS8VsPlain)} × plain (target ≥ 1)`
    )
    const b = speculative.badDraft
    if (b != null)
      console.log(
        `  bad draft (random tokens): acceptance ${x(b.acceptanceRate)}, ${x(b.meanDraftedPerRound)} drafted per round; per-token p50 ${x(b.tokenP50VsPlain)} × plain, tokens/s ${x(b.tokensPerSVsPlain)} × plain, cost ${x(b.costPerTokenVsPlain)} × plain; exact ${b.exact}`
      )
  }
  const svgPath = resolve(args.svg)
  await mkdir(dirname(svgPath), { recursive: true })
  await writeFile(
    svgPath,
    plotSvg({
      tokens: runs.flatMap((r) =>
        r.records.flatMap((g) =>
          g.tokenMs.map((t, i) => ({ clients: r.clients, ms: t, floor: g.floorMs[i] }))
        )
      ),
      throughput: runs.map((r) => ({ clients: r.clients, tokensPerS: r.tokensPerS }))
    })
  )
  console.log(`plot: ${svgPath}`)
  const strip = ({ records: _r, ...f }: RunFigures & { records: GenerationRecord[] }): RunFigures =>
    f
  console.log(
    JSON.stringify({
      bench: 'network',
      nodes: NODES,
      layers: Number(args.layers),
      tokensPerGeneration: TOKENS,
      links: s.nodes.map((n) => ({
        node: n.index,
        shards: n.shards,
        oneWayMs: n.delayMs,
        jitterMs: n.jitterMs
      })),
      runs: runs.map(strip),
      speculativeRuns: specRuns.map(({ records: _r, ...f }) => f),
      speculative,
      churn,
      failedAttempts: Object.fromEntries(failures),
      beliefs,
      scaling8vs1: scaling,
      targets: {
        churnExactRate: churn != null ? churn.exact / churn.generations : null,
        churnExactMet: churn != null ? churn.exact / churn.generations >= 0.999 : null,
        decodeRatioP50: decodeRatio,
        decodeRatioMet: decodeRatio <= 1.25,
        decodeRatioP50OneClient: one?.ratioP50 ?? null,
        scaling,
        scalingMet: scaling >= 5
      },
      svg: svgPath
    })
  )
} finally {
  for (const c of clients) await c.paid.close().catch(() => {})
  await dense?.close()
  await sim?.close()
  await rm(dir, { recursive: true, force: true })
}

function figures(C: number, recs: GenerationRecord[], wallS: number): RunFigures {
  const toks = recs.flatMap((r) => r.tokenMs)
  const floors = recs.flatMap((r) => r.floorMs)
  const ratios = recs.flatMap((r) => r.tokenMs.map((t, i) => t / r.floorMs[i]))
  const calls = recs.flatMap((r) => r.callMs)
  const local = recs.flatMap((r) => r.tokenMs.map((t, i) => t - r.callMs[i]))
  const excess = recs.flatMap((r) => r.callMs.map((c, i) => c - r.floorMs[i]))
  const best = recs.flatMap((r) => r.bestFloorMs)
  const ttft = recs.filter((r) => r.ok).map((r) => r.ttftMs)
  const tokens = recs.reduce((a, r) => a + r.tokens.length, 0)
  return {
    clients: C,
    generations: recs.length,
    ok: recs.filter((r) => r.ok).length,
    exact: recs.filter((r) => r.exact).length,
    tokens,
    wallS,
    tokensPerS: tokens / wallS,
    ttftP50: percentile(ttft, 0.5),
    ttftP99: percentile(ttft, 0.99),
    tokenP50: percentile(toks, 0.5),
    tokenP99: percentile(toks, 0.99),
    floorP50: percentile(floors, 0.5),
    callP50: percentile(calls, 0.5),
    localP50: percentile(local, 0.5),
    excessP50: percentile(excess, 0.5),
    bestFloorP50: percentile(best, 0.5),
    ratioP50: percentile(ratios, 0.5),
    ratioBestP50: percentile(
      recs.flatMap((r) => r.tokenMs.map((t, i) => t / r.bestFloorMs[i])),
      0.5
    ),
    rounds: recs.reduce((a, r) => a + r.rounds, 0),
    draftedTokens: recs.reduce((a, r) => a + r.draftedTokens, 0),
    acceptedTokens: recs.reduce((a, r) => a + r.acceptedTokens, 0),
    draftMs: recs.reduce((a, r) => a + r.draftMs, 0),
    hedgedCalls: recs.reduce((a, r) => a + r.hedged, 0),
    retriedCalls: recs.reduce((a, r) => a + r.retried, 0),
    calls: recs.reduce((a, r) => a + r.calls, 0)
  }
}

/** `n` nodes to restart one after another; restarts are sequential, so every shard keeps a replica. */
function pickVictims(s: SimNetwork, n: number): SimNetwork['nodes'] {
  const out: SimNetwork['nodes'] = []
  const seen = new Set<string>()
  for (const node of s.nodes)
    if (out.length < n && !seen.has(node.shards.join())) {
      out.push(node)
      seen.add(node.shards.join())
    }
  for (const node of s.nodes) if (out.length < n && !out.includes(node)) out.push(node)
  return out
}

async function sleep(msec: number): Promise<void> {
  await new Promise((r) => setTimeout(r, msec))
}
function ms(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(0)} ms` : '—'
}
interface CpuSample {
  t: number
  routers: number
  nodes: number
  chain: number
  links: number
  machine: { busy: number; total: number }
}

/** CPU seconds of a process so far (utime + stime from /proc; 0 once it is gone). */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid == null) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // USER_HZ is 100 on Linux
  } catch {
    return 0
  }
}

function cpuSample(s: SimNetwork): CpuSample {
  const nodePids = new Set(s.nodes.map((n) => n?.op.proc?.pid))
  const sum = (pids: Iterable<number | undefined>): number => {
    let x = 0
    for (const p of pids) x += cpuSecondsOf(p)
    return x
  }
  const cu = process.cpuUsage()
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
  const t = ticks.map(Number)
  const total = t.slice(0, 8).reduce((a, x) => a + x, 0)
  return {
    t: performance.now(),
    routers: (cu.user + cu.system) / 1e6,
    nodes: sum(nodePids),
    chain: sum([...s.net.procs].map((p) => p.pid).filter((p) => !nodePids.has(p))),
    links: cpuSecondsOf(s.links.pid),
    machine: { busy: total - t[3] - t[4], total }
  }
}

function cpuFigures(a: CpuSample, b: CpuSample, f: RunFigures): CpuFigures {
  const wall = (b.t - a.t) / 1000
  const routersS = b.routers - a.routers
  const nodesS = b.nodes - a.nodes
  const chainS = b.chain - a.chain
  const linksS = b.links - a.links
  const all = routersS + nodesS + chainS + linksS
  const cores = cpus().length
  return {
    routersS,
    nodesS,
    chainS,
    linksS,
    msPerToken: (1000 * all) / f.tokens,
    machineBusy: (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total),
    ours: all / (wall * cores),
    loadAvg: loadavg()[0]
  }
}

function late(l: Lateness | undefined): string {
  return l == null || l.chunks === 0
    ? '—'
    : `${l.p50.toFixed(1)} / ${l.p99.toFixed(1)} / ${l.max.toFixed(0)} ms`
}
function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`
}
