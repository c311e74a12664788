// The router's dense part: ONNX graphs (build.ts, graphs.ts) and their runtime (runtime.ts).
export {
  buildDenseArtifacts,
  DENSE_DIR,
  denseEmbedPath,
  denseHeadPath,
  denseLayerPath
} from './build.js'
export type { DenseArtifactEntry, DenseBuildContext } from './build.js'
export { loadDenseRuntime, KvCache, attentionBias } from './runtime.js'
export type { AttentionResult, DenseBundle, DenseRuntime, DenseRuntimeOptions } from './runtime.js'
export type { Device, MiniLogger } from './session.js'
