import type { Command } from 'commander'

/** Registers the `pov model` commands. */
export function register (_program: Command): void {}
