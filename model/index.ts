// The compute plane's public surface: config, checkpoints, bundles, ONNX builders, ORT runtime.
export { parseMixtralConfig, readMixtralConfig, toHfConfigJson, ConfigError } from './config.js'
export type { MixtralConfig } from './config.js'
export {
  CheckpointReader,
  CheckpointError,
  encodeSafetensors,
  writeSafetensors,
  readSafetensorsHeader
} from './safetensors.js'
export type { SafeDtype, TensorInfo, TensorToWrite } from './safetensors.js'
export { writeTinyCheckpoint, tinyConfig, tinyDefaults, tinyTensors } from './tiny.js'
export type { TinyOptions } from './tiny.js'
export { loadTokenizer } from './tokenizer.js'
export type { PovTokenizer } from './tokenizer.js'
export * from './bundle/index.js'
export * from './runtime/index.js'
export { GraphBuilder, DT, MS_DOMAIN, float, floats } from './onnx/builder.js'
export {
  buildExpertModel,
  buildInt4ExpertFromFloats,
  buildInt4ExpertModel,
  buildInt8ExpertModel,
  INT4_BLOCK,
  INT4_BLOCKS,
  expertReference,
  EXPERT_INPUT,
  EXPERT_OUTPUT
} from './onnx/expert.js'
