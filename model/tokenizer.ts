// Tokenizer: loads a Hugging Face tokenizer.json with @huggingface/tokenizers, and builds the
// byte-level BPE tokenizer that `pov model init-tiny` ships (a real HF tokenizer.json: the same
// loader reads Mixtral's own tokenizer).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'

export interface PovTokenizer {
  /** Token ids; adds the BOS token by default (as Mixtral's tokenizer does). */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[]
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string
  readonly vocabSize: number
}

export async function loadTokenizer(dir: string): Promise<PovTokenizer> {
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object
  let cfg: object = {}
  try {
    cfg = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as object
  } catch {}
  const tok = new Tokenizer(json, cfg)
  const vocabSize = countVocab(json)
  return {
    vocabSize,
    encode: (text, opts) =>
      tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids,
    // @huggingface/tokenizers throws on an empty list; a generation can end before its first token
    decode: (ids, opts) =>
      ids.length === 0
        ? ''
        : tok.decode(ids, { skip_special_tokens: opts?.skipSpecialTokens ?? true })
  }
}

function countVocab(json: object): number {
  const j = json as {
    model?: { vocab?: Record<string, number> | unknown[] }
    added_tokens?: Array<{ id: number }>
  }
  const ids = new Set<number>()
  const v = j.model?.vocab
  if (Array.isArray(v)) v.forEach((_, i) => ids.add(i))
  else if (v != null) Object.values(v).forEach((i) => ids.add(i))
  for (const t of j.added_tokens ?? []) ids.add(t.id)
  return ids.size
}

/** GPT-2's byte -> printable unicode char map used by ByteLevel pre-tokenizers/decoders. */
export function bytesToUnicode(): string[] {
  const bs: number[] = []
  for (let b = 33; b <= 126; b++) bs.push(b)
  for (let b = 161; b <= 172; b++) bs.push(b)
  for (let b = 174; b <= 255; b++) bs.push(b)
  const out: string[] = new Array(256)
  let n = 0
  for (let b = 0; b < 256; b++) {
    if (bs.includes(b)) out[b] = String.fromCharCode(b)
    else out[b] = String.fromCharCode(256 + n++)
  }
  return out
}

// A small English corpus: merges learnt from it make typical prompts a few tokens shorter than
// bytes, which is all a test tokenizer needs.
const CORPUS = `The quick brown fox jumps over the lazy dog. Once upon a time there was a little model
that learned to route every token to the right experts. The router sends the hidden state of each
token to two of the eight experts in every layer, and the experts answer with their outputs.
Hello world! This is a test of the decentralized inference network. In the beginning the network
was small, and nodes joined one by one; each node served a shard of the experts and was paid for
the work it did. What is the capital of France? The capital of France is Paris. One, two, three,
four, five, six, seven, eight, nine, ten. It was the best of times, it was the worst of times.`

export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>'] as const

/** A byte-level BPE tokenizer.json with exactly `vocabSize` ids: <unk>, <s>, </s>, 256 bytes, merges. */
export function buildTinyTokenizerJson(vocabSize: number): { tokenizer: object; config: object } {
  const base = SPECIAL_TOKENS.length + 256
  if (vocabSize < base)
    throw new Error(
      `the tiny tokenizer needs vocab_size >= ${base} (3 special tokens + 256 bytes), got ${vocabSize}`
    )
  const b2u = bytesToUnicode()
  const vocab = new Map<string, number>()
  SPECIAL_TOKENS.forEach((t, i) => vocab.set(t, i))
  for (let b = 0; b < 256; b++) vocab.set(b2u[b], vocab.size)
  const merges: Array<[string, string]> = []
  // Words as in the ByteLevel pre-tokenizer (GPT-2 split, a leading space kept with the word).
  const words = new Map<string, number>()
  for (const w of CORPUS.match(/ ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+/gu) ?? []) {
    const mapped = [...Buffer.from(w, 'utf8')].map((b) => b2u[b]).join('\u0000')
    words.set(mapped, (words.get(mapped) ?? 0) + 1)
  }
  let seqs = [...words.entries()].map(([w, c]) => ({ parts: w.split('\u0000'), c }))
  while (vocab.size < vocabSize) {
    const pairs = new Map<string, number>()
    for (const { parts, c } of seqs) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const k = parts[i] + '\u0000' + parts[i + 1]
        pairs.set(k, (pairs.get(k) ?? 0) + c)
      }
    }
    let best: string | null = null
    let bestC = 1
    for (const [k, c] of pairs) {
      if (c > bestC || (c === bestC && best != null && k < best)) {
        best = k
        bestC = c
      }
    }
    if (best == null) break
    const [a, b] = best.split('\u0000')
    if (vocab.has(a + b)) break
    merges.push([a, b])
    vocab.set(a + b, vocab.size)
    seqs = seqs.map(({ parts, c }) => {
      const out: string[] = []
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          out.push(a + b)
          i++
        } else out.push(parts[i])
      }
      return { parts: out, c }
    })
  }
  // Fill what the corpus could not: space+letter and letter+letter pairs, deterministic order.
  const letters = 'etaoinshrdlcumwfgypbvkjxqz'.split('')
  const firsts = ['Ġ', ...letters]
  outer: for (const a of firsts) {
    for (const b of letters) {
      if (vocab.size >= vocabSize) break outer
      if (vocab.has(a + b)) continue
      merges.push([a, b])
      vocab.set(a + b, vocab.size)
    }
  }
  // Beyond that, two-letter tokens followed by a letter.
  for (let i = 0; vocab.size < vocabSize; i++) {
    const a = merges[i % merges.length]
    const tok = a[0] + a[1]
    const b = letters[Math.floor(i / merges.length) % letters.length]
    if (!vocab.has(tok + b) && vocab.has(tok)) {
      merges.push([tok, b])
      vocab.set(tok + b, vocab.size)
    }
    if (i > 1e6) throw new Error('cannot fill tokenizer vocabulary')
  }
  const added = SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true
  }))
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } }
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } }
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges
    }
  }
  const config = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false,
    model_max_length: 1000000000000000019884624838656,
    tokenizer_class: 'PreTrainedTokenizerFast'
  }
  return { tokenizer, config }
}
