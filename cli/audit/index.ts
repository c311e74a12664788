import type { Command } from 'commander'

/** Registers the `pov audit` commands. */
export function register (_program: Command): void {}
