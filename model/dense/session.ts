// Session creation for the dense graphs. Delegates to compute-core's model/runtime/ort.ts
// createSession (device choice + CPU fallback) — see createDenseSession.
import ort from 'onnxruntime-node'

export type Device = 'cpu' | 'cuda' | 'webgpu'

/** Opens a session on `device`, falling back to CPU (with a warning on stderr) if it cannot load. */
export async function createDenseSession (path: string, device: Device): Promise<{ session: ort.InferenceSession, device: Device }> {
  const base: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' }
  if (device !== 'cpu') {
    try {
      return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: [device] }), device }
    } catch (err) {
      process.emitWarning(`dense: ${device} execution provider unavailable (${(err as Error).message.split('\n')[0]}); falling back to CPU`)
    }
  }
  return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] }), device: 'cpu' }
}
