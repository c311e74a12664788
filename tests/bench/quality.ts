// Quality benchmark: what every shortcut costs in perplexity, on the trained model (models/tiny-en)
// over its held-out text (the last tenth of Persuasion, never seen in training). Experts in fp32
// (the f16 checkpoint computed in fp32), int8, int4 — locally; then the fp32 bundle served by two
// node PROCESSES on 127.0.0.1 with fp32 and fp16 on the wire, and the int4 bundle over the
// network as an edge operator would serve it. Also the int4 bundle's expert bytes and the RSS of
// the node processes. Targets (issue 15): int8 within 1 % of fp32, int4 within 5 %, fp16 wire
// within 0.1 %. Last line: one JSON object with every figure.
//
//   npm run bench:quality [-- --tokens N] [--net-tokens N] [--model HF_DIR]
//   (defaults: all held-out text locally, its first 4064 tokens over the network, models/tiny-en)
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import { perplexity, type PerplexityResult } from '../../model/eval.js'
import { loadTokenizer } from '../../model/tokenizer.js'
import type { ExpertExecutor } from '../../model/generate.js'
import { Router } from '../../router/index.js'
import { DEFAULT_EVAL_WINDOW } from '../../cli/eval/index.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const ROOT = resolve(import.meta.dirname, '../..')
const MODEL = arg('model') ?? join(ROOT, 'models', 'tiny-en')
const TARGETS = { int8: 0.01, int4: 0.05, fp16Wire: 0.001 }
const SHARDS = [
  [0, 1, 2, 3],
  [4, 5, 6, 7]
]

interface NodeProc {
  proc: ChildProcess
  addr: string
}

function startNode(bundleDir: string, shards: number[]): Promise<NodeProc> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/bin.ts',
      'node',
      'start',
      '--model',
      bundleDir,
      '--shards',
      shards.join(','),
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--json',
      '--log-level',
      'warn'
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let err = ''
  proc.stderr?.on('data', (d) => {
    err += d
  })
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const ev = JSON.parse(line) as { event?: string; addrs?: string[] }
      if (ev.event === 'ready') resolve({ proc, addr: ev.addrs![0] })
    })
    proc.on('exit', (code) => {
      reject(new Error(`node ${shards.join(',')} exited ${code} before ready: ${err}`))
    })
  })
}

async function rssKiB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? NaN)
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pov-quality-'))
  const nodes: NodeProc[] = []
  try {
    const tok = await loadTokenizer(MODEL)
    let ids = tok.encode(await readFile(join(MODEL, 'heldout.txt'), 'utf8'), {
      addSpecialTokens: false
    })
    if (arg('tokens') != null) ids = ids.slice(0, Number(arg('tokens')))
    const bundles: Record<string, Bundle> = {}
    for (const quant of ['none', 'int8', 'int4'] as const) {
      await convertCheckpoint(MODEL, join(dir, quant), { quant })
      bundles[quant] = await loadBundle(join(dir, quant))
    }
    const dense = await loadDenseRuntime(bundles.none, { allowSpinning: false })
    // The network runs are slow on a shared 2-core machine: they score the first --net-tokens
    // tokens, and are compared with local fp32 over those same tokens.
    const netIds = ids.slice(0, Number(arg('net-tokens') ?? 4064))
    const score = async (
      experts: ExpertExecutor,
      label: string,
      which = ids
    ): Promise<PerplexityResult> => {
      const t0 = performance.now()
      const r = await perplexity({
        dense,
        experts,
        ids: which,
        window: DEFAULT_EVAL_WINDOW,
        bosTokenId: bundles.none.config.bosTokenId
      })
      process.stderr.write(
        `${label}: ppl ${r.perplexity.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`
      )
      return r
    }
    const results: Record<string, PerplexityResult> = {}
    for (const quant of ['none', 'int8', 'int4'] as const) {
      const rt = await loadExpertRuntime(
        bundles[quant],
        bundles[quant].manifest.shards.map((s) => s.id),
        { intraOpNumThreads: 0, allowSpinning: false }
      )
      try {
        results[`local ${quant === 'none' ? 'fp32' : quant}`] = await score(rt, `local ${quant}`)
        if (quant === 'none')
          results['local fp32 (net subset)'] = await score(rt, 'local fp32 (net subset)', netIds)
      } finally {
        await rt.close()
      }
    }
    const rss: Record<string, number[]> = {}
    for (const quant of ['none', 'int4'] as const) {
      const started = await Promise.all(
        SHARDS.map(async (s) => await startNode(join(dir, quant), s))
      )
      nodes.push(...started)
      for (const wire of quant === 'none' ? (['fp32', 'fp16'] as const) : (['fp16'] as const)) {
        const router = await Router.init({
          opts: {
            peers: started.map((n) => n.addr),
            modelId: bundles[quant].modelId,
            hidden: bundles[quant].config.hiddenSize,
            wireDType: wire,
            callTimeoutMs: 60_000
          }
        })
        try {
          const label = `2 nodes ${quant === 'none' ? 'fp32' : quant}, ${wire} wire`
          results[label] = await score(router.executor, label, netIds)
        } finally {
          await router.close()
        }
      }
      rss[quant] = await Promise.all(started.map(async (n) => await rssKiB(n.proc.pid!)))
      for (const n of started) n.proc.kill('SIGTERM')
    }
    await dense.close()

    const base = results['local fp32'].perplexity
    const target: Record<string, number | undefined> = {
      'local int8': TARGETS.int8,
      'local int4': TARGETS.int4,
      '2 nodes fp32, fp32 wire': TARGETS.fp16Wire,
      '2 nodes fp32, fp16 wire': TARGETS.fp16Wire,
      '2 nodes int4, fp16 wire': TARGETS.int4 + TARGETS.fp16Wire
    }
    const rows = Object.entries(results).map(([name, r]) => {
      const subset = name.startsWith('2 nodes') || name === 'local fp32 (net subset)'
      const ref = subset ? results['local fp32 (net subset)'].perplexity : base
      const rel = r.perplexity / ref - 1
      const t = target[name]
      return {
        name,
        tokens: r.tokens,
        perplexity: r.perplexity,
        nll: r.nll,
        rel,
        target: t,
        ok: t == null || Math.abs(rel) <= t
      }
    })
    const expertBytes = async (b: Bundle): Promise<number> => {
      const files = b.manifest.artifacts
        .filter((a) => a.path.startsWith('expert-'))
        .map((a) => join(b.dir, a.path))
      let s = 0
      for (const f of files) s += (await stat(f)).size
      return s
    }
    const sizes = {
      int4ExpertBytes: await expertBytes(bundles.int4),
      int8ExpertBytes: await expertBytes(bundles.int8),
      experts: bundles.none.config.numLayers * bundles.none.config.numExperts
    }
    console.log(
      `models/tiny-en, held-out text: ${ids.length} tokens, windows of ${DEFAULT_EVAL_WINDOW}`
    )
    console.log('| setup | tokens | perplexity | vs local fp32 | target | met |')
    console.log('| --- | --- | --- | --- | --- | --- |')
    for (const r of rows)
      console.log(
        `| ${r.name} | ${r.tokens} | ${r.perplexity.toFixed(4)} | ${(r.rel * 100).toFixed(3)} % | ${r.target != null ? `±${(r.target * 100).toFixed(1)} %` : '—'} | ${r.ok ? 'yes' : 'NO'} |`
      )
    console.log(
      `int4 experts: ${sizes.int4ExpertBytes} bytes for ${sizes.experts} (layer, expert) graphs; int8 ${sizes.int8ExpertBytes}`
    )
    console.log(
      `node RSS (KiB, 4 shards each): fp32 ${rss.none.join(', ')}; int4 ${rss.int4.join(', ')}`
    )
    console.log(
      JSON.stringify({ tokens: ids.length, window: DEFAULT_EVAL_WINDOW, rows, sizes, rssKiB: rss })
    )
  } finally {
    for (const n of nodes) n.proc.kill('SIGTERM')
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
