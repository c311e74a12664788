// What an expert node learns of a prompt. A node serving layer ℓ receives, for each prompt token
// routed to its experts, the hidden state after layer ℓ's attention and norm (the MoE input). How
// much of the prompt can it read back? Two attacks, per layer, on the trained model (models/tiny-en)
// over held-out text the attacker never saw:
//   embedding — the token whose input embedding is nearest (cosine) to the received state; needs
//               only the public bundle;
//   reference — the token of the nearest state (cosine) among states the attacker computed itself
//               by running the public dense model on other text (the first part of the held-out
//               file here): a 1-nearest-neighbour lookup any operator can build.
// Reported: the share of prompt tokens recovered exactly, per layer and attack. Last line: JSON.
//
//   npm run bench:privacy [-- --model HF_DIR] [--ref-tokens N] [--test-tokens N]
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { convertCheckpoint, loadBundle } from '../../model/bundle/index.js'
import { loadDenseRuntime, type DenseRuntime } from '../../model/dense/index.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import type { ExpertExecutor } from '../../model/generate.js'
import { loadTokenizer } from '../../model/tokenizer.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const ROOT = resolve(import.meta.dirname, '../..')
const MODEL = arg('model') ?? join(ROOT, 'models', 'tiny-en')
const REF_TOKENS = Number(arg('ref-tokens') ?? 4096)
const TEST_TOKENS = Number(arg('test-tokens') ?? 1024)
/** Prompts are cut into windows of this many tokens (a BOS first), each its own forward pass. */
const WINDOW = 64

/** Per layer: the MoE input of every token of `ids` (one forward pass per window), [T·H]. */
async function moeInputs(
  dense: DenseRuntime,
  experts: ExpertExecutor,
  ids: number[],
  bos: number
): Promise<{ states: Float32Array[]; tokens: number[] }> {
  const c = dense.config
  const H = c.hiddenSize
  const states: Float32Array[][] = Array.from({ length: c.numLayers }, () => [])
  const tokens: number[] = []
  for (let w = 0; w + WINDOW - 1 <= ids.length; w += WINDOW - 1) {
    const win = [bos, ...ids.slice(w, w + WINDOW - 1)]
    const T = win.length
    const cache = dense.newCache()
    const positions = win.map((_, i) => i)
    let h = await dense.embed(win)
    for (let layer = 0; layer < c.numLayers; layer++) {
      const a = await dense.attention(layer, h, positions, cache)
      // the BOS row is not part of the prompt
      states[layer].push(a.moeIn.slice(H))
      h = new Float32Array(T * H)
      const moe = await moe_(experts, layer, a.moeIn, a.routerLogits, T, c)
      for (let i = 0; i < h.length; i++) h[i] = a.hidden[i] + moe[i]
    }
    tokens.push(...win.slice(1))
  }
  return { states: states.map(concat), tokens }
}

/** The MoE layer as model/generate.ts computes it: softmax, top-k, renormalised weighted sum. */
async function moe_(
  experts: ExpertExecutor,
  layer: number,
  x: Float32Array,
  logits: Float32Array,
  T: number,
  c: DenseRuntime['config']
): Promise<Float32Array> {
  const H = c.hiddenSize
  const E = c.numExperts
  const out = new Float32Array(T * H)
  const rows = new Map<number, Array<{ t: number; w: number }>>()
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * E, (t + 1) * E)
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => row[b] - row[a] || a - b)
    const top = order.slice(0, c.topK)
    const max = row[top[0]]
    const ws = top.map((e) => Math.exp(row[e] - max))
    const sum = ws.reduce((a, b) => a + b, 0)
    top.forEach((e, i) => {
      const list = rows.get(e) ?? []
      list.push({ t, w: ws[i] / sum })
      rows.set(e, list)
    })
  }
  await Promise.all(
    [...rows].map(async ([e, list]) => {
      const input = new Float32Array(list.length * H)
      list.forEach(({ t }, i) => {
        input.set(x.subarray(t * H, (t + 1) * H), i * H)
      })
      const y = await experts.runExpert(layer, e, input, list.length)
      list.forEach(({ t, w }, i) => {
        for (let k = 0; k < H; k++) out[t * H + k] += w * y[i * H + k]
      })
    })
  )
  return out
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Rows scaled to unit length (cosine similarity becomes a dot product). */
function normalized(m: Float32Array, H: number): Float32Array {
  const out = new Float32Array(m.length)
  for (let r = 0; r < m.length / H; r++) {
    let n = 0
    for (let k = 0; k < H; k++) n += m[r * H + k] ** 2
    const s = n > 0 ? 1 / Math.sqrt(n) : 0
    for (let k = 0; k < H; k++) out[r * H + k] = m[r * H + k] * s
  }
  return out
}

/** For each query row, the label of the nearest reference row (cosine); the share that is right. */
function recovered(
  queries: Float32Array,
  truth: number[],
  refs: Float32Array,
  labels: ArrayLike<number>,
  H: number
): number {
  const q = normalized(queries, H)
  const r = normalized(refs, H)
  const R = r.length / H
  let right = 0
  for (let i = 0; i < truth.length; i++) {
    let best = -Infinity
    let label = -1
    for (let j = 0; j < R; j++) {
      let d = 0
      for (let k = 0; k < H; k++) d += q[i * H + k] * r[j * H + k]
      if (d > best) {
        best = d
        label = labels[j]
      }
    }
    if (label === truth[i]) right++
  }
  return right / truth.length
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pov-privacy-'))
  try {
    await convertCheckpoint(MODEL, join(dir, 'bundle'), { quant: 'none' })
    const bundle = await loadBundle(join(dir, 'bundle'))
    const c = bundle.config
    const H = c.hiddenSize
    const dense = await loadDenseRuntime(bundle, { allowSpinning: false })
    const experts = await loadExpertRuntime(
      bundle,
      bundle.manifest.shards.map((s) => s.id),
      { intraOpNumThreads: 0, allowSpinning: false }
    )
    const tok = await loadTokenizer(bundle.dir)
    const text = await readFile(join(MODEL, 'heldout.txt'), 'utf8')
    const all = tok.encode(text, { addSpecialTokens: false })
    const refIds = all.slice(0, REF_TOKENS)
    const testIds = all.slice(all.length - TEST_TOKENS)
    const ref = await moeInputs(dense, experts, refIds, c.bosTokenId)
    const test = await moeInputs(dense, experts, testIds, c.bosTokenId)
    const V = c.vocabSize
    const emb = await dense.embed(Array.from({ length: V }, (_, i) => i))
    const vocab = Array.from({ length: V }, (_, i) => i)
    // tokens of the test text the reference text never shows: the lookup cannot name them
    const seen = new Set(ref.tokens)
    const unseen = test.tokens.filter((t) => !seen.has(t)).length / test.tokens.length
    const rows: Array<{
      layer: number
      embedding: number
      reference: number
      referenceOfSeen: number
    }> = []
    for (let layer = 0; layer < c.numLayers; layer++) {
      const embedding = recovered(test.states[layer], test.tokens, emb, vocab, H)
      const reference = recovered(test.states[layer], test.tokens, ref.states[layer], ref.tokens, H)
      rows.push({ layer, embedding, reference, referenceOfSeen: reference / (1 - unseen) })
    }
    const pct = (x: number): string => `${(100 * x).toFixed(1)} %`.padStart(8)
    console.log(
      `what a node serving layer ℓ can read of a prompt: ${test.tokens.length} held-out tokens of ${MODEL.split('/').pop()}, a ${ref.tokens.length}-token reference`
    )
    console.log(
      'layer  nearest embedding  nearest reference state  (of tokens the reference shows)'
    )
    for (const r of rows)
      console.log(
        `${String(r.layer).padStart(5)}  ${pct(r.embedding).padStart(17)}  ${pct(r.reference).padStart(23)}  ${pct(r.referenceOfSeen).padStart(31)}`
      )
    console.log(
      `(${pct(unseen).trim()} of the test tokens never occur in the reference text: the second attack cannot name those)`
    )
    await experts.close()
    await dense.close()
    console.log(
      JSON.stringify({
        model: MODEL.split('/').pop(),
        testTokens: test.tokens.length,
        refTokens: ref.tokens.length,
        unseenShare: unseen,
        layers: rows
      })
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
