// HF MixtralForCausalLM checkpoint -> pov model bundle.
//
// Layout of a bundle directory:
//   manifest.json                      what is in it, sha256 of every artifact, the model id
//   config.json, tokenizer.json, (tokenizer_config.json, generation_config.json when present)
//   expert-lLLL-eEEE.onnx              one graph per (layer, expert)
//   weights/<checkpoint files>         quant 'none' only: the safetensors files, hard-linked
//   dense/…                            the router's dense graphs (model/dense; unless dense: false)
//   draft/config.json, *.safetensors   the speculative-decoding draft, when the checkpoint has one
//                                      (model/draft/model-draft.ts); NOT in the manifest: a draft
//                                      never changes what the model computes, only how fast, so it
//                                      is no part of the model id governance approves
//
// One artifact per (layer, expert) rather than one per shard: a call always names one
// (layer, expert), so one session per expert runs exactly that graph (no If/switch, no wasted
// outputs), shards of any layout are just sets of files, and a node can load or verify experts
// one at a time. Mixtral has 256 of them; a session's fixed cost per run is small (docs/toolchain.md).
//
// quant 'none' is zero-copy: the expert graphs use ONNX external data pointing straight into the
// safetensors files (offset = 8 + header + data_offsets[0]). ORT follows only locations inside the
// model's directory, so the checkpoint files are hard-linked into weights/ (no extra disk space,
// immune to the source being moved or deleted); across file systems they are copied. Symlinks
// are not used: they break when the source moves and could point outside the bundle.
// bf16/f16 weights keep their dtype on disk; the graph Casts them to fp32 (ORT folds that at load).
// int8: weights are read, quantised in fp32 and stored inline in each expert graph.
// int4: the same, but the packed weights go to `expert-lLLL-eEEE.onnx.data` beside the graph
// (ONNX external data, page-aligned): ORT maps it and keeps only its prepacked copy resident.
import { copyFile, link, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve, sep } from 'node:path'
import { createHash } from 'node:crypto'
import { readMixtralConfig, type MixtralConfig } from '../config.js'
import { CheckpointReader, INDEX_FILE, type SafeDtype } from '../safetensors.js'
import { DRAFT_DIR, readDraftWeights } from '../draft/model-draft.js'
import { ONNX_TYPE_OF, type DataType, type ExternalRef } from '../onnx/builder.js'
import {
  buildExpertModel,
  buildInt4ExpertFromFloats,
  buildInt8ExpertModel,
  INT4_BLOCK,
  INT4_BLOCKS,
  EXPERT_INPUT,
  EXPERT_OUTPUT,
  type Quant
} from '../onnx/expert.js'
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  MANIFEST_FILE,
  canonicalJson,
  computeModelId,
  defaultShards,
  expertArtifactPath,
  sha256File,
  type ArtifactEntry,
  type BundleManifest
} from './manifest.js'
import { buildDenseArtifacts } from '../dense/build.js'

export interface ProgressEvent {
  /** 'experts' | 'weights' | 'hash' | 'dense' | … */
  stage: string
  done: number
  total: number
}

export type OnProgress = (event: ProgressEvent) => void

/** An external-data reference into the bundle's weights/ copy of a checkpoint tensor. */
export interface WeightRef extends ExternalRef {
  dtype: SafeDtype
  onnxType: DataType
  shape: number[]
}

export interface ArtifactContext {
  reader: CheckpointReader
  config: MixtralConfig
  bundleDir: string
  quant: Quant
  onProgress?: OnProgress
  /**
   * Links the checkpoint file holding `tensor` into weights/ (once) and returns an external-data
   * reference usable from an .onnx file at the bundle root. Add `ref.location` to the entry's
   * `dependsOn` so lazy verification checks it.
   */
  weightRef: (tensor: string) => Promise<WeightRef>
}

/**
 * The extension point for other parts of the model (the router's dense graphs): write files
 * under `ctx.bundleDir` and return their manifest entries (sha256 + size of each file).
 */
export type ArtifactBuilder = (ctx: ArtifactContext) => Promise<ArtifactEntry[]>

export interface ConvertOptions {
  quant?: Quant
  onProgress?: OnProgress
  /**
   * Write the router's dense graphs (dense/, model/dense) so the bundle can generate on its own.
   * @default true — false makes an experts-only bundle (enough for a node).
   */
  dense?: boolean
  /** More artifacts, written after the experts and the dense graphs. */
  extraBuilders?: ArtifactBuilder[]
  /** Replace an existing bundle in bundleDir (only a directory holding a manifest.json). */
  force?: boolean
  /** 'hardlink' (default; copies across file systems) or 'copy'. */
  link?: 'hardlink' | 'copy'
  /** A model draft to carry into the bundle's draft/ (checked first: loads, shares the
   *  vocabulary). @default `<hfDir>/draft` when that exists; false: none. */
  draft?: string | false
  /** int4 block size along K (INT4_BLOCKS; default INT4_BLOCK): larger = fewer bytes, coarser. */
  int4Block?: number
}

const DTYPE_NAME: Record<SafeDtype, string> = { F32: 'f32', F16: 'f16', BF16: 'bf16' }
const SIDE_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']

export class ConvertError extends Error {
  override name = 'ConvertError'
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

async function prepareDir(bundleDir: string, force: boolean): Promise<void> {
  if (await exists(bundleDir)) {
    const entries = await readdir(bundleDir)
    if (entries.length > 0) {
      if (!entries.includes(MANIFEST_FILE))
        throw new ConvertError(
          `${bundleDir} exists and is not empty (and is not a bundle): choose an empty or new directory`
        )
      if (!force)
        throw new ConvertError(`${bundleDir} already holds a bundle: pass --force to replace it`)
      await rm(bundleDir, { recursive: true })
    }
  }
  await mkdir(bundleDir, { recursive: true })
}

async function placeFile(src: string, dst: string, mode: 'hardlink' | 'copy'): Promise<void> {
  if (mode === 'hardlink') {
    try {
      await link(src, dst)
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw err
    }
  }
  await copyFile(src, dst)
}

/** Converts the HF checkpoint in `hfDir` into a bundle in `bundleDir`; returns the manifest. */
export async function convertCheckpoint(
  hfDirIn: string,
  bundleDirIn: string,
  opts: ConvertOptions = {}
): Promise<BundleManifest> {
  const hfDir = resolve(hfDirIn)
  const bundleDir = resolve(bundleDirIn)
  const quant = opts.quant ?? 'none'
  if (!['none', 'int8', 'int4'].includes(quant))
    throw new ConvertError(`unknown quantisation "${quant}" (none|int8|int4)`)
  const int4Block = opts.int4Block ?? INT4_BLOCK
  if (!(INT4_BLOCKS as readonly number[]).includes(int4Block))
    throw new ConvertError(`int4 block size ${int4Block} is not one of ${INT4_BLOCKS.join(', ')}`)
  if (opts.int4Block != null && quant !== 'int4')
    throw new ConvertError(`an int4 block size applies to --quant int4 only (quant is ${quant})`)
  const config = await readMixtralConfig(hfDir)
  const reader = await CheckpointReader.open(hfDir)
  try {
    await prepareDir(bundleDir, opts.force === true)
    const artifacts: ArtifactEntry[] = []
    const progress = opts.onProgress
    const linked = new Set<string>()
    const weightRef = async (tensor: string): Promise<WeightRef> => {
      const info = reader.info(tensor)
      const name = basename(info.file)
      const location = `weights/${name}`
      if (!linked.has(name)) {
        linked.add(name)
        await mkdir(join(bundleDir, 'weights'), { recursive: true })
        await placeFile(info.file, join(bundleDir, location), opts.link ?? 'hardlink')
      }
      return {
        location,
        offset: info.byteOffset,
        length: info.byteLength,
        dtype: info.dtype,
        onnxType: ONNX_TYPE_OF[info.dtype],
        shape: info.shape
      }
    }
    const ctx: ArtifactContext = {
      reader,
      config,
      bundleDir,
      quant,
      onProgress: progress,
      weightRef
    }

    // Side files: config + tokenizer, byte for byte.
    await placeSideFiles(hfDir, bundleDir, artifacts)

    // Experts.
    const { numLayers: L, numExperts: E, hiddenSize: D, intermediateSize: F } = config
    const dims = { hidden: D, inter: F }
    const total = L * E
    let done = 0
    let dtype: SafeDtype | null = null
    for (let l = 0; l < L; l++) {
      for (let e = 0; e < E; e++) {
        const p = `model.layers.${l}.block_sparse_moe.experts.${e}`
        const shapes = { w1: [F, D], w2: [D, F], w3: [F, D] } as const
        for (const w of ['w1', 'w2', 'w3'] as const) {
          const info = reader.info(`${p}.${w}.weight`)
          if (info.shape.join(',') !== shapes[w].join(',')) {
            throw new ConvertError(
              `${info.file}: tensor "${info.name}" has shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(shapes[w])} from config.json`
            )
          }
          dtype ??= info.dtype
        }
        const meta = { layer: String(l), expert: String(e) }
        let bytes: Uint8Array
        const dependsOn = new Set<string>()
        if (quant === 'none') {
          const refs = {
            w1: await weightRef(`${p}.w1.weight`),
            w2: await weightRef(`${p}.w2.weight`),
            w3: await weightRef(`${p}.w3.weight`)
          }
          for (const r of Object.values(refs)) dependsOn.add(r.location)
          const src = (r: WeightRef) => ({
            dtype: r.onnxType,
            ref: { location: r.location, offset: r.offset, length: r.length }
          })
          bytes = buildExpertModel(
            dims,
            { w1: src(refs.w1), w2: src(refs.w2), w3: src(refs.w3) },
            meta
          )
        } else {
          const w = {
            w1: await reader.readFloat32(`${p}.w1.weight`, [F, D]),
            w2: await reader.readFloat32(`${p}.w2.weight`, [D, F]),
            w3: await reader.readFloat32(`${p}.w3.weight`, [F, D])
          }
          if (quant === 'int8') bytes = buildInt8ExpertModel(dims, w, meta)
          else {
            const location = int4DataPath(expertArtifactPath(l, e))
            const built = buildInt4ExpertFromFloats(dims, w, { block: int4Block, location, meta })
            bytes = built.model
            artifacts.push(await writeChunks(bundleDir, location, built.data.chunks))
            dependsOn.add(location)
          }
        }
        const path = expertArtifactPath(l, e)
        await mkdir(join(bundleDir, path, '..'), { recursive: true })
        await writeFile(join(bundleDir, path), bytes)
        const entry: ArtifactEntry = {
          path,
          kind: 'expert',
          layer: l,
          expert: e,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          size: bytes.byteLength
        }
        if (dependsOn.size > 0) entry.dependsOn = [...dependsOn].sort()
        artifacts.push(entry)
        progress?.({ stage: 'experts', done: ++done, total })
      }
    }

    // a caller that still lists buildDenseArtifacts itself gets it once
    const builders = new Set([
      ...(opts.dense === false ? [] : [buildDenseArtifacts]),
      ...(opts.extraBuilders ?? [])
    ])
    for (const build of builders) {
      for (const a of await build(ctx)) artifacts.push(a)
    }

    // Linked checkpoint files (by now every builder has asked for what it needs): hash them.
    const names = [...linked].sort()
    let hashed = 0
    const totalBytes = (
      await Promise.all(names.map(async (n) => (await stat(join(bundleDir, 'weights', n))).size))
    ).reduce((a, b) => a + b, 0)
    for (const n of names) {
      const path = `weights/${n}`
      const { sha256, size } = await sha256File(join(bundleDir, path), (b) => {
        hashed += b
        progress?.({ stage: 'hash', done: hashed, total: totalBytes })
      })
      artifacts.push({ path, kind: 'weights', sha256, size })
    }

    checkArtifacts(bundleDir, artifacts)
    artifacts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    const body: Omit<BundleManifest, 'modelId'> = {
      format: BUNDLE_FORMAT,
      formatVersion: BUNDLE_FORMAT_VERSION,
      architecture: 'MixtralForCausalLM',
      config,
      dtype: DTYPE_NAME[dtype ?? 'F32'],
      quant,
      expertIo: { input: EXPERT_INPUT, output: EXPERT_OUTPUT },
      artifacts,
      shards: defaultShards(L, E)
    }
    // Round-trip through canonical JSON so the manifest holds exactly what was hashed.
    const manifest: BundleManifest = {
      ...JSON.parse(canonicalJson(body)),
      modelId: computeModelId(body)
    }
    await writeFile(join(bundleDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
    await placeDraft(hfDir, bundleDir, config, opts)
    return manifest
  } finally {
    await reader.close()
  }
}

/** Copies the model draft (see ConvertOptions.draft) into `bundleDir/draft/` after checking it. */
async function placeDraft(
  hfDir: string,
  bundleDir: string,
  config: MixtralConfig,
  opts: ConvertOptions
): Promise<void> {
  if (opts.draft === false) return
  const src = resolve(opts.draft ?? join(hfDir, DRAFT_DIR))
  if (opts.draft == null && !(await exists(src))) return
  let draft
  try {
    draft = await readDraftWeights(src)
  } catch (err) {
    throw new ConvertError(`the draft in ${src} cannot be used: ${(err as Error).message}`)
  }
  if (draft.config.vocabSize !== config.vocabSize)
    throw new ConvertError(
      `the draft in ${src} has a vocabulary of ${draft.config.vocabSize} tokens, the model ${config.vocabSize}: a draft must share the model's tokenizer`
    )
  const dst = join(bundleDir, DRAFT_DIR)
  await mkdir(dst, { recursive: true })
  for (const f of await readdir(src)) {
    if (f === 'config.json' || f === INDEX_FILE || f.endsWith('.safetensors'))
      await placeFile(join(src, f), join(dst, f), opts.link ?? 'hardlink')
  }
}

async function placeSideFiles(
  hfDir: string,
  bundleDir: string,
  artifacts: ArtifactEntry[]
): Promise<void> {
  const files = [
    ['config.json', 'config'],
    ...SIDE_FILES.map((f) => [f, f === 'generation_config.json' ? 'config' : 'tokenizer'])
  ]
  for (const [f, kind] of files) {
    const src = join(hfDir, f)
    if (!(await exists(src))) {
      if (f === 'tokenizer.json')
        throw new ConvertError(`${src} is missing: the bundle needs the model's tokenizer`)
      continue
    }
    await copyFile(src, join(bundleDir, f))
    const { sha256, size } = await sha256File(join(bundleDir, f))
    artifacts.push({ path: f, kind, sha256, size })
  }
}

/** Where an int4 expert graph's external data lives: beside it, `<graph>.data`. */
export function int4DataPath(graphPath: string): string {
  return `${graphPath}.data`
}

/** Writes `chunks` to bundleDir/path and returns its manifest entry (kind 'weights'). */
export async function writeChunks(
  bundleDir: string,
  path: string,
  chunks: Uint8Array[]
): Promise<ArtifactEntry> {
  const h = createHash('sha256')
  let size = 0
  for (const c of chunks) {
    h.update(c)
    size += c.byteLength
  }
  await mkdir(join(bundleDir, path, '..'), { recursive: true })
  await writeFile(join(bundleDir, path), chunks)
  return { path, kind: 'weights', sha256: h.digest('hex'), size }
}

function checkArtifacts(bundleDir: string, artifacts: ArtifactEntry[]): void {
  const seen = new Set<string>()
  for (const a of artifacts) {
    const full = join(bundleDir, a.path)
    if (
      a.path.includes('\\') ||
      relative(bundleDir, full).startsWith('..') ||
      full === bundleDir ||
      !full.startsWith(bundleDir.replace(/\/$/, '') + sep)
    ) {
      throw new ConvertError(
        `artifact path "${a.path}" must be a relative POSIX path inside the bundle`
      )
    }
    if (seen.has(a.path)) throw new ConvertError(`artifact "${a.path}" listed twice`)
    if (!/^[0-9a-f]{64}$/.test(a.sha256))
      throw new ConvertError(`artifact "${a.path}": sha256 must be 64 lowercase hex digits`)
    seen.add(a.path)
  }
}
