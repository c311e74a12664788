// Trust benchmark (docs/trust.md): what spot re-execution costs and what it catches.
//
// 1. Tolerance: ≥ 10,000 honest expert calls, each answered again the ways honest replicas
//    differ — another thread count, inside another batch (other GEMM blocking), fp16 on the wire
//    (both ends), and another implementation (float64 reference; float64 with TF32-rounded
//    inputs and weights, as a GPU's TF32 GEMM computes) — and the distance (router/tolerance.ts)
//    of each pair; beside them, the distance of tampered answers (1 % rescale, 1 % noise, another
//    model's weights). Counts of false accusations and misses at DEFAULT_VERIFY_TOLERANCE.
// 2. Cost: decode and prefill tok/s of a generation through 3 in-process nodes at verify rate
//    0, 2 % and 10 %.
// 3. Detection: P(a cheat is caught within n of its answers), measured with the real SpotChecker
//    over many trials, beside 1 − (1 − p·q)^n.
// 4. Per layout (3 operators; 2 operators + the router's own run as referee, the demo's; 1 +
//    the router), the cheat's answers until its conviction, with the real SpotChecker.
// 5. What the router's checks cost per call: the signature and echo check before use (Ed25519
//    verify and two SHA-256, by tensor size), and loading one expert on demand as referee.
// Last line: one JSON object with every figure.
//
//   npm run bench:verify [-- --calls 10000 --trials 2000 --parts 1,2,3,4,5]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { writeTinyCheckpoint, type TinyOptions } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadExpertRuntime } from '../../model/runtime/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadReferenceModel, referenceExpertExecutor } from '../../model/reference.js'
import { generate } from '../../model/generate.js'
import { seededRandom } from '../../model/sampling.js'
import { DType } from '../../protocol/expert.js'
import { decodeTensor, encodeTensor } from '../../protocol/codec.js'
import { transportOptions } from '../../protocol/transport.js'
import { expertService, type ExpertService } from '../../node/expert-service.js'
import { Router } from '../../router/router.js'
import { SpotChecker, type SignedAnswer, type SpotCheckCall } from '../../router/spot-check.js'
import { Reputation } from '../../router/reputation.js'
import { DEFAULT_VERIFY_TOLERANCE, outputDistance } from '../../router/tolerance.js'

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const CALLS = arg('calls', 10_000)
const REF_CALLS = arg('ref-calls', 600)
const TRIALS = arg('trials', 2000)
const ROUNDS = arg('rounds', 5)
const PARTS = new Set(
  (process.argv.includes('--parts')
    ? process.argv[process.argv.indexOf('--parts') + 1]
    : '1,2,3,4,5'
  )
    .split(',')
    .map(Number)
)
const TOL = DEFAULT_VERIFY_TOLERANCE
const log = (s: string): void => {
  process.stderr.write(s + '\n')
}

/** Round to TF32 (10 explicit mantissa bits, round to nearest even), as a TF32 GEMM reads its inputs. */
function tf32(v: number): number {
  const f = new Float32Array([v])
  const u = new Uint32Array(f.buffer)
  const lsb = (u[0] >>> 13) & 1
  u[0] = (u[0] + 0xfff + lsb) & ~0x1fff
  return f[0]
}
const fp16 = (y: Float32Array): Float32Array =>
  decodeTensor(encodeTensor(y, DType.FP16), DType.FP16)

interface Stat {
  n: number
  max: number
  min: number
  over: number
}
const stat = (): Stat => ({ n: 0, max: 0, min: Infinity, over: 0 })
function add(s: Stat, d: number): void {
  s.n++
  s.max = Math.max(s.max, d)
  s.min = Math.min(s.min, d)
  if (d > TOL) s.over++
}

async function bundleOf(dir: string, name: string, o: TinyOptions): Promise<Bundle> {
  await writeTinyCheckpoint(join(dir, `hf-${name}`), o)
  await convertCheckpoint(join(dir, `hf-${name}`), join(dir, name), { quant: 'none' })
  return await loadBundle(join(dir, name), { verify: 'none' })
}

/** Part 1 at one model size. */
async function tolerance(
  dir: string,
  name: string,
  size: TinyOptions,
  calls: number
): Promise<Record<string, Stat>> {
  const b = await bundleOf(dir, name, { ...size, seed: 3 })
  const o = await bundleOf(dir, `${name}-other`, { ...size, seed: 4 })
  const all = b.manifest.shards.map((s) => s.id)
  const one = await loadExpertRuntime(b, all, {
    intraOpNumThreads: 1,
    verify: false,
    allowSpinning: false
  })
  const two = await loadExpertRuntime(b, all, {
    intraOpNumThreads: 2,
    verify: false,
    allowSpinning: false
  })
  const otherRt = await loadExpertRuntime(o, all, {
    intraOpNumThreads: 1,
    verify: false,
    allowSpinning: false
  })
  const ref = await loadReferenceModel(join(dir, `hf-${name}`))
  const f64 = referenceExpertExecutor(ref)
  const refTf32 = await loadReferenceModel(join(dir, `hf-${name}`))
  for (const layer of refTf32.layers)
    for (const ex of layer.experts)
      for (const w of [ex.w1, ex.w2, ex.w3]) w.forEach((v, i) => (w[i] = tf32(v)))
  const gpuLike = referenceExpertExecutor(refTf32)
  const H = b.config.hiddenSize
  const L = b.config.numLayers
  const E = b.config.numExperts
  const rnd = seededRandom(99)
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd())
  const s: Record<string, Stat> = {
    threads: stat(),
    batch: stat(),
    fp16Wire: stat(),
    float64: stat(),
    tf32: stat(),
    tf32Fp16Wire: stat(),
    tamperScale1pct: stat(),
    tamperNoise1pct: stat(),
    tamperOtherWeights: stat()
  }
  const t0 = performance.now()
  for (let c = 0; c < calls; c++) {
    const l = c % L
    const e = Math.floor(rnd() * E)
    const rows = [1, 1, 2, 3, 4, 8, 16][Math.floor(rnd() * 7)]
    // hidden states after RMSNorm are O(1) per element; scale varies per row
    const x = new Float32Array(rows * H)
    for (let r = 0; r < rows; r++) {
      const k = 0.2 + 2 * rnd()
      for (let i = 0; i < H; i++) x[r * H + i] = k * gauss()
    }
    const a = await one.runExpert(l, e, x, rows)
    add(s.threads, outputDistance(a, await two.runExpert(l, e, x, rows), H))
    // the same rows at a random place inside a 64-row batch of other rows
    const B = 64
    const at = Math.floor(rnd() * (B - rows + 1))
    const big = new Float32Array(B * H)
    for (let i = 0; i < big.length; i++) big[i] = gauss()
    big.set(x, at * H)
    const yb = (await one.runExpert(l, e, big, B)).subarray(at * H, (at + rows) * H)
    add(s.batch, outputDistance(a, yb, H))
    // fp16 wire: both ends decode the same fp16 input; each encodes its own output in fp16
    const x16 = fp16(x)
    const big16 = big.slice()
    big16.set(x16, at * H)
    const a16 = fp16(await one.runExpert(l, e, x16, rows))
    const b16 = fp16((await two.runExpert(l, e, big16, B)).subarray(at * H, (at + rows) * H))
    add(s.fp16Wire, outputDistance(a16, b16, H))
    if (c < REF_CALLS) {
      add(s.float64, outputDistance(a, await f64.runExpert(l, e, x, rows), H))
      add(s.tf32, outputDistance(a, await gpuLike.runExpert(l, e, x.map(tf32), rows), H))
      // a GPU replica and a CPU one, fp16 on the wire
      add(
        s.tf32Fp16Wire,
        outputDistance(a16, fp16(await gpuLike.runExpert(l, e, x16.map(tf32), rows)), H)
      )
    }
    add(
      s.tamperScale1pct,
      outputDistance(
        a,
        a.map((v) => v * 1.01),
        H
      )
    )
    const noisy = a.slice()
    for (let r = 0; r < rows; r++) {
      let q = 0
      for (let i = r * H; i < (r + 1) * H; i++) q += a[i] * a[i]
      const sd = 0.01 * Math.sqrt(q / H)
      for (let i = r * H; i < (r + 1) * H; i++) noisy[i] += sd * gauss()
    }
    add(s.tamperNoise1pct, outputDistance(a, noisy, H))
    add(s.tamperOtherWeights, outputDistance(a, await otherRt.runExpert(l, e, x, rows), H))
    if (c > 0 && c % 2000 === 0)
      log(`  ${name}: ${c}/${calls} calls (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
  }
  await Promise.all([one.close(), two.close(), otherRt.close()])
  return s
}

type Host = Libp2p<{ expert: ExpertService }>

/** Part 2: a generation through 3 in-process nodes (one operator each) at each verify rate. */
async function cost(
  dir: string
): Promise<Record<string, { prefill: number; decode: number; checks: number }>> {
  const b = await bundleOf(dir, 'cost', { seed: 5 })
  const all = b.manifest.shards.map((s) => s.id)
  const rt = await loadExpertRuntime(b, all, {
    intraOpNumThreads: 1,
    verify: false,
    allowSpinning: false
  })
  const dense = await loadDenseRuntime(b, { device: 'cpu', allowSpinning: false })
  const c = b.config
  const hosts: Host[] = []
  for (let i = 0; i < 3; i++)
    hosts.push(
      (await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        ...transportOptions(),
        services: {
          expert: expertService({
            models: [
              {
                modelId: b.modelId,
                manifestHash: b.modelId,
                hidden: c.hiddenSize,
                numLayers: c.numLayers,
                numExperts: c.numExperts,
                shards: all,
                experts: rt.experts(),
                runtime: rt
              }
            ]
          })
        }
      })) as unknown as Host
    )
  const prompt = Array.from({ length: 48 }, (_, i) => 1 + ((i * 37) % 400))
  const RATES = [0, 0.02, 0.1, 1]
  const runs: Record<string, { prefill: number[]; decode: number[]; checks: number }> = {}
  for (const r of RATES) runs[String(r)] = { prefill: [], decode: [], checks: 0 }
  for (let round = 0; round < ROUNDS; round++)
    for (const rate of round % 2 === 0 ? RATES : [...RATES].reverse()) {
      const checker = new SpotChecker({
        rate,
        modelId: b.modelId,
        reputation: new Reputation(),
        random: seededRandom(round)
      })
      const router = await Router.init({
        opts: {
          peers: hosts.map((h) => h.getMultiaddrs()[0].toString()),
          modelId: b.modelId,
          hidden: c.hiddenSize,
          spotCheck: checker
        }
      })
      try {
        // untimed: opens every node's stream, so the timed run measures steady state
        for await (const _ of generate({
          dense,
          experts: router.executor,
          promptIds: prompt.slice(0, 4),
          maxTokens: 2,
          eosTokenId: null
        }));
        checker.counts.agreed = checker.counts.convicted = checker.counts.undecided = 0
        let t = { prefillTokensPerSecond: 0, decodeTokensPerSecond: 0 }
        const it = generate({
          dense,
          experts: router.executor,
          promptIds: prompt,
          maxTokens: 32,
          eosTokenId: null
        })
        for (;;) {
          const n = await it.next()
          if (n.done === true) {
            t = n.value.timings
            break
          }
        }
        const k = runs[String(rate)]
        k.prefill.push(t.prefillTokensPerSecond)
        k.decode.push(t.decodeTokensPerSecond)
        k.checks += checker.counts.agreed + checker.counts.convicted + checker.counts.undecided
      } finally {
        await router.close()
      }
    }
  await Promise.all(hosts.map(async (h) => await h.stop()))
  await Promise.all([rt.close(), dense.close()])
  const med = (v: number[]): number => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]
  return Object.fromEntries(
    Object.entries(runs).map(([r, v]) => [
      r,
      { prefill: med(v.prefill), decode: med(v.decode), checks: v.checks }
    ])
  )
}

// Parts 3 and 4 simulate answers to one 4-wide expert call: the truth, and a 5 % wrong one.
const SIM_HIDDEN = 4
const truth = new Float32Array([1, 2, 3, 4])
const wrong = truth.map((v) => v * 1.05)
const answer = (peer: string, y: Float32Array): SignedAnswer => ({
  peer,
  requestId: 1n,
  output: new Uint8Array(y.buffer.slice(0)),
  signature: new Uint8Array(64),
  y
})
/** The simulated call (layer 0, expert 0, one row) that 'cheat' answered with `y`. */
const cheatCall = (y: Float32Array, ask: SpotCheckCall['ask']): SpotCheckCall => ({
  layer: 0,
  expert: 0,
  rows: 1,
  hidden: SIM_HIDDEN,
  dtype: DType.FP32,
  input: new Uint8Array(16),
  primary: answer('cheat', y),
  ask
})

/**
 * Part 3: trials of a cheat answering n calls (cheating on a fraction q), the real SpotChecker
 * deciding which to check (an honest replica as second and third opinion); the share of trials
 * in which it was convicted within n answers, beside 1 − (1 − p q)^n.
 */
async function detection(): Promise<
  Array<{ p: number; q: number; n: number; measured: number; formula: number }>
> {
  const NS = [10, 50, 100, 200, 500]
  const out: Array<{ p: number; q: number; n: number; measured: number; formula: number }> = []
  for (const [p, q] of [
    [0.02, 1],
    [0.02, 0.1],
    [0.1, 1],
    [0.1, 0.1]
  ]) {
    const caughtAt: number[] = []
    const rnd = seededRandom(Math.round(p * 1000 + q * 10))
    for (let t = 0; t < TRIALS; t++) {
      const checker = new SpotChecker({
        rate: p,
        modelId: '0x' + '00'.repeat(32),
        reputation: new Reputation(),
        random: rnd
      })
      let at = Infinity
      for (let i = 1; i <= NS[NS.length - 1]; i++) {
        const y = rnd() < q ? wrong : truth
        if (!checker.sample()) continue
        let asked = 0
        await checker.check(cheatCall(y, async () => answer(`honest-${asked++}`, truth)))
        if (checker.reputation.isConvicted('cheat')) {
          at = i
          break
        }
      }
      caughtAt.push(at)
    }
    for (const n of NS)
      out.push({
        p,
        q,
        n,
        measured: caughtAt.filter((a) => a <= n).length / TRIALS,
        formula: 1 - (1 - p * q) ** n
      })
  }
  return out
}

/**
 * Part 4: a cheat answering every call wrongly (q = 1) at rate p, per layout: how many of its
 * answers until it is convicted (mean, and P(within n)), the real SpotChecker deciding.
 */
async function layouts(p: number): Promise<
  Array<{
    layout: string
    p: number
    mean: number
    within: Record<string, number>
    convicted: number
  }>
> {
  const local = { runExpert: async () => truth.slice() }
  const out = []
  for (const [layout, others, referee] of [
    ['3 operators, no referee', 2, false],
    ['2 operators + router referee (demo)', 1, true],
    ['1 operator + router referee', 0, true]
  ] as const) {
    const rnd = seededRandom(Math.round(p * 1000) + others)
    const at: number[] = []
    for (let t = 0; t < TRIALS; t++) {
      const checker = new SpotChecker({
        rate: p,
        modelId: '0x' + '00'.repeat(32),
        reputation: new Reputation(),
        random: rnd,
        ...(referee ? { local } : {})
      })
      let i = 0
      for (; i < 5000 && !checker.reputation.isConvicted('cheat');) {
        i++
        if (!checker.sample()) continue
        let asked = 0
        await checker
          .check(
            cheatCall(wrong, async () =>
              asked < others ? answer(`honest-${asked++}`, truth) : null
            )
          )
          .catch(() => {})
      }
      at.push(checker.reputation.isConvicted('cheat') ? i : Infinity)
    }
    const caught = at.filter((a) => a < Infinity)
    out.push({
      layout,
      p,
      mean: caught.reduce((a, b) => a + b, 0) / Math.max(1, caught.length),
      within: Object.fromEntries(
        [50, 100, 200].map((n) => [String(n), at.filter((a) => a <= n).length / TRIALS])
      ),
      convicted: caught.length / TRIALS
    })
  }
  return out
}

/** Part 5: the signature check per call by tensor size (µs), and one expert loaded on demand. */
async function checkCosts(dir: string): Promise<{
  signature: Array<{ bytes: number; us: number }>
  refereeLoadMs: number
  refereeRunMs: number
}> {
  const { generateKeyPair } = await import('@libp2p/crypto/keys')
  const { signResponse, verifyResponse } = await import('../../protocol/signature.js')
  const key = await generateKeyPair('Ed25519')
  const signature: Array<{ bytes: number; us: number }> = []
  for (const rows of [1, 8, 64]) {
    const hidden = 512
    const t = encodeTensor(new Float32Array(rows * hidden).fill(0.5), DType.FP32)
    const f = {
      requestId: 1n,
      modelId: new Uint8Array(32),
      layer: 0,
      expert: 0,
      dtype: DType.FP32,
      rows,
      hidden,
      input: t,
      output: t
    }
    const sig = await signResponse(key, f)
    const N = rows === 64 ? 500 : 2000
    for (let i = 0; i < 100; i++) await verifyResponse(key.publicKey, f, sig)
    const t0 = performance.now()
    for (let i = 0; i < N; i++) await verifyResponse(key.publicKey, f, sig)
    signature.push({ bytes: t.byteLength, us: ((performance.now() - t0) * 1000) / N })
  }
  const { OnDemandExperts } = await import('../../router/referee.js')
  const b = await bundleOf(dir, 'referee', { seed: 7 })
  const ref = new OnDemandExperts(b)
  const x = new Float32Array(b.config.hiddenSize).fill(0.1)
  let t0 = performance.now()
  await ref.runExpert(0, 0, x, 1)
  const refereeLoadMs = performance.now() - t0
  t0 = performance.now()
  for (let i = 0; i < 100; i++) await ref.runExpert(0, 0, x, 1)
  const refereeRunMs = (performance.now() - t0) / 100
  await ref.close()
  return { signature, refereeLoadMs, refereeRunMs }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pov-bench-verify-'))
  try {
    const result: Record<string, unknown> = { tolerance: TOL }
    if (PARTS.has(1)) await part1(dir, result)
    if (PARTS.has(2)) {
      log(
        `\n2. cost of checking (3 in-process nodes, tiny model, 48-token prompt, 32 new tokens; median of ${ROUNDS})`
      )
      const c = await cost(dir)
      const base = c['0']
      for (const [r, v] of Object.entries(c))
        log(
          `  rate ${r.padEnd(5)} prefill ${v.prefill.toFixed(1).padStart(7)} tok/s (${((v.prefill / base.prefill) * 100).toFixed(0)} %)  decode ${v.decode.toFixed(1).padStart(6)} tok/s (${((v.decode / base.decode) * 100).toFixed(0)} %)  checks ${v.checks}`
        )
      result.cost = c
    }
    if (PARTS.has(3)) {
      log(`\n3. detection: P(caught within n answers), ${TRIALS} trials each`)
      const d = await detection()
      for (const row of d)
        log(
          `  p ${String(row.p).padEnd(4)} q ${String(row.q).padEnd(3)} n ${String(row.n).padStart(3)}  measured ${row.measured.toFixed(3)}  formula ${row.formula.toFixed(3)}`
        )
      result.detection = d
    }
    if (PARTS.has(4)) {
      log(`\n4. conviction per layout (cheat wrong on every call), ${TRIALS} trials each`)
      const rows = [...(await layouts(0.02)), ...(await layouts(0.1))]
      for (const r of rows)
        log(
          `  p ${String(r.p).padEnd(4)} ${r.layout.padEnd(36)} convicted ${(r.convicted * 100).toFixed(1)} %  mean ${r.mean.toFixed(1)} answers  ≤50 ${r.within['50'].toFixed(3)}  ≤100 ${r.within['100'].toFixed(3)}  ≤200 ${r.within['200'].toFixed(3)}  (1/p = ${1 / r.p})`
        )
      result.layouts = rows
    }
    if (PARTS.has(5)) {
      log('\n5. cost of the checks per call')
      const k = await checkCosts(dir)
      for (const r of k.signature)
        log(`  signature + echo check before use, ${r.bytes} B tensors: ${r.us.toFixed(1)} µs/call`)
      log(
        `  referee: one expert loaded from the bundle on demand in ${k.refereeLoadMs.toFixed(1)} ms, then ${k.refereeRunMs.toFixed(2)} ms per 1-row run`
      )
      result.checkCosts = k
    }
    process.stdout.write(JSON.stringify(result) + '\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function part1(dir: string, result: Record<string, unknown>): Promise<void> {
  {
    log(`1. tolerance ${TOL}: ${CALLS} honest calls per model size`)
    const tiny = await tolerance(dir, 'tiny', { hidden: 64, intermediate: 128 }, CALLS)
    const wide = await tolerance(
      dir,
      'wide',
      { hidden: 512, intermediate: 1792, vocab: 512, heads: 8, kvHeads: 8 },
      CALLS
    )
    const table = (name: string, s: Record<string, Stat>): string[] =>
      Object.entries(s).map(
        ([k, v]) =>
          `  ${name.padEnd(5)} ${k.padEnd(19)} ${String(v.n).padStart(6)} calls  max ${v.max.toExponential(2)}  min ${v.min.toExponential(2)}  ${k.startsWith('tamper') ? `missed ${v.n - v.over}` : `accused ${v.over}`}`
      )
    log(
      ['', 'distance (worst-row relative L2)', ...table('tiny', tiny), ...table('wide', wide)].join(
        '\n'
      )
    )
    const honest = [tiny, wide].flatMap((s) =>
      Object.entries(s).filter(([k]) => !k.startsWith('tamper'))
    )
    const tamper = [tiny, wide].flatMap((s) =>
      Object.entries(s).filter(([k]) => k.startsWith('tamper'))
    )
    const honestCalls = Math.max(...[tiny, wide].map((s) => s.threads.n)) * 2
    const falseAccusations = honest.reduce((a, [, v]) => a + v.over, 0)
    const misses = tamper.reduce((a, [, v]) => a + v.n - v.over, 0)
    const honestMax = Math.max(...honest.map(([, v]) => v.max))
    const tamperMin = Math.min(...tamper.map(([, v]) => v.min))
    log(
      `honest max ${honestMax.toExponential(2)} < tolerance ${TOL} < tampered min ${tamperMin.toExponential(2)}; ${falseAccusations} false accusations, ${misses} misses`
    )

    Object.assign(result, {
      honestCalls,
      falseAccusations,
      misses,
      honestMax,
      tamperMin,
      distances: { tiny, wide }
    })
  }
}

await main()
