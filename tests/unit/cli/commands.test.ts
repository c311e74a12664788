// cli/commands.ts: `pov X` loads only X's module, so the top-level help comes from a table; the
// table must list exactly what the modules register, with the same descriptions.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { COMMAND_GROUPS, commandName, registerCommands } from '../../../cli/commands.js'

test('the command table matches what every module registers', async () => {
  for (const g of COMMAND_GROUPS) {
    const program = new Command('pov')
    ;(await g.load()).register(program)
    assert.deepEqual(
      program.commands.map((c) => [c.name(), c.description()]),
      g.commands,
      `table entry of ${g.commands[0][0]}`
    )
  }
})

test('commandName finds the command past global options; help X names X', () => {
  assert.equal(commandName(['balance', '--json']), 'balance')
  assert.equal(commandName(['--log-level', 'debug', 'node', 'start']), 'node')
  assert.equal(commandName(['--config', 'pov.yaml', '--json', 'infer', 'hi']), 'infer')
  assert.equal(commandName(['help', 'gov']), 'gov')
  assert.equal(commandName(['--help']), undefined)
  assert.equal(commandName([]), undefined)
})

test('registerCommands: every summary for help, one module for a command', async () => {
  const all = new Command('pov')
  await registerCommands(all, ['--help'])
  assert.deepEqual(
    all.commands.map((c) => c.name()),
    COMMAND_GROUPS.flatMap((g) => g.commands.map(([n]) => n))
  )
  const one = new Command('pov')
  await registerCommands(one, ['balance', '--address', '0x0'])
  assert.ok(
    one.commands.some((c) => c.name() === 'infer'),
    'the whole client module'
  )
  assert.ok(!one.commands.some((c) => c.name() === 'node'), 'and nothing else')
})
