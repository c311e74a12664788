// router/: the client role (remote experts, route manager, wire client).
export { Router, discoverStatic, type RouterOptions } from './router.js'
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
