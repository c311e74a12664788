// An int4 bundle of random weights at any dims, written directly as packed 4-bit bytes (nothing
// is quantised): what a memory or speed measurement of real-size experts needs when the real
// checkpoint is not at hand (bench:edge serves one Mixtral 8x7B shard of it, 3.6 GB). The bytes
// of a MatMulNBits weight are the same size whatever their values, and random nibbles exercise
// the same kernel path as trained ones.
import { createHash, randomFillSync } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseMixtralConfig, toHfConfigJson, type MixtralConfig } from '../config.js'
import {
  buildInt4ExpertModel,
  EXPERT_INPUT,
  EXPERT_OUTPUT,
  type Int4Linear
} from '../onnx/expert.js'
import { int4DataPath, writeChunks } from './convert.js'
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  MANIFEST_FILE,
  canonicalJson,
  computeModelId,
  expertArtifactPath,
  type ArtifactEntry,
  type BundleManifest,
  type ShardSpec
} from './manifest.js'

/** Mixtral 8x7B's config.json, camelCased (the dims bench:edge builds). */
export const MIXTRAL_8X7B: MixtralConfig = parseMixtralConfig(
  toHfConfigJson({
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    numExperts: 8,
    topK: 2,
    vocabSize: 32000,
    rmsNormEps: 1e-5,
    ropeTheta: 1e6,
    slidingWindow: null,
    maxPositionEmbeddings: 32768,
    bosTokenId: 1,
    eosTokenId: 2,
    tieWordEmbeddings: false,
    torchDtype: 'bfloat16'
  })
)

export interface RandomInt4Options {
  config: MixtralConfig
  /** Shard ids (default layout: shard j = expert j of every layer) whose experts are written. */
  shards: number[]
  block: number
  seed?: number
  /** Called after each (layer, expert) is written. */
  onExpert?: (done: number, total: number) => void
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 2 ** 32
  }
}

function randomLinear(n: number, k: number, block: number, rnd: () => number): Int4Linear {
  const kBlocks = Math.ceil(k / block)
  const b = randomFillSync(new Uint8Array((n * kBlocks * block) / 2))
  const zeroPoints = randomFillSync(new Uint8Array(n * Math.ceil(kBlocks / 2)))
  // scales of a trained layer's size (weights ~±0.02), so outputs stay finite and small
  const scales = new Float32Array(n * kBlocks)
  for (let i = 0; i < scales.length; i++) scales[i] = 0.001 + 0.002 * rnd()
  return { b, scales, zeroPoints }
}

/**
 * Writes a bundle holding only the experts of `shards` (the manifest lists just those shards) to
 * `dir` and returns its manifest. Experts-only: no dense graphs, no tokenizer (a node needs none).
 */
export async function writeRandomInt4Bundle(
  dirIn: string,
  opts: RandomInt4Options
): Promise<BundleManifest> {
  const dir = resolve(dirIn)
  const { config: c, block } = opts
  await mkdir(dir, { recursive: true })
  const rnd = xorshift(opts.seed ?? 1)
  const artifacts: ArtifactEntry[] = []
  const shards: ShardSpec[] = []
  const total = opts.shards.length * c.numLayers
  let done = 0
  for (const j of opts.shards) {
    if (!Number.isSafeInteger(j) || j < 0 || j >= c.numExperts)
      throw new Error(`shard ${j} is not an expert index of this model (0..${c.numExperts - 1})`)
    const experts: Array<[number, number]> = []
    for (let l = 0; l < c.numLayers; l++) {
      const path = expertArtifactPath(l, j)
      const location = int4DataPath(path)
      const { model, data } = buildInt4ExpertModel(
        { hidden: c.hiddenSize, inter: c.intermediateSize },
        {
          w1: randomLinear(c.intermediateSize, c.hiddenSize, block, rnd),
          w2: randomLinear(c.hiddenSize, c.intermediateSize, block, rnd),
          w3: randomLinear(c.intermediateSize, c.hiddenSize, block, rnd)
        },
        { block, location, meta: { layer: String(l), expert: String(j) } }
      )
      artifacts.push(await writeChunks(dir, location, data.chunks))
      await writeFile(join(dir, path), model)
      artifacts.push({
        path,
        kind: 'expert',
        layer: l,
        expert: j,
        sha256: createHash('sha256').update(model).digest('hex'),
        size: model.byteLength,
        dependsOn: [location]
      })
      experts.push([l, j])
      opts.onExpert?.(++done, total)
    }
    shards.push({ id: j, experts })
  }
  artifacts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const body: Omit<BundleManifest, 'modelId'> = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    architecture: 'MixtralForCausalLM',
    config: c,
    dtype: 'bf16',
    quant: 'int4',
    expertIo: { input: EXPERT_INPUT, output: EXPERT_OUTPUT },
    artifacts,
    shards
  }
  const manifest: BundleManifest = {
    ...JSON.parse(canonicalJson(body)),
    modelId: computeModelId(body)
  }
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}
