import type { Command } from 'commander'
import { addGenerateOptions, parseGenerateArgs, type GenerateCliOptions } from './options.js'
import { runGenerateInTerminal } from './handler.js'
import { addDataDirOption } from '../options.js'

/** Registers `pov generate`. */
export function register(program: Command): void {
  addDataDirOption(
    addGenerateOptions(
      program
        .command('generate')
        .description('generate text with a model bundle (--local: every expert in this process)')
    )
  ).action(async (o: GenerateCliOptions, cmd: Command) => {
    const args = parseGenerateArgs(o)
    const level = cmd.optsWithGlobals().logLevel as string | undefined
    // the only log lines of this command are debug ones: no logger unless they are wanted
    let debug: ((line: string) => void) | undefined
    if (level === 'debug' || level === 'trace') {
      const { createLogger } = await import('../logger.js')
      const logger = createLogger({ level, format: cmd.optsWithGlobals().logFormat })
      debug = (line) => {
        logger.debug(line)
      }
    }
    await runGenerateInTerminal(args, debug)
  })
}
