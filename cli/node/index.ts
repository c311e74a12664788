import type { Command } from 'commander'

/** Registers the `pov node` commands. */
export function register (_program: Command): void {}
