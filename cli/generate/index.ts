import type { Command } from 'commander'
import { addGenerateOptions, parseGenerateArgs, type GenerateCliOptions } from './options.js'
import { runGenerate } from './handler.js'

/** Registers `pov generate`. */
export function register(program: Command): void {
  addGenerateOptions(
    program
      .command('generate')
      .description('generate text with a model bundle (--local: every expert in this process)')
  ).action(async (o: GenerateCliOptions) => {
    const args = parseGenerateArgs(o)
    const ac = new AbortController()
    const onSigint = (): void => {
      ac.abort(new Error('interrupted'))
    }
    process.once('SIGINT', onSigint)
    try {
      await runGenerate(
        args,
        {
          stdout: process.stdout,
          stderr: process.stderr,
          progress: process.stderr.isTTY === true && !args.json
        },
        ac.signal
      )
    } finally {
      process.off('SIGINT', onSigint)
    }
  })
}
