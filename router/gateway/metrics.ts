// All gateway metrics, on one registry, served at GET /metrics. Cost is in POV (Prometheus values
// are floats; the exact wei amounts are in each response's `pov` object).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

const WEI_PER_POV = 10n ** 18n

/**
 * POV wei as a float POV amount, for metric values: what `Number(formatUnits(wei, 18))` gives
 * (to the float's precision) without building and parsing a decimal string — it runs on every
 * paid expert call, where ethers' formatUnits cost ~70 µs (bench:gateway --cpu-prof).
 */
export function povFloat(wei: bigint): number {
  return Number(wei / WEI_PER_POV) + Number(wei % WEI_PER_POV) / 1e18
}

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
  depositFree: Gauge
  laneRoom: Gauge<'operator'>
  allocated: Counter
  queueWait: Histogram
  queueEstimate: Gauge
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
      name: 'pov_gateway_queue_length',
      help: 'Generation requests waiting for a slot',
      registers: [registry]
    }),
    spent: new Gauge({
      name: 'pov_gateway_spent_pov',
      help: 'POV spent since start (counted against the gateway spending cap)',
      registers: [registry]
    }),
    depositFree: new Gauge({
      name: 'pov_gateway_deposit_unallocated_pov',
      help: "The payer's escrow deposit not yet allocated to a lane, as last read",
      registers: [registry]
    }),
    laneRoom: new Gauge({
      name: 'pov_gateway_lane_room_pov',
      help: "What the payer's lane to each operator still covers beyond what is owed and one voucher margin",
      labelNames: ['operator'],
      registers: [registry]
    }),
    allocated: new Counter({
      name: 'pov_gateway_lane_topups_pov_total',
      help: 'POV moved from the unallocated deposit into lanes while serving',
      registers: [registry]
    }),
    queueWait: new Histogram({
      name: 'pov_gateway_queue_wait_seconds',
      help: 'How long a generation request waited for a slot',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry]
    }),
    queueEstimate: new Gauge({
      name: 'pov_gateway_queue_estimated_wait_seconds',
      help: 'Estimated wait for a slot of a request arriving now (queue length × mean generation time ÷ slots)',
      registers: [registry]
    })
  }
}
