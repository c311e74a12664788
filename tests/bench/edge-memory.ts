// Edge-node memory: one expert of a real Mixtral 8x7B (hidden 4096, expert FFN 14336) as the int4
// graph `pov model convert --quant int4 --int4-block B` writes (MatMulNBits, fp32 scales, 4-bit
// zero points, weights as external data beside the graph), with seeded random weights — the byte
// count does not depend on their values. Block size from INT4_BLOCK_ENV (default INT4_BLOCK, 128).
// Measures the .onnx size (bytes per expert per layer) and, in a fresh child process, the RSS
// before and after onnxruntime loads it and runs one token through it (does ORT keep a second,
// prepacked copy?). From those: a node holding one or two Mixtral 8x7B expert shards (an expert
// index across all 32 layers, as pov shards are laid out) vs a 4 GB device. Last line: JSON.
//
//   npx tsx tests/bench/edge-memory.ts
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildInt4ExpertFromFloats, EXPERT_INPUT, INT4_BLOCK } from '../../model/onnx/expert.js'
import { createSession, ort } from '../../model/runtime/ort.js'

const MIXTRAL = { hidden: 4096, inter: 14336, layers: 32, experts: 8 }
const BLOCK = Number(process.env.INT4_BLOCK_ENV ?? INT4_BLOCK)
const GIB = 2 ** 30
const MIB = 2 ** 20

async function rssBytes(): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const s = await readFile('/proc/self/status', 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(s)![1]) * 1024
}

const SESSIONS = 3

interface ChildReport {
  /** RSS before any session, then after each of SESSIONS sessions of the same graph. */
  rss: number[]
  /** Best of 5 runs of one row through the last session, ms. */
  rowMs: number
}

/** Child mode: SESSIONS sessions of one graph (ORT shares nothing between sessions, so each
 *  holds its own weights, as a node's one-session-per-expert does); RSS after each; one row. */
type Mode = 'prepacked' | 'prepacked-no-arena' | 'raw'
const MODE_TEXT: Record<Mode, string> = {
  prepacked: 'default (weights prepacked, CPU memory arena)',
  'prepacked-no-arena': 'prepacked, enableCpuMemArena=false',
  raw: 'session.disable_prepacking=1'
}

async function child(path: string, mode: Mode): Promise<void> {
  const rss = [await rssBytes()]
  const sessions = []
  for (let s = 0; s < SESSIONS; s++) {
    const { session } = await createSession(path, {
      intraOpNumThreads: 1,
      ...(mode === 'raw'
        ? { ortOptions: { extra: { session: { disable_prepacking: '1' } } } }
        : mode === 'prepacked-no-arena'
          ? { ortOptions: { enableCpuMemArena: false } }
          : {})
    })
    sessions.push(session)
    rss.push(await rssBytes())
  }
  const x = new ort.Tensor('float32', new Float32Array(MIXTRAL.hidden).fill(0.01), [
    1,
    MIXTRAL.hidden
  ])
  let rowMs = Infinity
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    await sessions[0].run({ [EXPERT_INPUT]: x })
    rowMs = Math.min(rowMs, performance.now() - t0)
  }
  for (const s of sessions) await s.release()
  const report: ChildReport = { rss, rowMs }
  process.stdout.write(JSON.stringify(report) + '\n')
}

function runChild(path: string, mode: Mode): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', path, mode],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as ChildReport)
      else reject(new Error(`child exited with ${code}`))
    })
  })
}

function seededWeights(n: number, seed: number): Float32Array {
  // xorshift32, scaled like a trained layer's weights (±0.05)
  const w = new Float32Array(n)
  let s = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    w[i] = (s / 2 ** 32 - 0.5) * 0.1
  }
  return w
}

async function main(): Promise<void> {
  const { hidden: D, inter: F, layers: L } = MIXTRAL
  const dir = await mkdtemp(join(tmpdir(), 'pov-edge-'))
  try {
    const path = join(dir, 'expert-int4.onnx')
    const { model, data } = buildInt4ExpertFromFloats(
      { hidden: D, inter: F },
      { w1: seededWeights(F * D, 1), w2: seededWeights(D * F, 2), w3: seededWeights(F * D, 3) },
      { block: BLOCK, location: 'expert-int4.onnx.data' }
    )
    await writeFile(path, model)
    await writeFile(`${path}.data`, data.chunks)
    const fileBytes = (await stat(path)).size + data.bytes
    const params = 3 * D * F
    const modes: Partial<Record<Mode, ChildReport>> = {}
    for (const m of Object.keys(MODE_TEXT) as Mode[]) modes[m] = await runChild(path, m)
    // Marginal bytes per session: the first session also pays one-off allocations.
    const perSession = (c: ChildReport): number => (c.rss[SESSIONS] - c.rss[1]) / (SESSIONS - 1)
    const runtimeBase = modes.prepacked!.rss[0]
    console.log(`Mixtral 8x7B expert (${D} x ${F}, w1/w2/w3), int4 blocks of ${BLOCK}:`)
    console.log(
      `  params per expert per layer ${params}; .onnx ${fileBytes} bytes (${(fileBytes / MIB).toFixed(1)} MiB, ${((fileBytes * 8) / params).toFixed(3)} bits/weight)`
    )
    console.log(`  process RSS before any session: ${(runtimeBase / MIB).toFixed(0)} MiB`)
    const summary: Record<string, unknown> = {}
    for (const [name, c] of Object.entries(modes) as Array<[Mode, ChildReport]>) {
      const per = perSession(c)
      const node = (k: number): number => runtimeBase + k * L * per
      console.log(
        `  ORT ${MODE_TEXT[name]}: RSS after ${SESSIONS} sessions ${c.rss.map((r) => (r / MIB).toFixed(0)).join(' -> ')} MiB; ${(per / MIB).toFixed(1)} MiB per session (${(per / fileBytes).toFixed(2)} x the file); one row ${c.rowMs.toFixed(1)} ms`
      )
      for (const k of [1, 2])
        console.log(
          `    node with ${k} expert shard(s) x ${L} layers: ${((k * L * per) / GIB).toFixed(2)} GiB + ${(runtimeBase / MIB).toFixed(0)} MiB = ${(node(k) / GIB).toFixed(2)} GiB (${(node(k) / 1e9).toFixed(2)} GB) — ${node(k) <= 4e9 ? 'fits' : 'does NOT fit'} in 4 GB`
        )
      summary[name] = {
        rss: c.rss,
        rowMs: c.rowMs,
        bytesPerSession: per,
        nodeBytes: { oneShard: node(1), twoShards: node(2) },
        fits4GB: { oneShard: node(1) <= 4e9, twoShards: node(2) <= 4e9 }
      }
    }
    console.log(
      JSON.stringify({
        hidden: D,
        inter: F,
        layers: L,
        block: BLOCK,
        paramsPerExpertLayer: params,
        int4FileBytesPerExpertLayer: fileBytes,
        runtimeBaseBytes: runtimeBase,
        ...summary
      })
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const i = process.argv.indexOf('--child')
if (i >= 0) await child(process.argv[i + 1], process.argv[i + 2] as Mode)
else await main()
