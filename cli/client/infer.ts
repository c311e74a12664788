import type { Command } from 'commander'

/** `pov infer` — registered once the paid router lands. */
export function registerInfer (_program: Command): void {}
