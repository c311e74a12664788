// All node metrics, on one registry, named `pov_*` with Prometheus unit suffixes (`_seconds`,
// `_total`). Passed as `NodeMetrics | null`.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface NodeMetrics {
  registry: Registry
  requests: Counter<'layer' | 'expert' | 'status'>
  requestDuration: Histogram<'status'>
  batchSize: Histogram
  /** Time in the expert runtime per run: requestDuration less decoding, signing and queueing. */
  runDuration: Histogram
  peersConnected: Gauge
  expertLoaded: Gauge<'shard'>
  /** POV (not wei: Prometheus values are floats) promised by accepted vouchers since start. */
  earned: Counter
  /** Payers whose latest voucher is held in the journal (redeemable by `pov node claim`). */
  vouchersUnredeemed: Gauge
  /** Redemptions the node made by itself because a payer started unlocking (node/payments/auto-claim.ts). */
  autoClaims: Counter
  /** POV held in vouchers of payers who are unlocking, not yet redeemed (0 right after an automatic claim). */
  unredeemedAtRisk: Gauge
  /** Connections, streams and requests refused or reset, by reason (node/refusals.ts). */
  refusals: Counter<'reason'>
  /** 1 for each reason the node is not (fully) in good standing (chain/standing.ts codes, plus
   *  chain-unreachable); all 0 when routers pick it. */
  standingIssue: Gauge<'code'>
  /** This node's part of its clients' calls for its experts, 0..1 (node/selection.ts). */
  selectionShare: Gauge
  /** Clients of the last window that chose this node / other replicas (node/selection.ts). */
  selectionClients: Gauge<'choice'>
}

export function createNodeMetrics(opts: { defaults?: boolean } = {}): NodeMetrics {
  const registry = new Registry()
  if (opts.defaults === true) collectDefaultMetrics({ register: registry })
  return {
    registry,
    requests: new Counter({
      name: 'pov_requests_total',
      help: 'Expert calls by layer, expert and status',
      labelNames: ['layer', 'expert', 'status'],
      registers: [registry]
    }),
    requestDuration: new Histogram({
      name: 'pov_request_duration_seconds',
      help: 'Time from a request frame decoded to its response queued',
      labelNames: ['status'],
      // decode calls are sub-millisecond on a warm node; prefill batches take up to seconds
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
      ],
      registers: [registry]
    }),
    batchSize: new Histogram({
      name: 'pov_batch_size',
      help: 'Rows per runtime run after micro-batching',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers: [registry]
    }),
    runDuration: new Histogram({
      name: 'pov_expert_run_seconds',
      help: 'Time in the expert runtime (onnxruntime) per run after micro-batching',
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
      ],
      registers: [registry]
    }),
    peersConnected: new Gauge({
      name: 'pov_peers_connected',
      help: 'Open libp2p connections',
      registers: [registry]
    }),
    expertLoaded: new Gauge({
      name: 'pov_expert_loaded',
      help: '1 for each shard loaded',
      labelNames: ['shard'],
      registers: [registry]
    }),
    earned: new Counter({
      name: 'pov_earned_total',
      help: 'POV promised by accepted vouchers since start',
      registers: [registry]
    }),
    vouchersUnredeemed: new Gauge({
      name: 'pov_vouchers_unredeemed',
      help: 'Payers with a voucher held in the journal',
      registers: [registry]
    }),
    autoClaims: new Counter({
      name: 'pov_auto_claims_total',
      help: 'Voucher redemptions made by the node itself because a payer started unlocking',
      registers: [registry]
    }),
    unredeemedAtRisk: new Gauge({
      name: 'pov_unredeemed_at_risk',
      help: 'POV in held vouchers of payers who are unlocking, not yet redeemed',
      registers: [registry]
    }),
    refusals: new Counter({
      name: 'pov_refusals_total',
      help: 'Connections, streams and requests refused or reset, by reason',
      labelNames: ['reason'],
      registers: [registry]
    }),
    standingIssue: new Gauge({
      name: 'pov_standing_issue',
      help: '1 while this reason keeps the node from good standing (not-registered, unbonding, below-min-stake, frozen, model-revoked, chain-unreachable)',
      labelNames: ['code'],
      registers: [registry]
    }),
    selectionShare: new Gauge({
      name: 'pov_selection_share',
      help: "This node's part of its clients' calls for its experts over the last minute, 0..1 (from their request ids)",
      registers: [registry]
    }),
    selectionClients: new Gauge({
      name: 'pov_selection_clients',
      help: 'Clients of the last minute that sent this node its experts’ calls (chose) or sent them to other replicas (passed-over)',
      labelNames: ['choice'],
      registers: [registry]
    })
  }
}
