// The ArtifactBuilder that `convertCheckpoint` calls to write the router's dense graphs into a
// bundle: dense/embed.onnx, dense/layer_NNN.onnx (one per layer), dense/head.onnx. Weights are
// inline in each graph (the largest, Mixtral's 32k × 4096 embedding, is 256 MiB in bf16 — far below
// ORT's 2 GiB inline limit) and keep the checkpoint's dtype; the dense part is not quantised.
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MixtralConfig } from '../config.js'
import type { CheckpointReader } from '../safetensors.js'
import { buildEmbedGraph, buildHeadGraph, buildLayerGraph, type RawWeight } from './graphs.js'

export const DENSE_DIR = 'dense'
export const denseEmbedPath = `${DENSE_DIR}/embed.onnx`
export const denseHeadPath = `${DENSE_DIR}/head.onnx`
export function denseLayerPath(layer: number): string {
  return `${DENSE_DIR}/layer_${String(layer).padStart(3, '0')}.onnx`
}

/** The manifest entry of one dense artifact (a structural subset of the bundle's ArtifactEntry). */
export interface DenseArtifactEntry {
  path: string
  sha256: string
  size: number
  kind: 'dense'
  /** 'embed' | 'layer' | 'head' */
  role: 'embed' | 'layer' | 'head'
  layer?: number
}

export interface DenseBuildContext {
  reader: CheckpointReader
  config: MixtralConfig
  bundleDir: string
  onProgress?: (event: { stage: string; done: number; total: number }) => void
}

async function raw(reader: CheckpointReader, name: string, shape: number[]): Promise<RawWeight> {
  const { info, bytes } = await reader.readRaw(name, shape)
  return { dtype: info.dtype, shape: info.shape, bytes }
}

/** Writes the dense graphs of the checkpoint into `<bundleDir>/dense/` and returns their entries. */
export async function buildDenseArtifacts(ctx: DenseBuildContext): Promise<DenseArtifactEntry[]> {
  const { reader, config: c, bundleDir } = ctx
  const H = c.hiddenSize
  const total = c.numLayers + 2
  let done = 0
  const entries: DenseArtifactEntry[] = []
  await mkdir(join(bundleDir, DENSE_DIR), { recursive: true })
  const emit = async (
    path: string,
    bytes: Uint8Array,
    role: DenseArtifactEntry['role'],
    layer?: number
  ): Promise<void> => {
    await writeFile(join(bundleDir, path), bytes)
    const entry: DenseArtifactEntry = {
      path,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.byteLength,
      kind: 'dense',
      role
    }
    if (layer !== undefined) entry.layer = layer
    entries.push(entry)
    ctx.onProgress?.({ stage: 'dense', done: ++done, total })
  }

  const embed = await raw(reader, 'model.embed_tokens.weight', [c.vocabSize, H])
  await emit(denseEmbedPath, buildEmbedGraph(c, embed), 'embed')

  const qd = c.numHeads * c.headDim
  const kvd = c.numKvHeads * c.headDim
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`
    const graph = buildLayerGraph(c, i, {
      inputNorm: await raw(reader, `${p}input_layernorm.weight`, [H]),
      q: await raw(reader, `${p}self_attn.q_proj.weight`, [qd, H]),
      k: await raw(reader, `${p}self_attn.k_proj.weight`, [kvd, H]),
      v: await raw(reader, `${p}self_attn.v_proj.weight`, [kvd, H]),
      o: await raw(reader, `${p}self_attn.o_proj.weight`, [H, qd]),
      postNorm: await raw(reader, `${p}post_attention_layernorm.weight`, [H]),
      gate: await raw(reader, `${p}block_sparse_moe.gate.weight`, [c.numExperts, H])
    })
    await emit(denseLayerPath(i), graph, 'layer', i)
  }

  // tie_word_embeddings: HF checkpoints then usually omit lm_head.weight; use the embedding table.
  const lmHead = reader.has('lm_head.weight')
    ? await raw(reader, 'lm_head.weight', [c.vocabSize, H])
    : c.tieWordEmbeddings
      ? embed
      : null
  if (lmHead == null)
    throw new Error('checkpoint has no lm_head.weight and tie_word_embeddings is false')
  await emit(
    denseHeadPath,
    buildHeadGraph(c, await raw(reader, 'model.norm.weight', [H]), lmHead),
    'head'
  )
  return entries
}
