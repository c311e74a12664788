// ONNX Runtime session creation with a device choice. CPU is the default; 'cuda' and 'webgpu'
// are tried and fall back to CPU with a clear warning, because ORT *throws* when a GPU provider
// cannot load instead of falling back (docs/toolchain.md): the CUDA 12 provider libraries come only
// from an install-time download, and WebGPU needs a Vulkan loader + GPU driver.
import ort from 'onnxruntime-node'

export { ort }

// ORT's process-wide logger prints a provider that fails to load (the CUDA provider's
// "Failed to load library …", in red) on stderr before the session creation that tried it
// throws; that error is what createSession reports, once, with what to do. So only fatal
// messages go through that logger (read when the first session is created).
ort.env.logLevel = 'fatal'
import { DEVICES, type Device } from '../experts.js'

export { DEVICES, type Device }

/** The subset of a pino logger we use (so tests can pass a stub). */
export interface MiniLogger {
  warn: (obj: object | string, msg?: string) => void
  debug?: (obj: object | string, msg?: string) => void
}

export interface SessionOptions {
  device?: Device
  logger?: MiniLogger
  /** Threads for one operator; ORT's default (physical cores) when unset. */
  intraOpNumThreads?: number
  /**
   * Whether ORT's intra-op worker threads spin while idle (ORT default: true). Spinning cuts
   * latency for back-to-back runs; a node with many experts (one session, one pool each) on
   * many cores may prefer false so idle pools do not burn CPU.
   */
  allowSpinning?: boolean
  /** ORT log severity: 0 verbose … 4 fatal. Default 3 (errors only): ORT's warnings are noisy. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4
  /** Overrides passed through to ORT. */
  ortOptions?: ort.InferenceSession.SessionOptions
}

export interface CreatedSession {
  session: ort.InferenceSession
  /** The device actually used (after any fallback). */
  device: Device
  /** Why the requested device was not used, if it was not. */
  fallbackReason?: string
}

function baseOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    // One run at a time per session is the common case; ORT's inter-op pool only helps graphs with
    // parallel branches, and an extra pool per session multiplies threads across 64+ sessions.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: opts.logSeverityLevel ?? 3,
    ...opts.ortOptions
  }
  if (opts.allowSpinning != null)
    o.extra = { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } }
  // ORT rejects an explicit undefined here.
  if (opts.intraOpNumThreads != null) o.intraOpNumThreads = opts.intraOpNumThreads
  return o
}

/** Creates a session from a .onnx path (external data resolves next to it) or from bytes. */
export async function createSession(
  model: string | Uint8Array,
  opts: SessionOptions = {}
): Promise<CreatedSession> {
  const device = opts.device ?? 'cpu'
  if (!DEVICES.includes(device))
    throw new Error(`unknown device "${String(device)}" (cpu|cuda|webgpu)`)
  const base = baseOptions(opts)
  let fallbackReason: string | undefined
  if (device !== 'cpu') {
    try {
      const session = await create(model, { ...base, executionProviders: [device, 'cpu'] })
      return { session, device }
    } catch (err) {
      fallbackReason = ((err as Error).message ?? String(err)).split('\n')[0]
      const hint =
        device === 'cuda'
          ? 'install the CUDA 12 provider (ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install) or use --device webgpu'
          : 'it needs a Vulkan loader (libvulkan1) and a GPU driver with a Vulkan ICD'
      const msg = `${device} execution provider unavailable (${fallbackReason}); falling back to CPU — ${hint}`
      if (opts.logger != null) opts.logger.warn({ device, err: fallbackReason }, msg)
      else process.emitWarning(msg)
    }
  }
  const session = await create(model, { ...base, executionProviders: ['cpu'] })
  return fallbackReason != null
    ? { session, device: 'cpu', fallbackReason }
    : { session, device: 'cpu' }
}

async function create(
  model: string | Uint8Array,
  o: ort.InferenceSession.SessionOptions
): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? await ort.InferenceSession.create(model, o)
    : await ort.InferenceSession.create(model, o)
}
