import type { Command } from 'commander'

/** Registers the `pov generate` commands. */
export function register (_program: Command): void {}
