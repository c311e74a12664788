import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeTinyCheckpoint } from '../../../model/tiny.js'
import { onnx } from '../../../model/onnx/builder.js'
import {
  convertCheckpoint,
  loadBundle,
  computeModelId,
  canonicalJson,
  expertArtifactPath,
  type ArtifactBuilder
} from '../../../model/bundle/index.js'

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pov-bundle-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  return d
}

test('convert: stable model id, manifest layout, sha256s verify', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(join(d, 'hf'), { dtype: 'bf16', shards: 2, seed: 1 })
  await writeTinyCheckpoint(join(d, 'hf2'), { dtype: 'bf16', shards: 2, seed: 2 })
  const m1 = await convertCheckpoint(join(d, 'hf'), join(d, 'b1'))
  const m2 = await convertCheckpoint(join(d, 'hf'), join(d, 'b2'), { link: 'copy' })
  const m3 = await convertCheckpoint(join(d, 'hf2'), join(d, 'b3'))
  const m4 = await convertCheckpoint(join(d, 'hf'), join(d, 'b4'), { quant: 'int8' })
  assert.match(m1.modelId, /^0x[0-9a-f]{64}$/)
  assert.equal(
    m1.modelId,
    m2.modelId,
    'same checkpoint -> same id, however the weights were placed'
  )
  assert.notEqual(m1.modelId, m3.modelId, 'other weights -> other id')
  assert.notEqual(m1.modelId, m4.modelId, 'other quantisation -> other id')
  assert.equal(computeModelId(m1), m1.modelId)
  // Idempotent: converting again (force) gives the same id and the same manifest bytes.
  const before = await readFile(join(d, 'b1', 'manifest.json'), 'utf8')
  const again = await convertCheckpoint(join(d, 'hf'), join(d, 'b1'), { force: true })
  assert.equal(again.modelId, m1.modelId)
  assert.equal(await readFile(join(d, 'b1', 'manifest.json'), 'utf8'), before)
  await assert.rejects(
    convertCheckpoint(join(d, 'hf'), join(d, 'b1')),
    /already holds a bundle: pass --force/
  )
  await assert.rejects(convertCheckpoint(join(d, 'hf'), join(d, 'hf')), /not empty/)

  assert.equal(m1.dtype, 'bf16')
  assert.equal(m1.quant, 'none')
  assert.equal(m1.config.numExperts, 8)
  assert.equal(m1.shards.length, 8)
  assert.deepEqual(m1.shards[3], {
    id: 3,
    experts: [
      [0, 3],
      [1, 3]
    ]
  })
  const e = m1.artifacts.find((a) => a.path === expertArtifactPath(1, 3))
  assert.ok(e != null && e.kind === 'expert' && e.layer === 1 && e.expert === 3)
  assert.ok(e.dependsOn != null && e.dependsOn.every((p) => p.startsWith('weights/')))
  for (const p of ['config.json', 'tokenizer.json', 'weights/model-00001-of-00002.safetensors'])
    assert.ok(
      m1.artifacts.some((a) => a.path === p),
      p
    )

  const b = await loadBundle(join(d, 'b1'))
  assert.equal(b.modelId, m1.modelId)
  assert.deepEqual(b.config, m1.config)
})

test('loadBundle: corrupt artifact, edited manifest, lazy verification', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(join(d, 'hf'), {})
  const bdir = join(d, 'b')
  await convertCheckpoint(join(d, 'hf'), bdir, { link: 'copy' })
  const target = join(bdir, expertArtifactPath(0, 5))
  const bytes = await readFile(target)
  bytes[bytes.length - 1] ^= 1
  await writeFile(target, bytes)
  await assert.rejects(
    loadBundle(bdir),
    (err: Error) =>
      err.name === 'BundleError' &&
      /expert-l000-e005\.onnx: sha256 [0-9a-f]+ does not match the manifest/.test(err.message)
  )
  const lazy = await loadBundle(bdir, { verify: 'lazy' })
  await lazy.verify([expertArtifactPath(0, 4)])
  await assert.rejects(lazy.verify([expertArtifactPath(0, 5)]), /does not match/)
  // A weights file the expert depends on is checked too.
  const w = join(bdir, 'weights', 'model.safetensors')
  const wb = await readFile(w)
  wb[wb.length - 1] ^= 1
  await writeFile(w, wb)
  const lazy2 = await loadBundle(bdir, { verify: 'lazy' })
  await assert.rejects(
    lazy2.verify([expertArtifactPath(1, 1)]),
    /weights\/model\.safetensors: sha256/
  )

  const mpath = join(bdir, 'manifest.json')
  const m = JSON.parse(await readFile(mpath, 'utf8'))
  m.quant = 'int4'
  await writeFile(mpath, JSON.stringify(m))
  await assert.rejects(
    loadBundle(bdir, { verify: 'none' }),
    /does not match the manifest's contents/
  )
})

test('extraBuilders (and dense: false): artifacts and weight references from another builder land in the manifest', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(join(d, 'hf'), {})
  const builder: ArtifactBuilder = async (ctx) => {
    const ref = await ctx.weightRef('model.norm.weight')
    assert.equal(ref.location, 'weights/model.safetensors')
    assert.equal(ref.length, 64 * 4)
    await writeFile(join(ctx.bundleDir, 'extra.bin'), 'hello')
    ctx.onProgress?.({ stage: 'extra', done: 1, total: 1 })
    return [
      {
        path: 'extra.bin',
        kind: 'test',
        sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
        size: 5,
        dependsOn: [ref.location]
      }
    ]
  }
  const stages = new Set<string>()
  const m = await convertCheckpoint(join(d, 'hf'), join(d, 'b'), {
    quant: 'int4',
    dense: false,
    extraBuilders: [builder],
    onProgress: (e) => stages.add(e.stage)
  })
  assert.deepEqual([...stages].sort(), ['experts', 'extra', 'hash'])
  assert.ok(m.artifacts.some((a) => a.path === 'extra.bin'))
  assert.ok(
    !m.artifacts.some((a) => a.kind === 'dense'),
    'dense: false leaves the dense graphs out'
  )
  assert.ok(
    m.artifacts.some((a) => a.path === 'weights/model.safetensors'),
    'linked on demand even for int4'
  )
  await loadBundle(join(d, 'b'))
})

test('canonicalJson sorts keys at every level', () => {
  assert.equal(
    canonicalJson({ b: 1, a: [{ d: 2, c: null }], e: undefined }),
    '{"a":[{"c":null,"d":2}],"b":1}'
  )
})

test('int4: --int4-block sets MatMulNBits block_size, weights go to <graph>.data (verified with it); bad block sizes are refused', async (t) => {
  const d = await tmp(t)
  await writeTinyCheckpoint(join(d, 'hf'), {})
  const m = await convertCheckpoint(join(d, 'hf'), join(d, 'b'), {
    quant: 'int4',
    int4Block: 128,
    dense: false
  })
  const graph = m.artifacts.find((a) => a.path === expertArtifactPath(0, 0))!
  assert.deepEqual(graph.dependsOn, [`${graph.path}.data`])
  assert.equal(m.artifacts.find((a) => a.path === `${graph.path}.data`)?.kind, 'weights')
  const model = onnx.ModelProto.decode(await readFile(join(d, 'b', graph.path)))
  const blocks = model
    .graph!.node!.filter((n) => n.opType === 'MatMulNBits')
    .map((n) => Number(n.attribute!.find((a) => a.name === 'block_size')!.i))
  assert.deepEqual(blocks, [128, 128, 128])
  // the data file is checked with its graph: a flipped byte is caught before ORT loads it
  const data = join(d, 'b', `${graph.path}.data`)
  const bytes = await readFile(data)
  bytes[0] ^= 1
  await writeFile(data, bytes)
  const b = await loadBundle(join(d, 'b'), { verify: 'lazy' })
  await assert.rejects(b.verify([graph.path]), /onnx\.data: sha256 .* does not match/)

  await assert.rejects(
    convertCheckpoint(join(d, 'hf'), join(d, 'c'), { quant: 'int4', int4Block: 48 }),
    /int4 block size 48 is not one of 32, 64, 128/
  )
  await assert.rejects(
    convertCheckpoint(join(d, 'hf'), join(d, 'c'), { quant: 'int8', int4Block: 128 }),
    /applies to --quant int4 only/
  )
})
