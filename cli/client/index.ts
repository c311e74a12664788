import type { Command } from 'commander'

/** Registers the `pov client` commands. */
export function register (_program: Command): void {}
