// Constrained decoding for response_format: the byte-level JSON recognizer (valid documents in,
// broken ones refused at the first bad byte), the schema subset, and the property that matters —
// whatever the logits, a masked decode over the real tiny-en vocabulary ends in a document that
// parses (and fits the schema), within max_tokens.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  JsonConstraint,
  JsonState,
  unsupportedKeyword,
  type Schema
} from '../../../router/gateway/json-grammar.js'
import { loadTokenBytes } from '../../../router/gateway/token-bytes.js'
import { seededRandom, sampleToken } from '../../../model/sampling.js'
import { REPO } from '../../../deploy/localnet.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

/** How many bytes of `doc` the recognizer takes before refusing one (all: doc.length). */
function accepted(doc: string, schema: Schema | null = null): { n: number; done: boolean } {
  const st = JsonState.start(schema)
  const b = bytes(doc)
  for (let i = 0; i < b.length; i++) if (!st.feed([b[i]])) return { n: i, done: false }
  return { n: b.length, done: st.done }
}

test('valid JSON objects are taken whole; broken ones are refused at the first bad byte', () => {
  for (const doc of [
    '{}',
    '{"a":1}',
    ' {"a": [1, 2.5e-3, -0, true, false, null, "x\\"y\\u00e9"], "b": {"c": {}}}',
    '{"é":"ü ☃"}',
    '{"n":-12.75E+2}'
  ]) {
    const r = accepted(doc)
    assert.deepEqual(r, { n: bytes(doc).length, done: true }, doc)
    assert.doesNotThrow(() => JSON.parse(doc))
  }
  for (const [doc, at] of [
    ['[1]', 0], // json_object: an object at the top
    ['{"a":01}', 6],
    ['{"a" 1}', 5],
    ['{"a":1,}', 7],
    ['{"a":tru}', 8],
    ['{"a":"\u0001"}', 6],
    ['{"a":1}}', 7],
    ['{"a":1}   ', 9] // trailing whitespace is bounded
  ] as const)
    assert.equal(accepted(doc).n, at, doc)
})

const person: Schema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    colour: { enum: ['red', 'green'] },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 2 }
  },
  required: ['name', 'age'],
  additionalProperties: false
}

test('a schema: its keys only, each once, required ones before the end, values of their type', () => {
  assert.equal(accepted('{"name":"Ann","age":3,"colour":"red","tags":["a"]}', person).done, true)
  assert.equal(accepted('{"age":3,"name":""}', person).done, true)
  assert.equal(accepted('{"name":"Ann"}', person).n, 13, 'age is required')
  assert.equal(accepted('{"nick":"A"}', person).n, 3, 'no other key')
  assert.equal(accepted('{"age":3.5}', person).n, 8, 'an integer')
  assert.equal(accepted('{"colour":"blue"}', person).n, 11, 'one of the enum')
  assert.equal(accepted('{"tags":["a","b","c"]}', person).n, 16, 'maxItems')
  assert.equal(accepted('{"age":1,"age":2}', person).n, 10, 'a key once')
})

test('unsupported schema keywords are named', () => {
  assert.equal(unsupportedKeyword(person), null)
  assert.equal(
    unsupportedKeyword({ type: 'object', properties: { a: { type: 'string', pattern: 'x' } } }),
    'schema.properties.a.pattern'
  )
  assert.equal(unsupportedKeyword({ anyOf: [] }), 'schema.anyOf')
  assert.equal(unsupportedKeyword({ type: 'date' }), 'schema.type')
})

test('closing() completes any prefix into a document that parses', () => {
  for (const [prefix, schema] of [
    ['{"a":[1,{"b":"x', null],
    ['{"a":-', null],
    ['{"a":1.', null],
    ['{"na', person],
    ['{"name":"A","tags":["', person],
    ['{"colour":"gr', person]
  ] as const) {
    const st = JsonState.start(schema)
    assert.ok(st.feed(bytes(prefix)), prefix)
    const doc = prefix + st.closing()
    assert.doesNotThrow(() => JSON.parse(doc), doc)
    assert.equal(accepted(doc, schema).done, true, doc)
  }
})

test('masked decoding over the tiny-en vocabulary ends in a parsing document, whatever the logits', async () => {
  const table = await loadTokenBytes(join(REPO, 'models', 'tiny-en'))
  const V = table.length
  const EOS = 2
  const dec = new TextDecoder()
  for (const schema of [null, person]) {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed)
      const probe = new JsonConstraint(table, EOS, schema, 1)
      // from the fewest tokens the shortest document takes, up
      const maxTokens = probe.minTokens() + (seed % 30)
      const c = new JsonConstraint(table, EOS, schema, maxTokens)
      const out: number[] = []
      while (out.length < maxTokens && !c.done) {
        // random logits: the model's preferences play no part in the guarantee
        const logits = new Float32Array(V)
        for (let i = 0; i < V; i++) logits[i] = random() * 8
        c.mask(logits, out)
        const id = sampleToken(logits, { temperature: 1 }, random)
        assert.notEqual(logits[id], -Infinity)
        if (id === EOS) break
        out.push(id)
      }
      c.accept(out)
      const text = dec.decode(Uint8Array.from(out.flatMap((id) => [...(table[id] ?? [])])))
      assert.equal(c.done, true, `seed ${seed}, ${maxTokens} tokens: ${text}`)
      const v = JSON.parse(text) as Record<string, unknown>
      if (schema != null) {
        assert.equal(typeof v.name, 'string')
        assert.ok(Number.isInteger(v.age), text)
        for (const k of Object.keys(v))
          assert.ok(['name', 'age', 'colour', 'tags'].includes(k), text)
      }
    }
  }
})
