// What the expert service needs from the compute plane. model/runtime's ExpertRuntime fits
// `ExpertBackend`; unit tests plug in plain functions (no ORT).

import type { ExpertBackend } from '../model/experts.js'

export type { ExpertBackend }

export interface HostedModel {
  /** 0x + 64 hex: sha256 of the canonical manifest (the id governance approves). */
  modelId: string
  /** 0x + 64 hex: what the auditor compares with the chain; equals modelId for pov bundles. */
  manifestHash: string
  hidden: number
  numLayers: number
  numExperts: number
  /** Shard ids loaded (default layout: shard j = expert j in every layer). */
  shards: number[]
  /** Every (layer, expert) pair hosted. */
  experts: Array<[number, number]>
  runtime: ExpertBackend
}
