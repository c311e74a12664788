// router/: the client role (remote experts, route manager, wire client).
export { Router, discoverStatic, NoPeerAnsweredError, type RouterOptions } from './router.js'
export {
  RemoteExpertExecutor,
  type RemoteExecutorOptions,
  type PaymentContext
} from './remote-executor.js'
export {
  RouteManager,
  selectReplica,
  benchAfterFailure,
  buildTable,
  expertKey,
  type PeerRoute,
  type RouteTable,
  type Bench,
  type RouteManagerOptions
} from './routes.js'
export { WireClient, type WireClientOptions } from './client.js'
export { ExpertChannel, ChannelClosedError, CallTimeoutError } from './channel.js'
export {
  SpotChecker,
  DEFAULT_VERIFY_RATE,
  type SpotCheckOptions,
  type SpotCheckCall,
  type SignedAnswer,
  type Fault,
  type CheckOutcome
} from './spot-check.js'
export { Reputation, type Conviction } from './reputation.js'
export { DEFAULT_VERIFY_TOLERANCE, outputDistance, sameAnswer } from './tolerance.js'
export {
  buildEvidence,
  parseEvidence,
  encodeEvidence,
  evidenceHash,
  verifyFaultEvidence,
  EvidenceError,
  EVIDENCE_FORMAT,
  type FaultEvidence,
  type EvidenceAnswer,
  type EvidenceBinding,
  type FaultVerdict,
  type SignerVerdict
} from './evidence.js'
