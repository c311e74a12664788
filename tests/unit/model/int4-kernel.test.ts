// pov's int4 kernel (model/runtime/int4) against onnxruntime's MatMulNBits on the same graphs
// (the kernel implements the same arithmetic: int8 activations per block, exact integer dot
// products, per-block float scaling), on every code path this CPU has, over the shapes that
// exercise its edges: a partial tile of output columns, K not a multiple of the block, every
// row count up to the register tile and past it. Then what a caller gets wrong: wrong-size input,
// a freed expert, a truncated or foreign data file, a graph pointing outside its bundle.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, truncate, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildInt4ExpertFromFloats, expertReference } from '../../../model/onnx/expert.js'
import {
  INT4_ISAS,
  int4Kernel,
  Int4GraphError,
  readInt4Graph,
  type Int4Kernel
} from '../../../model/runtime/int4/index.js'
import { createSession, ort } from '../../../model/runtime/ort.js'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { convertCheckpoint, loadBundle } from '../../../model/bundle/index.js'
import { int4KernelChoice, loadExpertRuntime } from '../../../model/runtime/expert.js'

const hasCompiler = spawnSync(process.env.CXX ?? 'g++', ['--version']).status === 0
// npm ci builds the addon; a checkout whose kernel.cc changed since (or a worktree that never ran
// npm ci) builds it here, before int4Kernel() first looks
if (hasCompiler)
  spawnSync(
    process.execPath,
    [join(import.meta.dirname, '../../../model/runtime/int4/build.mjs'), '--if-stale'],
    { stdio: 'inherit' }
  )

/** The kernel; a machine with g++ must have built it (npm ci runs the build). */
function kernelOrSkip(t: { skip: (why: string) => void }): Int4Kernel | null {
  const k = int4Kernel()
  if ('kernel' in k) return k.kernel
  if (hasCompiler) assert.fail(`g++ is here but the int4 kernel is unavailable: ${k.unavailable}`)
  t.skip(`no C++ compiler, so no int4 kernel: ${k.unavailable}`)
  return null
}

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32 - 0.5
  }
}

interface Dims {
  hidden: number
  inter: number
}

async function writeExpert(
  dir: string,
  d: Dims,
  block: number,
  seed: number
): Promise<{ graph: string; w: { w1: Float32Array; w2: Float32Array; w3: Float32Array } }> {
  const r = rng(seed)
  const w = {
    w1: Float32Array.from({ length: d.inter * d.hidden }, r),
    w2: Float32Array.from({ length: d.inter * d.hidden }, r),
    w3: Float32Array.from({ length: d.inter * d.hidden }, r)
  }
  const { model, data } = buildInt4ExpertFromFloats(d, w, { block, location: 'e.onnx.data' })
  await writeFile(join(dir, 'e.onnx'), model)
  await writeFile(join(dir, 'e.onnx.data'), Buffer.concat(data.chunks))
  return { graph: join(dir, 'e.onnx'), w }
}

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pov-int4k-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  return d
}

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]))
  return m
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

test('int4 kernel: equals MatMulNBits (accuracy_level 4) on every path, block and row count', async (t) => {
  const k = kernelOrSkip(t)
  if (k == null) return
  t.after(() => k.useIsa(''))
  const dir = await tmp(t)
  // 72 = two full blocks of 32 and a partial one; 136 output columns = 8 tiles and a half
  const shapes: Array<{ d: Dims; block: number }> = [
    { d: { hidden: 64, inter: 160 }, block: 32 },
    { d: { hidden: 128, inter: 96 }, block: 64 },
    { d: { hidden: 256, inter: 384 }, block: 128 },
    { d: { hidden: 72, inter: 136 }, block: 32 }
  ]
  const rowsList = [1, 2, 3, 5, 8, 9, 17]
  const paths = new Set<string>()
  for (const [si, { d, block }] of shapes.entries()) {
    const sub = join(dir, String(si))
    await import('node:fs/promises').then(async (fs) => await fs.mkdir(sub))
    const { graph, w } = await writeExpert(sub, d, block, 100 + si)
    const { session } = await createSession(graph, { intraOpNumThreads: 1 })
    t.after(async () => {
      await session.release()
    })
    for (const isa of INT4_ISAS) {
      const used = k.useIsa(isa)
      paths.add(used)
      const ex = await k.loadExpert(graph)
      for (const rows of rowsList) {
        const x = Float32Array.from({ length: rows * d.hidden }, rng(rows * 7 + si))
        const y = await ex.run(x, rows)
        const ort4 = (await session.run({ x: new ort.Tensor('float32', x, [rows, d.hidden]) })).y
          .data as Float32Array
        const ref = expertReference(d, w, x, rows)
        const scale = maxAbs(ref)
        assert.ok(scale > 0.1, 'the reference output is not degenerate')
        // same arithmetic as MatMulNBits up to float summation order
        const vsOrt = maxDiff(y, ort4) / scale
        assert.ok(
          vsOrt < 1e-4,
          `${used}, [${d.inter}, ${d.hidden}] block ${block}, ${rows} rows: max |pov − ORT| / max|y| = ${vsOrt}`
        )
        // and the int4 answer to the float question (weights quantised to 4 bits: coarse)
        const vsRef = maxDiff(y, ref) / scale
        assert.ok(vsRef < 0.3, `${used}: max |pov − float64 reference| / max|y| = ${vsRef}`)
      }
      ex.free()
    }
  }
  assert.ok(paths.has('portable'), 'the portable path ran')
})

test('int4 kernel: runs in flight finish, in any order, and each gets its own answer', async (t) => {
  const k = kernelOrSkip(t)
  if (k == null) return
  const dir = await tmp(t)
  const d = { hidden: 128, inter: 256 }
  const { graph } = await writeExpert(dir, d, 64, 5)
  const ex = await k.loadExpert(graph)
  t.after(() => {
    ex.free()
  })
  const xs = [1, 4, 2, 8, 3].map((rows, i) => ({
    rows,
    x: Float32Array.from({ length: rows * d.hidden }, rng(50 + i))
  }))
  const alone: Float32Array[] = []
  for (const { x, rows } of xs) alone.push(await ex.run(x, rows))
  const together = await Promise.all(xs.map(async ({ x, rows }) => await ex.run(x, rows)))
  together.forEach((y, i) => {
    assert.deepEqual(y, alone[i])
  })
})

test('int4 kernel: bad input is refused with the facts, and nothing is lost', async (t) => {
  const k = kernelOrSkip(t)
  if (k == null) return
  const dir = await tmp(t)
  const d = { hidden: 64, inter: 96 }
  const { graph } = await writeExpert(dir, d, 32, 9)
  const ex = await k.loadExpert(graph)
  const good = Float32Array.from({ length: 2 * d.hidden }, rng(1))
  const before = await ex.run(good, 2)
  await assert.rejects(ex.run(new Float32Array(d.hidden + 1), 1), /rows × hidden = 1 × 64/)
  await assert.rejects(ex.run(good, 0), /rows must be an integer/)
  await assert.rejects(ex.run(good, 1.5), /rows must be an integer/)
  // the expert still answers, the same
  assert.deepEqual(await ex.run(good, 2), before)
  const inFlight = ex.run(good, 2)
  ex.free()
  assert.deepEqual(await inFlight, before, 'a run in flight when freed completes')
  await assert.rejects(ex.run(good, 2), /freed/)

  // a truncated data file: the sections no longer fit
  const size = (await stat(join(dir, 'e.onnx.data'))).size
  await truncate(join(dir, 'e.onnx.data'), size - 100)
  await assert.rejects(k.loadExpert(graph), /past the end of the \d+-byte data file/)
  await rm(join(dir, 'e.onnx.data'))
  await assert.rejects(k.loadExpert(graph), /cannot open/)
  // not a graph, and a graph whose data lies outside the directory it must stay in
  await writeFile(join(dir, 'bad.onnx'), Buffer.from('not onnx at all'))
  await assert.rejects(readInt4Graph(join(dir, 'bad.onnx')), Int4GraphError)
  const inner = join(dir, 'inner')
  await import('node:fs/promises').then(async (fs) => await fs.mkdir(inner))
  const other = await writeExpert(inner, d, 32, 10)
  await assert.rejects(readInt4Graph(other.graph, join(dir, 'elsewhere')), /lies outside/)
})

test('int4 kernel: loadExpertRuntime uses it for int4 bundles and agrees with onnxruntime', async (t) => {
  const k = kernelOrSkip(t)
  if (k == null) return
  const dir = await tmp(t)
  await writeTinyCheckpoint(join(dir, 'hf'), { seed: 3 })
  await convertCheckpoint(join(dir, 'hf'), join(dir, 'b'), { quant: 'int4' })
  const bundle = await loadBundle(join(dir, 'b'))
  const pov = await loadExpertRuntime(bundle, [0, 1])
  const viaOrt = await loadExpertRuntime(bundle, [0, 1], { int4Kernel: 'ort' })
  t.after(async () => {
    await pov.close()
    await viaOrt.close()
  })
  assert.match(pov.engine, /^pov int4 kernel \((avx512vnni|avx2|portable), \d+ threads\)$/)
  assert.equal(viaOrt.engine, 'onnxruntime')
  assert.deepEqual(pov.experts(), viaOrt.experts())
  const D = bundle.config.hiddenSize
  for (const [l, e] of pov.experts()) {
    const x = Float32Array.from({ length: 3 * D }, rng(l * 8 + e))
    const a = await pov.runExpert(l, e, x, 3)
    const b = await viaOrt.runExpert(l, e, x, 3)
    assert.ok(maxDiff(a, b) / maxAbs(b) < 1e-4, `layer ${l} expert ${e}`)
  }
  await assert.rejects(pov.runExpert(0, 0, new Float32Array(D), 2), /expected rows × hidden/)
  await pov.close()
  await assert.rejects(pov.runExpert(0, 0, new Float32Array(D), 1), /closed/)
})

test('int4 kernel choice: the option, else POV_INT4_KERNEL, else pov; a bad value is named', (t) => {
  const saved = process.env.POV_INT4_KERNEL
  t.after(() => {
    if (saved == null) delete process.env.POV_INT4_KERNEL
    else process.env.POV_INT4_KERNEL = saved
  })
  delete process.env.POV_INT4_KERNEL
  assert.equal(int4KernelChoice(), 'pov')
  process.env.POV_INT4_KERNEL = 'ort'
  assert.equal(int4KernelChoice(), 'ort')
  assert.equal(int4KernelChoice('pov'), 'pov')
  process.env.POV_INT4_KERNEL = 'fast'
  assert.throws(() => int4KernelChoice(), /POV_INT4_KERNEL=fast: expected one of pov, ort/)
})
