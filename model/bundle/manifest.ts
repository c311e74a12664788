// The model bundle manifest: what a converted model is, artifact by artifact, and its model id.
// modelId = 0x + sha256(canonical JSON of the manifest without `modelId`) — the value governance
// approves on-chain and nodes register. Canonical = keys sorted at every level, no whitespace,
// so the id is independent of key order, paths on disk, and time of conversion.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import type { MixtralConfig } from '../config.js'
import type { Quant } from '../onnx/expert.js'

export type { Quant }
export const BUNDLE_FORMAT = 'pov-model-bundle'
export const BUNDLE_FORMAT_VERSION = 1
export const MANIFEST_FILE = 'manifest.json'

export interface ArtifactEntry {
  /** POSIX path relative to the bundle directory. */
  path: string
  /** lowercase hex sha256 of the file's bytes. */
  sha256: string
  size: number
  /** 'expert' | 'weights' | 'dense' | 'config' | 'tokenizer' | … */
  kind: string
  /** Free-form sub-kind (the dense builder uses 'embed' | 'layer' | 'head'). */
  role?: string
  layer?: number
  expert?: number
  /** Other artifacts this one needs at load time (external data files of an ONNX graph). */
  dependsOn?: string[]
}

export interface ShardSpec {
  id: number
  /** [layer, expert] pairs. */
  experts: Array<[number, number]>
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT
  formatVersion: number
  architecture: 'MixtralForCausalLM'
  config: MixtralConfig
  /** dtype of the checkpoint's expert weights: 'bf16' | 'f16' | 'f32'. */
  dtype: string
  quant: Quant
  /** Names of the expert graphs' input and output. */
  expertIo: { input: string; output: string }
  artifacts: ArtifactEntry[]
  shards: ShardSpec[]
  modelId: string
}

/** JSON with keys sorted at every level and no whitespace. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new Error(`canonicalJson: non-finite number ${v}`)
    return JSON.stringify(v)
  }
  if (Array.isArray(v))
    return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`
}

export function computeModelId(m: Omit<BundleManifest, 'modelId'> & { modelId?: string }): string {
  const { modelId: _omit, ...rest } = m
  return '0x' + createHash('sha256').update(canonicalJson(rest)).digest('hex')
}

/** The default layout: shard j = expert j in every layer (docs/architecture.md), so a Mixtral
 *  network has 8 shards and a node hosting two holds a quarter of the experts. */
export function defaultShards(numLayers: number, numExperts: number): ShardSpec[] {
  return Array.from({ length: numExperts }, (_, j) => ({
    id: j,
    experts: Array.from({ length: numLayers }, (_, l): [number, number] => [l, j])
  }))
}

/**
 * Expert graphs sit at the bundle root because ORT only follows external-data locations that are
 * relative and inside the .onnx file's own directory: from the root they can point into weights/.
 */
export function expertArtifactPath(layer: number, expert: number): string {
  return `expert-l${String(layer).padStart(3, '0')}-e${String(expert).padStart(3, '0')}.onnx`
}

export async function sha256File(
  path: string,
  onBytes?: (n: number) => void
): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) {
    h.update(chunk as Buffer)
    size += (chunk as Buffer).length
    onBytes?.((chunk as Buffer).length)
  }
  return { sha256: h.digest('hex'), size }
}
