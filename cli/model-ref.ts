// `--model` on chain commands takes a model id or a bundle directory (whose manifest holds the id),
// so nobody has to copy a 66-character id between commands.
import { readFileSync, statSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { MANIFEST_FILE } from '../model/bundle/manifest.js'
import { UserError } from './errors.js'

export interface BundleModel {
  dir: string
  modelId: string
  layers: number
  experts: number
  shardCount: number
  /** The bundle's file:// URL (what `pov infer` opens when no --bundle is given). */
  uri: string
  name: string
}

const MODEL_ID = /^0x[0-9a-fA-F]{64}$/

export function isModelId(v: string): boolean {
  return MODEL_ID.test(v)
}

/** What the approval of a bundle needs, read from its manifest only (no artifact is loaded). */
export function readBundleModel(dir: string): BundleModel {
  const path = resolve(dir, MANIFEST_FILE)
  let m: {
    modelId?: string
    config?: { numLayers?: number; numExperts?: number }
    shards?: unknown[]
  }
  try {
    m = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
    throw new UserError(
      missing
        ? `"${dir}" is neither a model id (0x + 64 hex digits) nor a bundle directory (no ${MANIFEST_FILE}) — convert a checkpoint with \`pov model convert HF_DIR ${dir}\``
        : `cannot read ${path}: ${(err as Error).message}`
    )
  }
  if (
    typeof m.modelId !== 'string' ||
    !isModelId(m.modelId) ||
    m.config?.numLayers == null ||
    m.config.numExperts == null ||
    !Array.isArray(m.shards)
  )
    throw new UserError(`${path} is not a pov bundle manifest (no modelId, config or shards)`)
  return {
    dir: resolve(dir),
    modelId: m.modelId.toLowerCase(),
    layers: m.config.numLayers,
    experts: m.config.numExperts,
    shardCount: m.shards.length,
    uri: pathToFileURL(resolve(dir)).href,
    name: basename(resolve(dir))
  }
}

/** A model id as given, or the id of the bundle in that directory. */
export function resolveModelId(value: string, flag = '--model'): string {
  if (isModelId(value)) return value.toLowerCase()
  let isDir = false
  try {
    isDir = statSync(value).isDirectory()
  } catch {}
  if (!isDir)
    throw new UserError(
      `invalid ${flag} "${value}": expected a model id (0x followed by 64 hex digits) or a bundle directory`
    )
  return readBundleModel(value).modelId
}
