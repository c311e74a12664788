// All gateway metrics, on one registry, served at GET /metrics. Cost is in POV (Prometheus values
// are floats; the exact wei amounts are in each response's `pov` object).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface GatewayMetrics {
  registry: Registry
  requests: Counter<'endpoint' | 'status'>
  tokens: Counter<'model' | 'kind'>
  cost: Counter<'model'>
  refunded: Counter<'model'>
  ttft: Histogram<'model'>
  inFlight: Gauge
  queued: Gauge
  spent: Gauge
}

export function createGatewayMetrics(opts: { defaults?: boolean } = {}): GatewayMetrics {
  const registry = new Registry()
  if (opts.defaults === true) collectDefaultMetrics({ register: registry })
  return {
    registry,
    requests: new Counter({
      name: 'pov_gateway_requests_total',
      help: 'HTTP API requests by endpoint and status code',
      labelNames: ['endpoint', 'status'],
      registers: [registry]
    }),
    tokens: new Counter({
      name: 'pov_gateway_tokens_total',
      help: 'Tokens processed, by model and kind (prompt or completion)',
      labelNames: ['model', 'kind'],
      registers: [registry]
    }),
    cost: new Counter({
      name: 'pov_gateway_cost_pov_total',
      help: 'POV committed to nodes in vouchers for expert calls, by model',
      labelNames: ['model'],
      registers: [registry]
    }),
    refunded: new Counter({
      name: 'pov_gateway_refunded_pov_total',
      help: 'POV of expert calls charged then taken back (the node refused or failed the call), by model',
      labelNames: ['model'],
      registers: [registry]
    }),
    ttft: new Histogram({
      name: 'pov_gateway_time_to_first_token_seconds',
      help: 'From a generation request received (queueing included) to its first token',
      labelNames: ['model'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry]
    }),
    inFlight: new Gauge({
      name: 'pov_gateway_generations_in_flight',
      help: 'Generations running now',
      registers: [registry]
    }),
    queued: new Gauge({
      name: 'pov_gateway_generations_queued',
      help: 'Generation requests waiting for a slot',
      registers: [registry]
    }),
    spent: new Gauge({
      name: 'pov_gateway_spent_pov',
      help: 'POV spent since start (counted against the gateway spending cap)',
      registers: [registry]
    })
  }
}
