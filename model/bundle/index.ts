export { convertCheckpoint, ConvertError } from './convert.js'
export type {
  ArtifactBuilder,
  ArtifactContext,
  ConvertOptions,
  OnProgress,
  ProgressEvent,
  WeightRef
} from './convert.js'
export { loadBundle, BundleError } from './load.js'
export type { Bundle, LoadBundleOptions } from './load.js'
export {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  MANIFEST_FILE,
  canonicalJson,
  computeModelId,
  defaultShards,
  expertArtifactPath,
  sha256File
} from './manifest.js'
export type { ArtifactEntry, BundleManifest, Quant, ShardSpec } from './manifest.js'
