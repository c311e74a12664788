import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile, truncate, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CheckpointReader,
  CheckpointError,
  encodeSafetensors,
  MAX_HEADER_BYTES
} from '../../../model/safetensors.js'
import { tinyConfig, tinyTensors, writeTinyCheckpoint } from '../../../model/tiny.js'
import { f32ToBf16, bf16ToF32, f16ToF32, f32ToF16 } from '../../../model/dtype.js'

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pov-st-'))
  t.after(async () => {
    await rm(d, { recursive: true, force: true })
  })
  return d
}

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  for (const shards of [1, 3]) {
    test(`reads a tiny ${dtype} checkpoint with ${shards} file(s)`, async (t) => {
      const dir = await tmp(t)
      await writeTinyCheckpoint(dir, { dtype, shards, seed: 7 })
      const r = await CheckpointReader.open(dir)
      t.after(async () => {
        await r.close()
      })
      const cfg = tinyConfig({ dtype })
      const want = tinyTensors(cfg, 7)
      assert.deepEqual(r.names(), want.map((x) => x.name).sort())
      for (const w of want) {
        const got = await r.readFloat32(w.name, w.shape)
        assert.equal(got.length, w.data.length)
        assert.equal(got.byteOffset % 4, 0)
        const info = r.info(w.name)
        assert.equal(info.dtype, { f32: 'F32', f16: 'F16', bf16: 'BF16' }[dtype])
        assert.equal(info.byteLength, w.data.length * (dtype === 'f32' ? 4 : 2))
        const tol = dtype === 'f32' ? 0 : dtype === 'f16' ? 1e-3 : 8e-3
        for (let i = 0; i < got.length; i++) {
          if (Math.abs(got[i] - w.data[i]) > tol * Math.max(1, Math.abs(w.data[i])))
            assert.fail(`${w.name}[${i}]: ${got[i]} vs ${w.data[i]}`)
        }
      }
      if (shards > 1) {
        const files = new Set(want.map((w) => r.info(w.name).file))
        assert.equal(files.size, 3)
      }
    })
  }
}

test('half conversions round to nearest even and are exact on round trip', () => {
  const x = new Float32Array([0, -0, 1, -2.5, 65504, 1e-7, 3.14159, 1e30, -1e-30])
  const b = bf16ToF32(f32ToBf16(x))
  assert.equal(b[2], 1)
  assert.equal(b[3], -2.5)
  assert.ok(Math.abs(b[6] - 3.140625) < 1e-6)
  const h = f16ToF32(f32ToF16(x))
  assert.equal(h[4], 65504)
  assert.equal(h[2], 1)
  assert.ok(Math.abs(h[5] - 1.1920928955078125e-7) < 1e-12) // subnormal
  assert.equal(h[7], Infinity)
  assert.ok(Math.abs(h[6] - 3.140625) < 1e-6)
})

async function single(t: Parameters<typeof tmp>[0], bytes: Uint8Array): Promise<string> {
  const dir = await tmp(t)
  await writeFile(join(dir, 'model.safetensors'), bytes)
  return dir
}

function raw(header: object, dataBytes: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + dataBytes)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  return out
}

async function rejects(dir: string, re: RegExp): Promise<void> {
  await assert.rejects(CheckpointReader.open(dir), (err: Error) => {
    assert.equal(err.name, 'CheckpointError')
    assert.ok(err instanceof CheckpointError)
    assert.match(err.message, re)
    return true
  })
}

test('truncated file: clear error naming file and tensor', async (t) => {
  const bytes = encodeSafetensors([{ name: 'a', shape: [4, 4], data: new Float32Array(16) }], 'F32')
  const dir = await single(t, bytes.subarray(0, bytes.length - 10))
  await rejects(dir, /model\.safetensors: tensor "a": truncated file/)
  const dir2 = await single(t, bytes.subarray(0, 5))
  await rejects(dir2, /truncated file/)
  const dir3 = await single(t, bytes.subarray(0, 20))
  await rejects(dir3, /truncated file: header says/)
})

test('lying header: size mismatch and overlapping tensors', async (t) => {
  await rejects(
    await single(t, raw({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }, 16)),
    /tensor "a": header lies: data_offsets \[0, 12\] span 12 bytes but F32 \[4\] needs 16/
  )
  await rejects(
    await single(
      t,
      raw(
        {
          a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
          b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] }
        },
        24
      )
    ),
    /"a" and "b" overlap/
  )
  await rejects(
    await single(t, raw({ a: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }, 4)),
    /unsupported dtype "I8"/
  )
  await rejects(
    await single(t, raw({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4)),
    /invalid shape/
  )
  const bad = raw({ abcdefgh: 1 }, 0)
  bad.set(Buffer.from('{nope'), 8)
  await rejects(await single(t, bad), /header is not valid JSON/)
})

test('header too large is refused before allocation', async (t) => {
  const b = new Uint8Array(64)
  new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true)
  await rejects(await single(t, b), /exceeds the 104857600-byte cap/)
  new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true)
  await rejects(await single(t, b), /exceeds/)
})

test('missing tensor and wrong shape', async (t) => {
  const dir = await tmp(t)
  await writeTinyCheckpoint(dir, { shards: 2 })
  const r = await CheckpointReader.open(dir)
  t.after(async () => {
    await r.close()
  })
  await assert.rejects(
    r.readFloat32('model.layers.9.input_layernorm.weight'),
    (e: Error) =>
      e.name === 'CheckpointError' &&
      /missing tensor "model\.layers\.9\.input_layernorm\.weight"/.test(e.message)
  )
  await assert.rejects(
    r.readFloat32('model.norm.weight', [65]),
    (e: Error) =>
      e.name === 'CheckpointError' &&
      /model-0000\d-of-00002\.safetensors: tensor "model\.norm\.weight" has shape \[64\], expected \[65\]/.test(
        e.message
      )
  )
  assert.throws(() => r.info('nope'), /missing tensor "nope"/)
})

test('sharded: index naming a tensor its file lacks, or a missing shard file', async (t) => {
  const dir = await tmp(t)
  await writeTinyCheckpoint(dir, { shards: 2 })
  const idxPath = join(dir, 'model.safetensors.index.json')
  const idx = JSON.parse(await readFile(idxPath, 'utf8'))
  idx.weight_map['model.extra.weight'] = 'model-00001-of-00002.safetensors'
  await writeFile(idxPath, JSON.stringify(idx))
  await rejects(
    dir,
    /model-00001-of-00002\.safetensors: tensor "model\.extra\.weight" is listed in model\.safetensors\.index\.json but not present/
  )
  delete idx.weight_map['model.extra.weight']
  idx.weight_map['model.norm.weight'] = 'model-00003-of-00002.safetensors'
  await writeFile(idxPath, JSON.stringify(idx))
  await rejects(dir, /missing shard file/)
  idx.weight_map['model.norm.weight'] = '../evil.safetensors'
  await writeFile(idxPath, JSON.stringify(idx))
  await rejects(dir, /invalid file name/)
})

test('no checkpoint at all', async (t) => {
  await rejects(await tmp(t), /no model\.safetensors or model\.safetensors\.index\.json/)
})

test('a file truncated after open fails the read with a clear error', async (t) => {
  const dir = await tmp(t)
  await writeTinyCheckpoint(dir, {})
  const r = await CheckpointReader.open(dir)
  t.after(async () => {
    await r.close()
  })
  const f = join(dir, 'model.safetensors')
  await truncate(f, (await stat(f)).size - 100)
  await assert.rejects(r.readFloat32('lm_head.weight'), /unexpected end of file/)
})
