// Edge-node memory: one expert of a real Mixtral 8x7B (hidden 4096, expert FFN 14336) as the int4
// graph `pov model convert --quant int4` writes (MatMulNBits, blocks of 32, fp32 scales, 4-bit
// zero points), with seeded random weights — the byte count does not depend on their values.
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
import { buildQuantExpertModel, EXPERT_INPUT } from '../../model/onnx/expert.js'
import { createSession, ort } from '../../model/runtime/ort.js'

const MIXTRAL = { hidden: 4096, inter: 14336, layers: 32, experts: 8 }
const GIB = 2 ** 30
const MIB = 2 ** 20

async function rssBytes(): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const s = await readFile('/proc/self/status', 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(s)![1]) * 1024
}

/** Child mode: load the graph, run one row, report RSS at each stage. */
async function child(path: string): Promise<void> {
  const before = await rssBytes()
  const { session } = await createSession(path, { intraOpNumThreads: 1 })
  const loaded = await rssBytes()
  const x = new ort.Tensor('float32', new Float32Array(MIXTRAL.hidden).fill(0.01), [
    1,
    MIXTRAL.hidden
  ])
  await session.run({ [EXPERT_INPUT]: x })
  const ran = await rssBytes()
  await session.release()
  process.stdout.write(JSON.stringify({ before, loaded, ran }) + '\n')
}

function runChild(path: string): Promise<{ before: number; loaded: number; ran: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', path],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out))
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
    const model = buildQuantExpertModel(
      { hidden: D, inter: F },
      { w1: seededWeights(F * D, 1), w2: seededWeights(D * F, 2), w3: seededWeights(F * D, 3) },
      'int4'
    )
    const path = join(dir, 'expert-int4.onnx')
    await writeFile(path, model)
    const fileBytes = (await stat(path)).size
    const m = await runChild(path)
    const params = 3 * D * F
    const perExpertLayer = fileBytes
    const sessionBytes = m.ran - m.before
    const runtimeBase = m.before
    const shard = (k: number): number => k * L * Math.max(perExpertLayer, sessionBytes)
    const node = (k: number): number => shard(k) + runtimeBase
    console.log(`Mixtral 8x7B expert (${D} x ${F}, w1/w2/w3), int4 blocks of 32:`)
    console.log(
      `  params per expert per layer ${params}; .onnx ${fileBytes} bytes (${(fileBytes / MIB).toFixed(1)} MiB, ${((fileBytes * 8) / params).toFixed(3)} bits/weight)`
    )
    console.log(
      `  RSS: process before load ${(m.before / MIB).toFixed(0)} MiB, after load ${(m.loaded / MIB).toFixed(0)} MiB, after one row ${(m.ran / MIB).toFixed(0)} MiB -> the session holds ${(sessionBytes / MIB).toFixed(1)} MiB (${(sessionBytes / fileBytes).toFixed(2)} x the file)`
    )
    for (const k of [1, 2])
      console.log(
        `  node with ${k} expert shard(s) x ${L} layers: ${(shard(k) / GIB).toFixed(2)} GiB of experts + ${(runtimeBase / MIB).toFixed(0)} MiB runtime = ${(node(k) / GIB).toFixed(2)} GiB — ${node(k) <= 4e9 ? 'fits' : 'does NOT fit'} in 4 GB`
      )
    console.log(
      JSON.stringify({
        hidden: D,
        inter: F,
        layers: L,
        paramsPerExpertLayer: params,
        int4FileBytesPerExpertLayer: fileBytes,
        rss: m,
        sessionBytesPerExpertLayer: sessionBytes,
        nodeBytes: { oneShard: node(1), twoShards: node(2) },
        fits4GB: { oneShard: node(1) <= 4e9, twoShards: node(2) <= 4e9 }
      })
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const i = process.argv.indexOf('--child')
if (i >= 0) await child(process.argv[i + 1])
else await main()
