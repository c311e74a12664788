// The fixture of the generation oracle tests: a tiny random Mixtral checkpoint, its dense runtime
// (the bundle's dense artifacts) and the float64 reference model of the same weights.
import { join } from 'node:path'
import { writeTinyCheckpoint, type TinyOptions } from '../../../model/tiny.js'
import { readMixtralConfig } from '../../../model/config.js'
import { CheckpointReader } from '../../../model/safetensors.js'
import {
  buildDenseArtifacts,
  loadDenseRuntime,
  type DenseRuntime
} from '../../../model/dense/index.js'
import { loadReferenceModel, type ReferenceModel } from '../../../model/reference.js'

/** Writes the checkpoint to `dir`/hf and the dense bundle to `dir`/bundle; the caller closes
 *  `dense`. */
export async function tinyDenseAndReference(
  dir: string,
  opts: TinyOptions
): Promise<{ dense: DenseRuntime; ref: ReferenceModel }> {
  const hf = join(dir, 'hf')
  const bundle = join(dir, 'bundle')
  await writeTinyCheckpoint(hf, opts)
  const config = await readMixtralConfig(hf)
  const reader = await CheckpointReader.open(hf)
  try {
    await buildDenseArtifacts({ reader, config, bundleDir: bundle })
  } finally {
    await reader.close()
  }
  const dense = await loadDenseRuntime({ dir: bundle, config })
  return { dense, ref: await loadReferenceModel(hf) }
}
