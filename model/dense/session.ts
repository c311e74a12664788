// Session creation for the dense graphs: compute-core's createSession (device choice, CPU fallback
// with a warning), with the dense graphs' options.
import type ort from 'onnxruntime-node'
import { createSession, type MiniLogger, type SessionOptions } from '../runtime/ort.js'
import type { Device } from '../experts.js'

export type { Device, MiniLogger }

export async function createDenseSession(
  path: string,
  device: Device,
  logger?: MiniLogger,
  allowSpinning?: boolean,
  extra: Pick<SessionOptions, 'intraOpNumThreads' | 'ortOptions'> = {}
): Promise<{ session: ort.InferenceSession; device: Device }> {
  // 0 = ORT's default thread count, given explicitly: onnxruntime-node rejects an undefined value.
  const opts: Parameters<typeof createSession>[1] = {
    device,
    intraOpNumThreads: extra.intraOpNumThreads ?? 0
  }
  if (extra.ortOptions != null) opts.ortOptions = extra.ortOptions
  if (allowSpinning != null) opts.allowSpinning = allowSpinning
  if (logger != null) opts.logger = logger
  const { session, device: used } = await createSession(path, opts)
  return { session, device: used }
}
