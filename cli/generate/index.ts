import type { Command } from 'commander'
import { addGenerateOptions, parseGenerateArgs, type GenerateCliOptions } from './options.js'
import { runGenerateInTerminal } from './handler.js'

/** Registers `pov generate`. */
export function register(program: Command): void {
  addGenerateOptions(
    program
      .command('generate')
      .description('generate text with a model bundle (--local: every expert in this process)')
  ).action(async (o: GenerateCliOptions) => {
    await runGenerateInTerminal(parseGenerateArgs(o))
  })
}
