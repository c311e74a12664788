// router/gateway/: `pov serve`, the OpenAI-compatible front door of the network. Its one entry:
// GatewayService (the models, one paying router per model, caps, queue), GatewayServer (the HTTP
// API, SSE, the web page, /metrics over it) and the gateway's metrics. The rest of the folder
// (budget, lanes, JSON grammar, chat template, SSE, token bytes) is theirs.
export {
  GatewayService,
  type GatewayChain,
  type GatewayServiceOptions,
  type ServedModel,
  type GenerationRequest,
  type GenerationResult,
  type QueueView
} from './service.js'
export {
  GatewayServer,
  DEFAULT_BODY_LIMIT,
  COMPLETION_MAX_TOKENS,
  isLoopback,
  type GatewayServerOptions
} from './server.js'
export { createGatewayMetrics, type GatewayMetrics } from './metrics.js'
export { ApiError, type ApiErrorType } from './errors.js'
