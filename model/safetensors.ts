// Safetensors checkpoint reader (single file or sharded with model.safetensors.index.json) and
// a small writer used by the tiny-checkpoint generator.
// Format: https://github.com/huggingface/safetensors#format — u64 LE header length N, N bytes of
// JSON header ({dtype, shape, data_offsets:[begin,end]} per tensor, optional __metadata__), then
// the data section; offsets are relative to the start of the data section (8 + N).
// Files can be ~5 GB (Buffers cap at 4 GiB): every tensor is read on its own at its offset.
import { open, readFile, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, join, resolve, sep } from 'node:path'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js'

export type SafeDtype = 'BF16' | 'F16' | 'F32'

export interface TensorInfo {
  name: string
  dtype: SafeDtype
  shape: number[]
  /** Absolute path of the file holding the tensor. */
  file: string
  /** Absolute offset of the tensor's first byte in `file`. */
  byteOffset: number
  byteLength: number
}

export class CheckpointError extends Error {
  override name = 'CheckpointError'
}

export const DTYPE_SIZE: Record<SafeDtype, number> = { BF16: 2, F16: 2, F32: 4 }

/** Headers of real checkpoints are < 1 MB; a larger one is corrupt or hostile. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024
/** Index files list ~1000 tensors; cap what we parse. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024
/** fs reads are limited to 2 GiB per call. */
const READ_CHUNK = 1 << 30

export const INDEX_FILE = 'model.safetensors.index.json'
export const SINGLE_FILE = 'model.safetensors'

function isSafeDtype(d: unknown): d is SafeDtype {
  return d === 'BF16' || d === 'F16' || d === 'F32'
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/** Parses and checks one safetensors file's header; returns its tensors. */
export async function readSafetensorsHeader(
  file: string,
  fh?: FileHandle
): Promise<{ tensors: TensorInfo[]; metadata: Record<string, string> | null }> {
  const own = fh == null
  const h =
    fh ??
    (await open(file, 'r').catch((err: Error) => {
      throw new CheckpointError(`${file}: cannot open: ${err.message}`)
    }))
  try {
    const size = (await h.stat()).size
    if (size < 8)
      throw new CheckpointError(
        `${file}: truncated file (${size} bytes, not even the 8-byte header length)`
      )
    const lenBuf = Buffer.alloc(8)
    await h.read(lenBuf, 0, 8, 0)
    const n = lenBuf.readBigUInt64LE(0)
    if (n > BigInt(MAX_HEADER_BYTES))
      throw new CheckpointError(
        `${file}: header length ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte cap (corrupt or not a safetensors file)`
      )
    const headerLen = Number(n)
    if (8 + headerLen > size)
      throw new CheckpointError(
        `${file}: truncated file: header says ${headerLen} bytes of JSON but the file has only ${size - 8} after the length`
      )
    const hb = Buffer.alloc(headerLen)
    await h.read(hb, 0, headerLen, 8)
    let header: unknown
    try {
      header = JSON.parse(hb.toString('utf8'))
    } catch (err) {
      throw new CheckpointError(`${file}: header is not valid JSON: ${(err as Error).message}`)
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header))
      throw new CheckpointError(`${file}: header is not a JSON object`)
    const dataStart = 8 + headerLen
    const dataLen = size - dataStart
    const tensors: TensorInfo[] = []
    let metadata: Record<string, string> | null = null
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = v as Record<string, string>
        continue
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
      const where = `${file}: tensor "${name}"`
      if (t === null || typeof t !== 'object')
        throw new CheckpointError(`${where}: header entry is not an object`)
      if (!isSafeDtype(t.dtype))
        throw new CheckpointError(
          `${where}: unsupported dtype ${JSON.stringify(t.dtype)} (supported: BF16, F16, F32)`
        )
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw new CheckpointError(`${where}: invalid shape ${JSON.stringify(t.shape)}`)
      const off = t.data_offsets
      if (
        !Array.isArray(off) ||
        off.length !== 2 ||
        !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
        off[1] < off[0]
      ) {
        throw new CheckpointError(`${where}: invalid data_offsets ${JSON.stringify(off)}`)
      }
      const shape = t.shape as number[]
      const [b, e] = off as [number, number]
      const want = numel(shape) * DTYPE_SIZE[t.dtype]
      if (e - b !== want)
        throw new CheckpointError(
          `${where}: header lies: data_offsets [${b}, ${e}] span ${e - b} bytes but ${t.dtype} ${JSON.stringify(shape)} needs ${want}`
        )
      if (e > dataLen)
        throw new CheckpointError(
          `${where}: truncated file: tensor ends at data byte ${e} but the data section has only ${dataLen} bytes`
        )
      tensors.push({
        name,
        dtype: t.dtype,
        shape: [...shape],
        file,
        byteOffset: dataStart + b,
        byteLength: e - b
      })
    }
    const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset)
    for (let i = 1; i < sorted.length; i++) {
      const p = sorted[i - 1]
      const c = sorted[i]
      if (c.byteOffset < p.byteOffset + p.byteLength)
        throw new CheckpointError(
          `${file}: tensors "${p.name}" and "${c.name}" overlap in the data section (header lies)`
        )
    }
    return { tensors, metadata }
  } finally {
    if (own) await h.close()
  }
}

/**
 * Reads a Hugging Face safetensors checkpoint tensor by tensor. Open with `CheckpointReader.open`;
 * every header is validated up front, so later reads fail only on I/O errors.
 */
export class CheckpointReader {
  private readonly handles = new Map<string, Promise<FileHandle>>()

  private constructor(
    readonly dir: string,
    private readonly tensors: Map<string, TensorInfo>,
    readonly files: string[]
  ) {}

  static async open(dir: string): Promise<CheckpointReader> {
    const root = resolve(dir)
    const indexPath = join(root, INDEX_FILE)
    const tensors = new Map<string, TensorInfo>()
    let files: string[]
    let weightMap: Record<string, string> | null = null
    if (await exists(indexPath)) {
      const st = await stat(indexPath)
      if (st.size > MAX_INDEX_BYTES)
        throw new CheckpointError(
          `${indexPath}: index is ${st.size} bytes, over the ${MAX_INDEX_BYTES}-byte cap`
        )
      let idx: { weight_map?: unknown }
      try {
        idx = JSON.parse(await readFile(indexPath, 'utf8'))
      } catch (err) {
        throw new CheckpointError(`${indexPath}: not valid JSON: ${(err as Error).message}`)
      }
      const wm = idx?.weight_map
      if (wm === null || typeof wm !== 'object' || Array.isArray(wm))
        throw new CheckpointError(`${indexPath}: missing "weight_map" object`)
      weightMap = wm as Record<string, string>
      const names = new Set<string>()
      for (const [t, f] of Object.entries(weightMap)) {
        if (typeof f !== 'string' || f.length === 0 || basename(f) !== f)
          throw new CheckpointError(
            `${indexPath}: tensor "${t}" maps to invalid file name ${JSON.stringify(f)} (must be a plain file name in the checkpoint directory)`
          )
        names.add(f)
      }
      files = [...names].sort().map((f) => join(root, f))
    } else if (await exists(join(root, SINGLE_FILE))) {
      files = [join(root, SINGLE_FILE)]
    } else {
      throw new CheckpointError(
        `${root}: no ${SINGLE_FILE} or ${INDEX_FILE} found (not a Hugging Face safetensors checkpoint)`
      )
    }
    for (const file of files) {
      if (!file.startsWith(root + sep))
        throw new CheckpointError(`${file}: outside the checkpoint directory`)
      if (!(await exists(file)))
        throw new CheckpointError(`${file}: missing shard file (listed in ${INDEX_FILE})`)
      const { tensors: ts } = await readSafetensorsHeader(file)
      for (const t of ts) {
        const prev = tensors.get(t.name)
        if (prev != null)
          throw new CheckpointError(`tensor "${t.name}" appears in both ${prev.file} and ${t.file}`)
        if (weightMap != null && weightMap[t.name] !== basename(file)) continue // not the index's copy
        tensors.set(t.name, t)
      }
    }
    if (weightMap != null) {
      for (const [t, f] of Object.entries(weightMap)) {
        if (!tensors.has(t))
          throw new CheckpointError(
            `${join(root, f)}: tensor "${t}" is listed in ${INDEX_FILE} but not present in that file`
          )
      }
    }
    return new CheckpointReader(root, tensors, files)
  }

  names(): string[] {
    return [...this.tensors.keys()].sort()
  }

  has(name: string): boolean {
    return this.tensors.has(name)
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name)
    if (t == null) throw new CheckpointError(`${this.dir}: missing tensor "${name}"`)
    return { ...t, shape: [...t.shape] }
  }

  private checkShape(t: TensorInfo, expectedShape?: number[]): void {
    if (expectedShape != null && !sameShape(t.shape, expectedShape)) {
      throw new CheckpointError(
        `${t.file}: tensor "${t.name}" has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(expectedShape)}`
      )
    }
  }

  /** The tensor's raw bytes in its stored dtype, in a fresh (8-byte aligned) ArrayBuffer. */
  async readRaw(
    name: string,
    expectedShape?: number[]
  ): Promise<{ info: TensorInfo; bytes: Uint8Array }> {
    const t = this.info(name)
    this.checkShape(t, expectedShape)
    const bytes = new Uint8Array(new ArrayBuffer(t.byteLength))
    const fh = await this.handle(t.file)
    let done = 0
    while (done < t.byteLength) {
      const len = Math.min(READ_CHUNK, t.byteLength - done)
      const { bytesRead } = await fh.read(bytes, done, len, t.byteOffset + done)
      if (bytesRead === 0)
        throw new CheckpointError(
          `${t.file}: tensor "${name}": unexpected end of file at byte ${t.byteOffset + done} (file truncated while reading?)`
        )
      done += bytesRead
    }
    return { info: t, bytes }
  }

  /** The tensor converted to float32 (exact for BF16/F16). */
  async readFloat32(name: string, expectedShape?: number[]): Promise<Float32Array> {
    const { info, bytes } = await this.readRaw(name, expectedShape)
    switch (info.dtype) {
      case 'F32':
        return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4)
      case 'BF16':
        return bf16ToF32(new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2))
      case 'F16':
        return f16ToF32(new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2))
    }
  }

  private async handle(file: string): Promise<FileHandle> {
    let h = this.handles.get(file)
    if (h == null) {
      h = open(file, 'r')
      this.handles.set(file, h)
    }
    return await h
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(
      hs.map(async (h) => {
        await (await h).close()
      })
    )
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

export interface TensorToWrite {
  name: string
  shape: number[]
  data: Float32Array
}

/** Serialises float32 tensors as one safetensors file in `dtype` (header padded to 8 bytes). */
export function encodeSafetensors(
  tensors: TensorToWrite[],
  dtype: SafeDtype,
  metadata: Record<string, string> = { format: 'pt' }
): Uint8Array {
  const size = DTYPE_SIZE[dtype]
  const header: Record<string, unknown> = { __metadata__: metadata }
  let off = 0
  for (const t of tensors) {
    if (t.data.length !== numel(t.shape))
      throw new Error(
        `tensor "${t.name}": ${t.data.length} values for shape ${JSON.stringify(t.shape)}`
      )
    const n = t.data.length * size
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + n] }
    off += n
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8')
  const pad = (8 - (json.length % 8)) % 8
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)])
  const out = new Uint8Array(8 + json.length + off)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  let p = 8 + json.length
  for (const t of tensors) {
    const bytes =
      dtype === 'F32'
        ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
        : new Uint8Array((dtype === 'BF16' ? f32ToBf16(t.data) : f32ToF16(t.data)).buffer)
    out.set(bytes, p)
    p += bytes.byteLength
  }
  return out
}

export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  dtype: SafeDtype,
  metadata?: Record<string, string>
): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, dtype, metadata))
}
