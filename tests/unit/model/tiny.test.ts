import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { parseMixtralConfig, readMixtralConfig, ConfigError } from '../../../model/config.js'
import { loadTokenizer } from '../../../model/tokenizer.js'
import { CheckpointReader } from '../../../model/safetensors.js'

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pov-tiny-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  return d
}

async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const f of (await readdir(dir)).sort())
    out[f] = (await readFile(join(dir, f))).toString('base64')
  return out
}

test('init-tiny is deterministic for a seed and differs across seeds', async (t) => {
  const a = await tmp(t)
  const b = await tmp(t)
  const c = await tmp(t)
  await writeTinyCheckpoint(a, { seed: 3, dtype: 'bf16', shards: 2 })
  await writeTinyCheckpoint(b, { seed: 3, dtype: 'bf16', shards: 2 })
  await writeTinyCheckpoint(c, { seed: 4, dtype: 'bf16', shards: 2 })
  assert.deepEqual(await filesOf(a), await filesOf(b))
  assert.notDeepEqual(
    (await filesOf(a))['model-00001-of-00002.safetensors'],
    (await filesOf(c))['model-00001-of-00002.safetensors']
  )
})

test('config round-trips and has the HF fields; other sizes work', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(d, {
    layers: 3,
    hidden: 48,
    heads: 6,
    kvHeads: 3,
    experts: 4,
    topK: 1,
    vocab: 300,
    slidingWindow: 16,
    intermediate: 40
  })
  const cfg = await readMixtralConfig(d)
  assert.deepEqual(
    { ...cfg },
    {
      hiddenSize: 48,
      intermediateSize: 40,
      numLayers: 3,
      numHeads: 6,
      numKvHeads: 3,
      headDim: 8,
      numExperts: 4,
      topK: 1,
      vocabSize: 300,
      rmsNormEps: 1e-5,
      ropeTheta: 1e6,
      slidingWindow: 16,
      maxPositionEmbeddings: 4096,
      bosTokenId: 1,
      eosTokenId: 2,
      tieWordEmbeddings: false,
      torchDtype: 'float32'
    }
  )
  const raw = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'))
  assert.deepEqual(raw.architectures, ['MixtralForCausalLM'])
  const r = await CheckpointReader.open(d)
  t.after(async () => {
    await r.close()
  })
  assert.deepEqual(r.info('model.layers.2.block_sparse_moe.experts.3.w2.weight').shape, [48, 40])
  assert.deepEqual(r.info('model.layers.0.self_attn.k_proj.weight').shape, [24, 48])
  assert.deepEqual(r.info('lm_head.weight').shape, [300, 48])
})

test('parseMixtralConfig rejects invalid configs clearly', () => {
  const ok = {
    model_type: 'mixtral',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_local_experts: 8,
    num_experts_per_tok: 2,
    vocab_size: 512
  }
  assert.equal(parseMixtralConfig(ok).headDim, 16)
  assert.throws(
    () => parseMixtralConfig({ ...ok, hidden_size: undefined }),
    (e: Error) => e instanceof ConfigError && /missing required field "hidden_size"/.test(e.message)
  )
  assert.throws(
    () => parseMixtralConfig({ ...ok, num_experts_per_tok: 9 }),
    /num_experts_per_tok 9 > num_local_experts 8/
  )
  assert.throws(() => parseMixtralConfig({ ...ok, num_key_value_heads: 3 }), /not a multiple/)
  assert.throws(() => parseMixtralConfig({ ...ok, model_type: 'llama' }), /expected "mixtral"/)
  assert.throws(() => parseMixtralConfig({ ...ok, vocab_size: 1.5 }), /must be an integer/)
  assert.throws(() => parseMixtralConfig([]), /JSON object/)
})

test('tokenizer.json loads with @huggingface/tokenizers and round-trips text', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(d, { vocab: 400 })
  const json = JSON.parse(await readFile(join(d, 'tokenizer.json'), 'utf8'))
  const raw = new Tokenizer(
    json,
    JSON.parse(await readFile(join(d, 'tokenizer_config.json'), 'utf8'))
  )
  assert.equal(raw.token_to_id('<s>'), 1)
  const tok = await loadTokenizer(d)
  assert.equal(tok.vocabSize, 400)
  const text = 'Hello world! The capital of France is Paris. ünïcode 日本'
  const ids = tok.encode(text)
  assert.equal(ids[0], 1)
  assert.ok(ids.every((i) => i >= 0 && i < 400))
  assert.ok(ids.length < Buffer.byteLength(text), 'merges shorten the text')
  assert.equal(tok.decode(ids), text)
  assert.equal(tok.decode([]), '', 'no tokens decode to the empty string')
  assert.deepEqual(tok.encode('hi', { addSpecialTokens: false }).includes(1), false)
})
