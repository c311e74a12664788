// Loading a bundle: parse manifest.json, check it names itself correctly (model id), and verify
// artifacts' sha256 — all up front (default), or lazily, artifact by artifact, when a runtime
// is about to load them (a node hosting 2 of 8 shards need not hash the other 6).
import { readFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { parseMixtralConfig, toHfConfigJson, type MixtralConfig } from '../config.js'
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  MANIFEST_FILE,
  computeModelId,
  sha256File,
  type ArtifactEntry,
  type BundleManifest
} from './manifest.js'

/** Artifacts hashed at once by `verify`. */
const VERIFY_CONCURRENCY = 2

export class BundleError extends Error {
  override name = 'BundleError'
}

export interface Bundle {
  dir: string
  manifest: BundleManifest
  modelId: string
  config: MixtralConfig
  /** The manifest entry for `path`; throws BundleError if there is none. */
  artifact: (path: string) => ArtifactEntry
  /** Absolute path of an artifact. */
  resolve: (path: string) => string
  /** Verifies (once) the artifacts and everything they depend on; throws BundleError on mismatch. */
  verify: (paths: string[]) => Promise<void>
}

export interface LoadBundleOptions {
  /** 'eager' (default): hash every artifact now; 'lazy': when `verify` is called; 'none'. */
  verify?: 'eager' | 'lazy' | 'none'
}

export async function loadBundle(dirIn: string, opts: LoadBundleOptions = {}): Promise<Bundle> {
  const dir = resolve(dirIn)
  const path = join(dir, MANIFEST_FILE)
  let manifest: BundleManifest
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as BundleManifest
  } catch (err) {
    throw new BundleError(`${path}: cannot read the bundle manifest: ${(err as Error).message}`)
  }
  if (manifest?.format !== BUNDLE_FORMAT)
    throw new BundleError(
      `${path}: not a pov model bundle (format ${JSON.stringify(manifest?.format)})`
    )
  if (manifest.formatVersion !== BUNDLE_FORMAT_VERSION)
    throw new BundleError(
      `${path}: bundle format version ${manifest.formatVersion} is not supported (expected ${BUNDLE_FORMAT_VERSION}); re-run pov model convert`
    )
  const want = computeModelId(manifest)
  if (manifest.modelId !== want)
    throw new BundleError(
      `${path}: modelId ${manifest.modelId} does not match the manifest's contents (${want}): the manifest was edited`
    )
  let config: MixtralConfig
  try {
    config = parseMixtralConfig(toHfConfigJson(manifest.config))
  } catch (err) {
    throw new BundleError(`${path}: invalid config: ${(err as Error).message}`)
  }
  const byPath = new Map<string, ArtifactEntry>()
  for (const a of manifest.artifacts) {
    const full = join(dir, a.path)
    if (!full.startsWith(dir + sep))
      throw new BundleError(`${path}: artifact path "${a.path}" escapes the bundle directory`)
    byPath.set(a.path, a)
  }
  const verified = new Map<string, Promise<void>>()
  const artifact = (p: string): ArtifactEntry => {
    const a = byPath.get(p)
    if (a == null) throw new BundleError(`${dir}: the manifest lists no artifact "${p}"`)
    return a
  }
  const verifyOne = async (a: ArtifactEntry): Promise<void> => {
    const file = join(dir, a.path)
    let got: { sha256: string; size: number }
    try {
      got = await sha256File(file)
    } catch (err) {
      throw new BundleError(`${file}: missing or unreadable artifact: ${(err as Error).message}`)
    }
    if (got.size !== a.size)
      throw new BundleError(
        `${file}: size ${got.size} bytes, the manifest says ${a.size}: the bundle is corrupt or incomplete`
      )
    if (got.sha256 !== a.sha256)
      throw new BundleError(
        `${file}: sha256 ${got.sha256} does not match the manifest (${a.sha256}): the bundle is corrupt or was modified`
      )
  }
  const verify = async (paths: string[]): Promise<void> => {
    const all = new Set<string>()
    const add = (p: string): void => {
      if (all.has(p)) return
      all.add(p)
      for (const d of artifact(p).dependsOn ?? []) add(d)
    }
    paths.forEach(add)
    // a few files at a time: every stream holds up to 4 MiB in flight, and hashing a whole shard
    // at once (64 files of a Mixtral int4 shard) left ~0.3 GiB of freed buffers in the node's RSS,
    // which a 4 GB node cannot spare; the hashing is CPU-bound anyway
    const queue = [...all]
    const one = async (p: string): Promise<void> => {
      let v = verified.get(p)
      if (v == null) {
        v = verifyOne(artifact(p))
        verified.set(p, v)
        v.catch(() => verified.delete(p))
      }
      await v
    }
    await Promise.all(
      Array.from({ length: Math.min(VERIFY_CONCURRENCY, queue.length) }, async () => {
        for (let p = queue.shift(); p != null; p = queue.shift()) await one(p)
      })
    )
  }
  const bundle: Bundle = {
    dir,
    manifest,
    modelId: manifest.modelId,
    config,
    artifact,
    resolve: (p) => join(dir, artifact(p).path),
    verify
  }
  const mode = opts.verify ?? 'eager'
  if (mode === 'eager') await verify(manifest.artifacts.map((a) => a.path))
  else if (mode === 'none')
    for (const a of manifest.artifacts) verified.set(a.path, Promise.resolve())
  return bundle
}
