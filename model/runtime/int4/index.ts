// pov's own int4 expert kernel (kernel.cc, a Node-API addon built by build.mjs at `npm ci`): the
// loader, and an expert read from an int4 bundle's graph. The graph stays the source of truth for
// the layout: its three MatMulNBits nodes give each weight's shape and block, and their
// initializers' external data give where the packed bytes lie in the data file. The kernel maps
// that file, repacks it once and drops it; runs are asynchronous (a libuv thread plus the
// kernel's own pool), so the calling thread's event loop keeps serving while an expert runs.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve, sep } from 'node:path'
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

/** Where one packed weight lies in the data file (what the addon's load() takes). */
export interface Int4Source {
  n: number
  k: number
  block: number
  bOffset: number
  bLength: number
  sOffset: number
  sLength: number
  zOffset: number
  zLength: number
}

export type Int4Handle = object & { readonly __int4: unique symbol }

interface Addon {
  load: (path: string, sources: [Int4Source, Int4Source, Int4Source]) => Promise<Int4Handle>
  run: (h: Int4Handle, x: Float32Array, rows: number, y: Float32Array) => Promise<Float32Array>
  free: (h: Int4Handle) => void
  info: () => { isa: string; threads: number }
  setThreads: (n: number) => void
  useIsa: (name: string) => string
}

/** The kernel's code paths, best first. */
export const INT4_ISAS = ['avx512vnni', 'avx2', 'portable'] as const

export interface Int4Kernel {
  /** The instruction set the kernel picked: avx512vnni, avx2 or portable. */
  readonly isa: string
  /** Threads of the kernel's pool (process-wide). */
  readonly threads: number
  /** Sets the pool's size (0: every core); applies from the next load or run. */
  setThreads: (n: number) => void
  /** Switches the code path ('' = the best this CPU has); returns the one in use (tests). */
  useIsa: (name: '' | (typeof INT4_ISAS)[number]) => string
  /** Loads one expert from an int4 expert graph (.onnx) whose weights are external data. */
  loadExpert: (graphPath: string, within?: string) => Promise<Int4Expert>
}

export interface Int4Expert {
  readonly hidden: number
  readonly inter: number
  /** x: rows × hidden fp32 → rows × hidden fp32. */
  run: (x: Float32Array, rows: number) => Promise<Float32Array>
  /** Releases the weights (after the runs in flight); later runs throw. */
  free: () => void
}

export class Int4GraphError extends Error {
  override name = 'Int4GraphError'
}

/** The project root: the first directory above `from` with a package.json (source or dist/). */
function projectRoot(from: string): string {
  let d = from
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'package.json'))) return d
    d = dirname(d)
  }
  return from
}

const ROOT = projectRoot(import.meta.dirname)
/** The addon build.mjs writes. */
export const INT4_ADDON = join(ROOT, 'build/native/pov_int4.node')
const SOURCE = join(ROOT, 'model/runtime/int4/kernel.cc')
const BUILD = join(ROOT, 'model/runtime/int4/build.mjs')

let loaded: { kernel: Int4Kernel } | { unavailable: string } | undefined

/** The kernel, or why it cannot be used (not built, stale, or failed to load). Loaded once. */
export function int4Kernel(): { kernel: Int4Kernel } | { unavailable: string } {
  loaded ??= open()
  return loaded
}

/** Whether the addon was built from this kernel.cc (build.mjs writes its sha256 beside it). */
function current(): boolean {
  if (!existsSync(INT4_ADDON)) return false
  // a copy without the source (an installed package) takes the addon as it is
  if (!existsSync(SOURCE)) return true
  const want = createHash('sha256').update(readFileSync(SOURCE)).digest('hex')
  const hashFile = `${INT4_ADDON}.source-sha256`
  return existsSync(hashFile) && readFileSync(hashFile, 'utf8').trim() === want
}

function open(): { kernel: Int4Kernel } | { unavailable: string } {
  // `npm ci` builds it; an install without scripts, or a kernel.cc changed since, builds it here,
  // once (g++, a few seconds)
  if (!current() && existsSync(BUILD)) {
    process.stderr.write("pov: compiling pov's int4 kernel (once; a few seconds)…\n")
    spawnSync(process.execPath, [BUILD], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
  if (!existsSync(INT4_ADDON))
    return { unavailable: `${INT4_ADDON} is not built (npm run build:int4; it needs g++)` }
  if (!current())
    return { unavailable: `${INT4_ADDON} was built from another kernel.cc (npm run build:int4)` }
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)(INT4_ADDON) as Addon
  } catch (err) {
    return { unavailable: `${INT4_ADDON} failed to load: ${(err as Error).message}` }
  }
  const kernel: Int4Kernel = {
    get isa() {
      return addon.info().isa
    },
    get threads() {
      return addon.info().threads
    },
    setThreads: (n) => {
      addon.setThreads(n)
    },
    useIsa: (name) => addon.useIsa(name),
    loadExpert: async (graphPath, within) => {
      const { dataPath, sources } = await readInt4Graph(graphPath, within)
      const h = await addon.load(dataPath, sources)
      const hidden = sources[0].k
      const inter = sources[0].n
      let freed = false
      return {
        hidden,
        inter,
        run: async (x, rows) => {
          if (freed) throw new Error('int4 expert was freed')
          return await addon.run(h, x, rows, new Float32Array(rows * hidden))
        },
        free: () => {
          if (freed) return
          freed = true
          addon.free(h)
        }
      }
    }
  }
  return { kernel }
}

const num = (v: unknown): number => Number(typeof v === 'object' && v != null ? String(v) : v)

/**
 * Reads an int4 expert graph (model/onnx/expert.ts, buildInt4ExpertModel): the three MatMulNBits
 * nodes w1, w3, w2 and where their B, scales and zero points lie in the one data file they share.
 * `within`: a directory the data file must lie inside (the bundle's).
 */
export async function readInt4Graph(
  graphPath: string,
  within?: string
): Promise<{ dataPath: string; sources: [Int4Source, Int4Source, Int4Source] }> {
  const fail = (msg: string): never => {
    throw new Int4GraphError(`${graphPath}: ${msg}`)
  }
  let model: onnxProto.onnx.ModelProto
  try {
    model = onnx.ModelProto.decode(await readFile(graphPath))
  } catch (err) {
    return fail(`not an ONNX model: ${(err as Error).message}`)
  }
  const graph = model.graph ?? fail('the model has no graph')
  const inits = new Map<string, onnxProto.onnx.ITensorProto>()
  for (const t of graph.initializer ?? []) if (t.name != null) inits.set(t.name, t)
  let dataPath: string | undefined
  const ext = (name: string | undefined, what: string): { offset: number; length: number } => {
    const t = (name != null && name !== '' ? inits.get(name) : undefined) ?? fail(`no ${what}`)
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL)
      fail(`${what} (${name}) is not external data`)
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']))
    const location = kv.get('location') ?? fail(`${what} (${name}) has no location`)
    const path = resolve(dirname(graphPath), location)
    const root = resolve(within ?? dirname(graphPath))
    if (!path.startsWith(root + sep)) fail(`${what} (${name}) lies outside ${root}: ${location}`)
    if (dataPath != null && dataPath !== path)
      fail(`the weights are in two files (${dataPath}, ${path}); the kernel reads one`)
    dataPath = path
    const length = kv.get('length')
    if (length == null) fail(`${what} (${name}) has no length`)
    return { offset: num(kv.get('offset') ?? 0), length: num(length) }
  }
  const byName = new Map<string, Int4Source>()
  for (const node of graph.node ?? []) {
    if (node.opType !== 'MatMulNBits') continue
    const attr = new Map((node.attribute ?? []).map((a) => [a.name ?? '', num(a.i ?? 0)]))
    // the builder names the node after its weight (w1 → "w1_node")
    const name = (node.name ?? '').replace(/_node$/, '')
    if (!['w1', 'w2', 'w3'].includes(name)) fail(`unexpected MatMulNBits node "${node.name}"`)
    if (attr.get('bits') !== 4) fail(`${name}: bits ${attr.get('bits')}, the kernel reads 4`)
    const [, b, s, z] = node.input ?? []
    const wb = ext(b, `${name}'s packed weights`)
    const ws = ext(s, `${name}'s scales`)
    const wz = ext(z, `${name}'s zero points`)
    byName.set(name, {
      n: attr.get('N') ?? fail(`${name}: no N`),
      k: attr.get('K') ?? fail(`${name}: no K`),
      block: attr.get('block_size') ?? fail(`${name}: no block_size`),
      bOffset: wb.offset,
      bLength: wb.length,
      sOffset: ws.offset,
      sLength: ws.length,
      zOffset: wz.offset,
      zLength: wz.length
    })
  }
  const get = (n: string): Int4Source =>
    byName.get(n) ?? fail(`no MatMulNBits node ${n}: not an int4 expert graph`)
  const sources: [Int4Source, Int4Source, Int4Source] = [get('w1'), get('w3'), get('w2')]
  return { dataPath: dataPath ?? fail('no external data'), sources }
}
