export { createSession, DEVICES, ort } from './ort.js'
export type { CreatedSession, Device, MiniLogger, SessionOptions } from './ort.js'
export { loadExpertRuntime, ExpertInputError, ExpertNotHostedError } from './expert.js'
export type { ExpertRuntime, ExpertRuntimeOptions } from './expert.js'
