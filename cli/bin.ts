#!/usr/bin/env -S npx tsx
// The `pov` binary: parses, loads keys, calls the library, shuts down. One folder per noun.
import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { register as registerModel } from './model/index.js'
import { register as registerGenerate } from './generate/index.js'
import { register as registerNode } from './node/index.js'
import { register as registerClient } from './client/index.js'
import { register as registerAudit } from './audit/index.js'
import { register as registerGov } from './gov/index.js'
import { register as registerDev } from './dev/index.js'
import { register as registerEval } from './eval/index.js'
import { register as registerServe } from './serve/index.js'
import { reportError } from './errors.js'
import { applyConfigFile } from './options.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

const program = new Command('pov')
  .description('pov — decentralized inference for mixture-of-experts models')
  .version(version, '-V, --version', 'print the version of pov')
  .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.POV_LOG_LEVEL ?? 'info')
  .option('--log-format <format>', 'json|pretty', process.env.POV_LOG_FORMAT ?? 'pretty')
  .showHelpAfterError()
applyConfigFile(program)

registerModel(program)
registerGenerate(program)
registerNode(program)
registerClient(program)
registerAudit(program)
registerGov(program)
registerDev(program)
registerEval(program)
registerServe(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  process.exit(
    reportError(err, program.opts().logLevel === 'debug' || program.opts().logLevel === 'trace')
  )
}
