// npm run bench:edge — the edge promise (issue 26): one int4 expert shard of Mixtral 8x7B dims
// (hidden 4096, expert FFN 14336, 32 layers; random packed weights, model/bundle/random-int4.ts)
// served by `pov node start` in a process capped at 4 GiB by a memory cgroup this bench creates
// (root; without one it runs uncapped and says why), and called through the real libp2p expert
// protocol by the router's RemoteExpertExecutor at batch 1 (decoding) and batch 8.
// Prints: load time, peak and steady RSS of the node process, the cgroup's peak charge, whether
// the cgroup hit its limit (the kernel reclaimed page cache) or OOM-killed, the latency per
// expert call (the calls walk the 32 layers in turn, as a decoded token does, so each reads an
// expert not in cache), and at batch 1 the weight bytes read per second against this machine's
// memory read bandwidth measured in the same run (memchr over a buffer larger than any cache, one
// thread and two; before and after the calls, the best counts: other processes only lower it, and
// a low figure would flatter the ratio). Where a batch-1 call's time goes: the node's own
// /metrics (pov_request_duration_seconds: decode to response queued; pov_expert_run_seconds:
// the expert run itself) against the time the router measured. The experts run on pov's int4
// kernel (model/runtime/int4), or with --int4-kernel ort on onnxruntime's MatMulNBits.
// Targets: RSS peak ≤ 3.8 GiB under the 4 GiB cap; batch-1 call ≤ 2 × the time
// to read the expert's weights once at that bandwidth.
// The bundle (~3.1 GB at blocks of 128) is written to a temp dir and deleted at the end.
// Last line: one JSON object.
//
// --spin: the node as it runs by default (ORT threads spin between runs, the network loop
// busy-polls): for a machine whose cores the node has to itself; the default here is --no-spin.
//
//   npm run bench:edge [-- --block 128 --rounds 4 --threads N --spin --dir /tmp --layers 32
//                          --int4-kernel pov|ort]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { MIXTRAL_8X7B, writeRandomInt4Bundle } from '../../model/bundle/random-int4.js'
import { INT4_BLOCKS } from '../../model/onnx/expert.js'
import { INT4_KERNELS } from '../../model/experts.js'
import { Router } from '../../router/index.js'
import { createMemoryCgroup, processRss, type MemoryCgroup } from './memory-cgroup.js'

const ROOT = resolve(import.meta.dirname, '../..')
const GIB = 2 ** 30
const MIB = 2 ** 20
const CAP = 4 * GIB
const RSS_TARGET = 3.8 * GIB
const SHARD = 0

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const BLOCK = Number(arg('block') ?? 128)
const ROUNDS = Number(arg('rounds') ?? 4)
const THREADS = arg('threads')
const SPIN = process.argv.includes('--spin')
const KERNEL = arg('int4-kernel') ?? 'pov'
if (!(INT4_KERNELS as readonly string[]).includes(KERNEL))
  throw new Error(`--int4-kernel ${KERNEL}: one of ${INT4_KERNELS.join(', ')}`)
if (!(INT4_BLOCKS as readonly number[]).includes(BLOCK))
  throw new Error(`--block ${BLOCK}: one of ${INT4_BLOCKS.join(', ')}`)

const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

/** Memory read bandwidth, bytes/s: best of 5 memchr scans over 512 MiB, by `threads` threads. */
async function readBandwidth(threads: number): Promise<number> {
  const bytes = 512 * MIB
  const sab = new SharedArrayBuffer(bytes)
  const part = bytes / threads
  const src = `
    const { parentPort, workerData } = require('node:worker_threads')
    const buf = Buffer.from(workerData.sab, workerData.off, workerData.len)
    buf.fill(0)
    parentPort.on('message', () => parentPort.postMessage(buf.indexOf(1)))
    parentPort.postMessage('ready')`
  const workers = Array.from(
    { length: threads },
    (_, i) => new Worker(src, { eval: true, workerData: { sab, off: i * part, len: part } })
  )
  const next = (w: Worker): Promise<unknown> => new Promise((resolve) => w.once('message', resolve))
  await Promise.all(workers.map(next))
  let best = Infinity
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    await Promise.all(
      workers.map((w) => {
        const p = next(w)
        w.postMessage('scan')
        return p
      })
    )
    best = Math.min(best, performance.now() - t0)
  }
  await Promise.all(workers.map(async (w) => await w.terminate()))
  return bytes / (best / 1000)
}

/** Drops a file's pages from the page cache (GNU dd), so the node's cgroup is charged for them. */
function dropCache(file: string): void {
  spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
}

interface Started {
  proc: ChildProcess
  ready: { addrs: string[]; modelId: string; experts: number; engine: string; metrics?: string }
}

function startNode(bundle: string, cg: MemoryCgroup | null): Promise<Started> {
  const pov = [
    process.execPath,
    join(ROOT, 'cli/pov.mjs'),
    'node',
    'start',
    '--model',
    bundle,
    '--shards',
    String(SHARD),
    '--json',
    '--log-level',
    'warn',
    // the bench shares its cores with the router (and, here, other jobs): ORT threads sleep
    ...(SPIN ? [] : ['--no-spin']),
    '--int4-kernel',
    KERNEL,
    // the node's own timings (request and expert run) for the breakdown of a call
    '--metrics',
    '--metrics-port',
    '0',
    '--metrics-address',
    '127.0.0.1',
    ...(THREADS != null ? ['--threads', THREADS] : [])
  ]
  // the shell joins the cgroup, then becomes the node: every byte the node allocates is charged
  const quoted = pov.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  const script = cg == null ? `exec ${quoted}` : `echo $$ > '${cg.procsFile}' && exec ${quoted}`
  const proc = spawn('sh', ['-c', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        const ev = JSON.parse(l) as { event?: string }
        if (ev.event === 'ready') resolve({ proc, ready: ev as Started['ready'] })
      } catch {}
    })
    proc.once('exit', (code, signal) => {
      reject(
        new Error(`pov node start exited (code ${code}, signal ${signal}) before it was ready`)
      )
    })
  })
}

/** Sum and count of each of the node's duration histograms (all label sets together). */
async function nodeTimings(
  url: string
): Promise<Record<'request' | 'run', { sum: number; count: number }>> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const total = (name: string): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  return {
    request: {
      sum: total('pov_request_duration_seconds_sum'),
      count: total('pov_request_duration_seconds_count')
    },
    run: { sum: total('pov_expert_run_seconds_sum'), count: total('pov_expert_run_seconds_count') }
  }
}

/** Mean ms per call between two snapshots. */
function meanMs(a: { sum: number; count: number }, b: { sum: number; count: number }): number {
  return b.count > a.count ? ((b.sum - a.sum) / (b.count - a.count)) * 1000 : NaN
}

async function main(): Promise<void> {
  // --layers N: a shorter shard (a quick check of the bench itself; the target is 32)
  const c = { ...MIXTRAL_8X7B, numLayers: Number(arg('layers') ?? MIXTRAL_8X7B.numLayers) }
  const D = c.hiddenSize
  console.log(
    `bench:edge — one int4 shard (expert ${SHARD} of ${c.numLayers} layers) of Mixtral 8x7B dims, blocks of ${BLOCK}, cap ${CAP / GIB} GiB; --int4-kernel ${KERNEL}, node threads ${THREADS ?? 'default (cores)'}, ${SPIN ? 'spinning' : '--no-spin'}; load ${load()}`
  )
  const bw1 = await readBandwidth(1)
  const bw2 = await readBandwidth(2)
  let bandwidth = Math.max(bw1, bw2)
  console.log(
    `memory read bandwidth (memchr, 512 MiB): 1 thread ${(bw1 / 1e9).toFixed(1)} GB/s, 2 threads ${(bw2 / 1e9).toFixed(1)} GB/s; load ${load()}`
  )

  const dir = await mkdtemp(join(arg('dir') ?? tmpdir(), 'pov-edge-'))
  let cg: MemoryCgroup | null = null
  let node: ChildProcess | null = null
  let router: Router | null = null
  try {
    const bundle = join(dir, 'bundle')
    const tw = performance.now()
    await writeRandomInt4Bundle(bundle, {
      config: c,
      shards: [SHARD],
      block: BLOCK,
      onExpert: (done, total) => {
        if (done % 8 === 0) process.stderr.write(`  wrote ${done}/${total} experts\n`)
      }
    })
    const files = await readdir(bundle)
    let diskBytes = 0
    let expertBytes = 0
    for (const f of files) {
      const size = (await stat(join(bundle, f))).size
      diskBytes += size
      if (f.endsWith('.onnx.data')) expertBytes = Math.max(expertBytes, size)
      dropCache(join(bundle, f))
    }
    console.log(
      `bundle: ${(diskBytes / 1e9).toFixed(2)} GB on disk (${(expertBytes / 1e6).toFixed(1)} MB of weights per (layer, expert)), written in ${((performance.now() - tw) / 1000).toFixed(0)} s; load ${load()}`
    )

    const made = await createMemoryCgroup(`pov-edge-${process.pid}`, CAP)
    if ('skip' in made) console.log(`NOT CAPPED: ${made.skip} — the node runs without a limit`)
    else cg = made
    const t0 = performance.now()
    const started = await startNode(bundle, cg)
    node = started.proc
    const loadS = (performance.now() - t0) / 1000
    const pid = node.pid!
    const afterLoad = await processRss(pid)
    console.log(
      `node ready in ${loadS.toFixed(1)} s (${started.ready.experts} experts on ${started.ready.engine}, sha256-verified); RSS ${((afterLoad?.rss ?? 0) / GIB).toFixed(2)} GiB; load ${load()}`
    )
    let sampledPeak = afterLoad?.rss ?? 0
    const sampler = setInterval(() => {
      void processRss(pid).then((r) => {
        if (r != null) sampledPeak = Math.max(sampledPeak, r.rss)
      })
    }, 100)

    router = await Router.init({
      opts: { peers: started.ready.addrs, modelId: started.ready.modelId, hidden: D, busyPollUs: 0 }
    })
    const ex = router.executor
    const calls = async (rows: number, rounds: number): Promise<number[]> => {
      const x = new Float32Array(rows * D)
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5
      const ms: number[] = []
      for (let r = 0; r < rounds; r++)
        for (let l = 0; l < c.numLayers; l++) {
          const t = performance.now()
          const y = await ex.runExpert(l, SHARD, x, rows)
          ms.push(performance.now() - t)
          if (y.length !== rows * D || !y.every(Number.isFinite))
            throw new Error(`layer ${l}: bad output (${y.length} values)`)
        }
      return ms
    }
    await calls(1, 1) // warm-up: first runs size buffers (ORT's arena) and touch every expert once
    const metricsUrl = started.ready.metrics
    if (metricsUrl == null) throw new Error('the node did not say where its /metrics is')
    const before = await nodeTimings(metricsUrl)
    const b1 = await calls(1, ROUNDS)
    const after = await nodeTimings(metricsUrl)
    console.log(`batch 1: ${b1.length} calls; load ${load()}`)
    await calls(8, 1)
    const b8 = await calls(8, Math.max(1, ROUNDS >> 1))
    console.log(`batch 8: ${b8.length} calls; load ${load()}`)
    const bwEnd1 = await readBandwidth(1)
    const bwEnd2 = await readBandwidth(2)
    bandwidth = Math.max(bandwidth, bwEnd1, bwEnd2)
    console.log(
      `memory read bandwidth again: 1 thread ${(bwEnd1 / 1e9).toFixed(1)} GB/s, 2 threads ${(bwEnd2 / 1e9).toFixed(1)} GB/s; load ${load()}`
    )
    clearInterval(sampler)
    const end = await processRss(pid)
    if (end == null) throw new Error('the node exited during the calls')
    const rssPeak = Math.max(end.hwm, sampledPeak)
    const cgPeak = cg != null ? await cg.peakBytes() : null
    const events = cg != null ? await cg.limitEvents() : { hitLimit: 0, oomKills: 0 }

    const b1p50 = pct(b1, 0.5)
    const b1Mean = b1.reduce((a, b) => a + b, 0) / b1.length
    const b1NodeMean = meanMs(before.request, after.request)
    const b1RunMean = meanMs(before.run, after.run)
    const readMs = (expertBytes / bandwidth) * 1000
    const b1BytesPerS = expertBytes / (b1p50 / 1000)
    const summary = {
      engine: started.ready.engine,
      block: BLOCK,
      layers: c.numLayers,
      threads: THREADS != null ? Number(THREADS) : null,
      spin: SPIN,
      capped: cg != null,
      cgroupVersion: cg?.version ?? null,
      capBytes: CAP,
      rssTargetBytes: RSS_TARGET,
      rssPeakBytes: rssPeak,
      rssSteadyBytes: end.rss,
      rssAfterLoadBytes: afterLoad?.rss ?? null,
      cgroupPeakBytes: cgPeak,
      // the charge includes page cache (the bundle's files as they are hashed and mapped): it
      // reaching the cap means the kernel reclaimed cache; OOM kills are the harm
      cgroupReachedCap: cgPeak != null && cgPeak >= CAP - 2 * MIB,
      cgroupLimitHits: events.hitLimit,
      cgroupOomKills: events.oomKills,
      diskBytes,
      expertWeightBytes: expertBytes,
      loadS,
      b1MsP50: b1p50,
      b1MsP90: pct(b1, 0.9),
      b1MsMin: Math.min(...b1),
      b8MsP50: pct(b8, 0.5),
      b8MsP90: pct(b8, 0.9),
      b1MsMean: b1Mean,
      // the mean call split: the expert run, the node's own work (decode, checks, signing,
      // queueing the response), the rest (the wire both ways, the router, waiting for a core)
      b1NodeMsMean: b1NodeMean,
      b1RunMsMean: b1RunMean,
      b1RunVsReadOnce: b1RunMean / readMs,
      bandwidth1ThreadBps: bw1,
      bandwidth2ThreadsBps: bw2,
      bandwidthEnd1ThreadBps: bwEnd1,
      bandwidthEnd2ThreadsBps: bwEnd2,
      bandwidthBps: bandwidth,
      b1WeightBytesPerS: b1BytesPerS,
      b1BandwidthShare: b1BytesPerS / bandwidth,
      readOnceMs: readMs,
      b1VsReadOnce: b1p50 / readMs,
      targets: {
        rssPeak: rssPeak <= RSS_TARGET,
        noOom: events.oomKills === 0,
        b1Within2xRead: b1p50 <= 2 * readMs
      },
      loadavg: loadavg()
    }
    const rows: Array<[string, string]> = [
      ['experts run on', started.ready.engine],
      ['cgroup', cg != null ? `v${cg.version}, ${CAP / GIB} GiB, no swap` : 'none (not capped)'],
      ['load time (spawn → ready)', `${loadS.toFixed(1)} s`],
      [
        'RSS peak / steady',
        `${(rssPeak / GIB).toFixed(2)} / ${(end.rss / GIB).toFixed(2)} GiB (target ≤ 3.8 GiB: ${summary.targets.rssPeak ? 'met' : 'NOT met'})`
      ],
      [
        'cgroup peak charge (incl. page cache)',
        cgPeak == null ? 'n/a' : `${(cgPeak / GIB).toFixed(2)} GiB`
      ],
      [
        'cgroup charge reached the cap / limit hits / OOM kills',
        `${cgPeak != null && cgPeak >= CAP - 2 * MIB ? 'yes (page cache reclaimed)' : 'no'} / ${events.hitLimit} / ${events.oomKills}`
      ],
      [
        'batch 1 per call p50 / p90 / min',
        `${b1p50.toFixed(1)} / ${pct(b1, 0.9).toFixed(1)} / ${Math.min(...b1).toFixed(1)} ms`
      ],
      [
        'batch 1 mean: expert run / rest of the node / wire + router',
        `${b1RunMean.toFixed(1)} / ${(b1NodeMean - b1RunMean).toFixed(1)} / ${(b1Mean - b1NodeMean).toFixed(1)} ms (of ${b1Mean.toFixed(1)} ms)`
      ],
      ['batch 8 per call p50 / p90', `${pct(b8, 0.5).toFixed(1)} / ${pct(b8, 0.9).toFixed(1)} ms`],
      [
        'batch 1 weight bytes read',
        `${(b1BytesPerS / 1e9).toFixed(1)} GB/s = ${(summary.b1BandwidthShare * 100).toFixed(0)} % of ${(bandwidth / 1e9).toFixed(1)} GB/s`
      ],
      [
        'batch 1 vs reading the weights once',
        `${summary.b1VsReadOnce.toFixed(2)} × ${readMs.toFixed(1)} ms (target ≤ 2: ${summary.targets.b1Within2xRead ? 'met' : 'NOT met'}); the expert run alone (mean) ${summary.b1RunVsReadOnce.toFixed(2)} ×`
      ]
    ]
    for (const [k, v] of rows) console.log(`  ${k.padEnd(52)} ${v}`)
    console.log(JSON.stringify(summary))
  } finally {
    await router?.close()
    if (node != null && node.exitCode == null && node.signalCode == null) {
      const done = new Promise((r) => node!.once('exit', r))
      node.kill('SIGTERM')
      await done
    }
    await cg?.remove().catch((err: Error) => {
      console.error(`could not remove ${cg?.path}: ${err.message}`)
    })
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
