// The gateway's text handling without a network: stop sequences in a token stream, chat templates.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StopTextStream } from '../../../router/gateway/text-stream.js'
import { PLAIN_TEMPLATE, templateFromConfig } from '../../../router/gateway/chat-template.js'

// one "token" per character, so each push adds one character
const decode = (ids: number[]): string => String.fromCharCode(...ids)
const ids = (s: string): number[] => [...s].map((c) => c.charCodeAt(0))

test('a stop sequence is never streamed, not even its first characters', () => {
  const s = new StopTextStream(decode, ['\nUser:'])
  const text = 'Paris.\nUser: more'
  const out: string[] = []
  for (let i = 1; i <= text.length && !s.stopped; i++) out.push(s.push(ids(text.slice(0, i))))
  assert.equal(s.stopped, true)
  assert.equal(out.join(''), 'Paris.')
  assert.equal(s.text, 'Paris.')
  assert.ok(
    !out.join('').includes('\n'),
    'the held-back prefix of the stop sequence was not released'
  )
})

test('a held-back prefix that does not become a stop sequence is released', () => {
  const s = new StopTextStream(decode, ['STOP'])
  assert.equal(s.push(ids('abST')), 'ab')
  assert.equal(s.push(ids('abSTx')), 'STx')
  assert.equal(s.push(ids('abSTx'), true), '')
  assert.equal(s.stopped, false)
})

test('a split multi-byte character is held back until it is whole', () => {
  const parts = ['a\uFFFD', 'aé']
  const s = new StopTextStream(() => parts.shift() ?? 'aé', [])
  assert.equal(s.push([1]), 'a')
  assert.equal(s.push([1, 2]), 'é')
})

test('the earliest of several stop sequences wins', () => {
  const s = new StopTextStream(decode, ['yz', 'c'])
  assert.equal(s.push(ids('abcdxyz')), 'ab')
  assert.equal(s.stopped, true)
})

test('plain template: role lines, the assistant cue, and the next user turn as a stop', () => {
  const p = PLAIN_TEMPLATE.render([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Capital of France?' }
  ])
  assert.equal(
    p.text,
    'System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Capital of France?\nAssistant:'
  )
  assert.equal(p.addSpecialTokens, true)
  assert.deepEqual(p.stop, ['\nUser:'])
})

test("a bundle's chat_template is rendered with its BOS, and the tokenizer adds no second one", () => {
  const t = templateFromConfig({
    bos_token: '<s>',
    eos_token: '</s>',
    chat_template:
      "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
  })
  assert.equal(t.kind, 'bundle')
  const p = t.render([
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello' },
    { role: 'user', content: 'Bye' }
  ])
  assert.equal(p.text, '<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]')
  assert.equal(p.addSpecialTokens, false)
  assert.equal(
    templateFromConfig({ bos_token: '<s>' }).kind,
    'plain',
    'no chat_template: the plain one'
  )
})
