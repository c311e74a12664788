// Length-prefixed frames: unsigned LEB128 varint length, then that many bytes (one protobuf
// message). The length is checked against the cap as soon as the varint is complete, before
// any buffer for the frame exists (docs/protocol.md#framing).
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, InvalidFrameError } from './errors.js'

/** A 64 MiB cap needs 4 varint bytes; 5 covers any uint32. More is garbage. */
const MAX_VARINT_BYTES = 5

export function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

/** Writes `n` as an unsigned varint into `out` at `offset`; returns the new offset. */
export function writeVarint(n: number, out: Uint8Array, offset = 0): number {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

export function encodeVarint(n: number): Uint8Array {
  const out = new Uint8Array(varintLength(n))
  writeVarint(n, out)
  return out
}

/** Prefixes the concatenation of `parts` with its length; returns a list (no copy of the parts). */
export function encodeFrame(...parts: Uint8Array[]): Uint8ArrayList {
  let len = 0
  for (const p of parts) len += p.byteLength
  return new Uint8ArrayList(encodeVarint(len), ...parts)
}

/**
 * Incremental frame decoder. `push()` returns the frames completed by a chunk; a frame that
 * arrived in one chunk is returned as a view into it (no copy), otherwise it is assembled once.
 * Never holds more than the cap plus one chunk.
 */
export class FrameDecoder {
  private readonly chunks: Uint8Array[] = []
  private buffered = 0
  /** Length of the frame being assembled, or -1 while its varint is incomplete. */
  private expected = -1

  constructor(readonly maxFrameBytes: number) {}

  push(data: Uint8Array | Uint8ArrayList): Uint8Array[] {
    if (data instanceof Uint8Array) this.append(data)
    else for (const c of data) this.append(c)
    const frames: Uint8Array[] = []
    while (true) {
      if (this.expected < 0 && !this.readLength()) break
      if (this.buffered < this.expected) break
      frames.push(this.take(this.expected))
      this.expected = -1
    }
    return frames
  }

  /** Bytes held for an incomplete frame (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.buffered
  }

  private append(c: Uint8Array): void {
    if (c.byteLength === 0) return
    this.chunks.push(c)
    this.buffered += c.byteLength
  }

  private readLength(): boolean {
    let value = 0
    let scale = 1
    let n = 0
    for (const c of this.chunks) {
      for (let i = 0; i < c.byteLength; i++) {
        const b = c[i]
        value += (b & 0x7f) * scale
        scale *= 128
        n++
        if ((b & 0x80) === 0) {
          if (value > this.maxFrameBytes) throw new FrameTooLargeError(value, this.maxFrameBytes)
          this.skip(n)
          this.expected = value
          return true
        }
        if (n >= MAX_VARINT_BYTES)
          throw new InvalidFrameError('frame length varint is longer than 5 bytes')
      }
    }
    return false
  }

  private skip(n: number): void {
    this.buffered -= n
    while (n > 0) {
      const c = this.chunks[0]
      if (c.byteLength <= n) {
        this.chunks.shift()
        n -= c.byteLength
      } else {
        this.chunks[0] = c.subarray(n)
        n = 0
      }
    }
  }

  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0)
    const first = this.chunks[0]
    if (first.byteLength >= n) {
      const frame = first.subarray(0, n)
      this.skip(n)
      return frame
    }
    // A frame's last field is its tensor (docs/protocol.md#messages), whose length is a multiple
    // of 4 for fp32 (2 for fp16): placing the frame so that it ENDS on a 4-byte boundary makes
    // the tensor start on one too, so decodeTensor can view it instead of copying it again
    // (at 1 MiB that second copy, of fresh memory, cost ~0.5 ms per call plus GC on a 2-vCPU AMD EPYC VM, 2026-12).
    const pad = (4 - (n % 4)) % 4
    const frame = new Uint8Array(n + pad).subarray(pad)
    let off = 0
    while (off < n) {
      const c = this.chunks[0]
      const k = Math.min(c.byteLength, n - off)
      frame.set(k === c.byteLength ? c : c.subarray(0, k), off)
      off += k
      this.skip(k)
    }
    return frame
  }
}
