// node/: the operator daemon.
export { OperatorNode, defaultOptions, type OperatorNodeOptions } from './operator-node.js'
export {
  ExpertService,
  expertService,
  type ExpertServiceInit,
  type ExpertServiceComponents
} from './expert-service.js'
export { MicroBatcher, type BatcherOptions } from './batcher.js'
export { createNodeMetrics, type NodeMetrics } from './metrics.js'
export {
  ConnectionLimits,
  defaultLimits,
  parseAllowEntry,
  type ConnectionLimitsInit
} from './limits.js'
export { RefusalLog, type RefusalReason } from './refusals.js'
export { loadOrCreateKey } from './identity.js'
export type { ExpertBackend, HostedModel } from './runtime.js'
export {
  defaultRelayLimits,
  reachability,
  reachabilityServices,
  type Reachability,
  type ReachabilityOptions,
  type RelayLimits
} from './nat.js'
export {
  SelectionWatch,
  SELECTION_REMEDY,
  type SelectionOptions,
  type SelectionView
} from './selection.js'
