// Each vocabulary token's bytes, read from the bundle's tokenizer.json: what constrained decoding
// feeds its grammar and what `logprobs` reports as `bytes`. Byte-level BPE (GPT-2 style, the tiny
// models) maps every byte to a printable character; SentencePiece-style vocabularies (Mixtral)
// write a space as ▁ and a raw byte as <0xNN>. Special tokens (BOS, EOS, UNK) have no bytes.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { bytesToUnicode } from '../../model/tokenizer.js'

export async function loadTokenBytes(dir: string): Promise<Array<Uint8Array | null>> {
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as {
    model?: { vocab?: Record<string, number> }
    decoder?: { type?: string; decoders?: Array<{ type?: string }> } | null
    added_tokens?: Array<{ id: number; special?: boolean }>
  }
  const vocab = json.model?.vocab ?? {}
  const size =
    Math.max(-1, ...Object.values(vocab), ...(json.added_tokens ?? []).map((t) => t.id)) + 1
  const out = new Array<Uint8Array | null>(size).fill(null)
  const dec = json.decoder
  const byteLevel =
    dec?.type === 'ByteLevel' || (dec?.decoders ?? []).some((d) => d.type === 'ByteLevel')
  const inverse = new Map(bytesToUnicode().map((c, b) => [c, b]))
  const enc = new TextEncoder()
  for (const [tok, id] of Object.entries(vocab)) {
    if (byteLevel) {
      const bytes = Array.from(tok, (c) => inverse.get(c))
      out[id] = bytes.every((b) => b != null) ? Uint8Array.from(bytes as number[]) : null
    } else {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok)
      out[id] = m != null ? Uint8Array.of(parseInt(m[1], 16)) : enc.encode(tok.replace(/▁/g, ' '))
    }
  }
  for (const t of json.added_tokens ?? []) if (t.special !== false) out[t.id] = null
  return out
}
