#!/usr/bin/env -S npx tsx
// The `pov` binary: parses, loads keys, calls the library, shuts down. One folder per noun.
import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { reportError } from './errors.js'
import { applyConfigFile } from './options.js'
import { registerCommands } from './commands.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

const program = new Command('pov')
  .description('pov — decentralized inference for mixture-of-experts models')
  .version(version, '-V, --version', 'print the version of pov')
  .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.POV_LOG_LEVEL ?? 'info')
  .option('--log-format <format>', 'json|pretty', process.env.POV_LOG_FORMAT ?? 'pretty')
  // a typo gets commander's one-line error (with its "Did you mean …?") and a hint, not the whole help
  .showHelpAfterError('(add --help for usage)')
applyConfigFile(program)

try {
  await registerCommands(program, process.argv.slice(2))
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  process.exit(
    reportError(err, program.opts().logLevel === 'debug' || program.opts().logLevel === 'trace')
  )
}
