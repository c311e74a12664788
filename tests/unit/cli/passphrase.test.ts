import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promptPassword, readPassword } from '../../../cli/keystore.js'

/** A terminal stand-in: each answer is typed once its question is on screen (after a redraw
 *  marks the previous one done), as a person would. */
function terminal(answers: string[]): {
  input: PassThrough
  output: PassThrough
  shown: () => string
} {
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => {} })
  // like stderr, the output outlives each prompt (a prompt ends the stream it is piped into)
  const output = new PassThrough()
  output.end = () => output
  const answered = new Set<string>()
  let shown = ''
  output.on('data', (d: Buffer) => {
    shown += d.toString()
    for (const m of shown.matchAll(/\? ((?:New keystore|Keystore|Repeat the) passphrase)/g)) {
      if (answered.has(m[1]) || answered.size >= answers.length) continue
      const answer = answers[answered.size]
      answered.add(m[1])
      setImmediate(() => input.write(answer + '\r'))
    }
  })
  return { input, output, shown: () => shown }
}

test('a new passphrase is asked twice with the input hidden, and must match', async () => {
  const t = terminal(['correct horse', 'correct horse'])
  const pw = await promptPassword(true, t)
  assert.equal(pw, 'correct horse')
  assert.doesNotMatch(t.shown(), /correct horse/, 'the passphrase is never echoed')
  assert.match(t.shown(), /Repeat the passphrase/)
  const bad = terminal(['one', 'two'])
  await assert.rejects(
    promptPassword(true, bad),
    /the two passphrases differ — nothing was written/
  )
})

test('no passphrase source and no terminal: one line that names the three ways', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pov-pw-'))
  await assert.rejects(
    readPassword(join(dir, 'missing'), undefined),
    /the password file .*missing does not exist — put the passphrase on its first line/
  )
  if (process.stdin.isTTY !== true)
    await assert.rejects(readPassword(undefined, undefined), /pass --password-file FILE/)
  assert.equal(await readPassword(undefined, 'from-env'), 'from-env')
})
