// The gateway's engine: the models it can serve (local bundle: tokenizer, chat template, dense
// runtime), one paying router per model opened on first use and shared by every request, a
// bounded number of generations at a time, and cost accounting per request. Each expert call's
// charge reaches `onCharge` (router/paid.ts) in the async context of the generation that made
// it, so AsyncLocalStorage attributes it to that request, which is how per-request and
// gateway-wide caps are enforced before a voucher is signed.
import { AsyncLocalStorage } from 'node:async_hooks'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { formatUnits, getAddress, type Provider, type Signer } from 'ethers'
import type { Logger } from 'pino'
import type { Libp2p } from '@libp2p/interface'
import type { PovContracts } from '../../chain/contracts.js'
import type { Deployment } from '../../chain/deployment.js'
import { loadBundle, type Bundle } from '../../model/bundle/index.js'
import { loadDenseRuntime, type DenseRuntime } from '../../model/dense/index.js'
import { generate, isExpertUnavailable, NoExpertAvailableError } from '../../model/generate.js'
import { DraftPool } from '../../model/draft/index.js'
import { DraftLength } from '../../model/speculative.js'
import { loadTokenizer, type PovTokenizer } from '../../model/tokenizer.js'
import {
  openPaidRouter,
  PaymentSetupError,
  type CallCharge,
  type PaidRouter,
  type PaidRouterOptions
} from '../paid.js'
import { PaymentDeferredError } from '../remote-executor.js'
import { createRouterHost } from '../router.js'
import { loadChatTemplate, type ChatTemplate } from './chat-template.js'
import { ApiError, SpendRefusedError } from './errors.js'
import { LaneKeeper, type Funds, type LaneKeeperOptions } from './lanes.js'
import { povFloat, type GatewayMetrics } from './metrics.js'
import { JsonConstraint, type Schema } from './json-grammar.js'
import { ReplyBudget } from './budget.js'
import { StopTextStream } from './text-stream.js'
import { loadTokenBytes } from './token-bytes.js'

export interface GatewayChain {
  provider: Provider
  contracts: PovContracts
  chainId: number
  deployment: Deployment
}

export interface GatewayServiceOptions {
  chain: GatewayChain
  /** The payer: its escrow deposit pays the nodes. */
  signer: Signer
  /** Local bundles; approved models whose URI is a local file:// bundle are served as well. */
  bundles?: string[]
  /** Most wei one request may spend. */
  maxCostPerRequest?: bigint
  /** Most wei the gateway spends from its start, all requests together. */
  spendingCap?: bigint
  /** Most tokens one request may ask for. @default 1024 */
  maxTokensLimit?: number
  /** Generations run at once; more wait in a queue. @default 8 */
  maxConcurrent?: number
  /** Requests allowed to wait for a slot; beyond it the answer is 503. @default 256 */
  maxQueue?: number
  router?: Pick<
    PaidRouterOptions,
    | 'replicas'
    | 'maxPrice'
    | 'operators'
    | 'wireDType'
    | 'busyPollUs'
    | 'listen'
    | 'callTimeoutMs'
    | 'ledgerPath'
  >
  /** How the lanes are kept funded (router/gateway/lanes.ts). */
  lanes?: Pick<LaneKeeperOptions, 'tickMs' | 'horizonMs' | 'depositReadMs'>
  device?: 'cpu' | 'cuda'
  /** Speculative decoding (model/speculative.ts): on unless `enabled` is false; `draftTokens`
   *  fixes k (default adaptive). */
  speculative?: { enabled?: boolean; draftTokens?: number }
  logger?: Logger
  metrics?: GatewayMetrics | null
}

export interface ServedModel {
  /** The id clients name: the approved name, or the model id when names clash. */
  id: string
  modelId: string
  name: string
  bundle: Bundle
  tokenizer: PovTokenizer
  template: ChatTemplate
  dense: DenseRuntime
  /** Each token's bytes (null: a special token), for constrained decoding and logprobs. */
  tokenBytes: Array<Uint8Array | null>
  /** Units of work (token-rows through one expert) one token costs: layers × top-k. */
  unitsPerToken: number
  /** The bundle's drafts, read once when the model is loaded; null with speculation off. */
  drafts: DraftPool | null
  /** When this gateway loaded it (unix seconds), for `created`. */
  created: number
}

export interface NodeCharge {
  operator: string
  peerId: string
  calls: number
  units: number
  amount: bigint
}

export interface GenerationRequest {
  model: ServedModel
  promptIds: number[]
  maxTokens: number
  temperature?: number
  topP?: number
  seed?: number
  /** Generate maxTokens tokens even past the end-of-sequence token. */
  ignoreEos?: boolean
  stop: string[]
  /** Aborted when the client goes away: the generation stops and pays for nothing more. */
  signal: AbortSignal
  /** performance.now() when the request arrived (time to first token counts from there). */
  receivedAt: number
  /** OpenAI's penalties: minus presence (once seen) and frequency × count, per generated token. */
  presencePenalty?: number
  frequencyPenalty?: number
  /** Constrained decoding: the reply is a JSON document (of `schema` when given). */
  json?: { schema: Schema | null } | null
  /** Report each token's log-probability and this many alternatives (0: none); null: off. */
  logprobs?: number | null
  /** The request field the prompt came in (`messages` or `prompt`), for errors about it. */
  promptParam?: string
  /**
   * The generation got its slot and is about to start: `nodes` selected, and `usage()` reads what
   * it has cost and generated so far — at any time, also after a failure (a reply cut short
   * reports what it spent).
   */
  onStart?: (info: { nodes: number; usage: () => GenerationUsage }) => void
  /** New text, with the log-probabilities of the tokens since the last call (when asked). */
  onText?: (delta: string, logprobs: TokenLogprob[]) => void
}

/** What a generation has cost and generated so far (GenerationResult's figures, mid-way). */
export interface GenerationUsage {
  cost: bigint
  nodes: NodeCharge[]
  completionTokens: number
}

/** One generated token's log-probability (natural log) under the distribution it was drawn from. */
export interface TokenLogprob {
  id: number
  token: string
  bytes: number[]
  logprob: number
  top: Array<{ id: number; token: string; bytes: number[]; logprob: number }>
}

export interface GenerationResult {
  text: string
  promptTokens: number
  completionTokens: number
  /** 'insufficient_funds': the payer's deposit is spent (no lane covers the next voucher). */
  finishReason: 'stop' | 'length' | 'insufficient_funds'
  cost: bigint
  nodes: NodeCharge[]
  degraded: boolean
  /** Set when a cost cap (finish_reason 'length') or the deposit ('funds') ended the reply early. */
  capped: 'request' | 'gateway' | 'funds' | null
  /** Per generated token, when `logprobs` was asked. */
  logprobs: TokenLogprob[] | null
}

/** The wait queue as a client arriving now would meet it. */
export interface QueueView {
  running: number
  slots: number
  waiting: number
  maxQueue: number
  /** Mean seconds a generation holds a slot (recent ones), null before the first ends. */
  meanGenerationS: number | null
  /** Seconds a request arriving now would wait for a slot (0 with a slot free). */
  estimatedWaitS: number
}

interface Account {
  spent: bigint
  nodes: Map<string, NodeCharge>
  /** Request ids of the calls charged to it, to forget them when the request ends. */
  charged: Set<bigint>
  ac: AbortController
  refused: SpendRefusedError | null
  model: string
  keeper: LaneKeeper
  paid: PaidRouter
  /** Tokens generated so far. */
  tokens: number
}

export class GatewayService {
  readonly models = new Map<string, ServedModel>()
  readonly payer: string
  private readonly routers = new Map<string, Promise<{ paid: PaidRouter; keeper: LaneKeeper }>>()
  private readonly accounts = new AsyncLocalStorage<Account>()
  /** The account each call in flight was charged to (a refund finds it by the call's request id). */
  private readonly chargedTo = new Map<bigint, Account>()
  private readonly slots: Slots
  /** Wei spent since start, all requests. */
  spent = 0n
  /** Tokens generated since start, all requests (the page's tokens/s). */
  generatedTokens = 0
  /** Wei paid per operator since start, all requests. */
  readonly paidTo = new Map<string, bigint>()
  readonly maxTokensLimit: number
  /** Adaptive k's measurements per model and greedy-or-sampled, kept from request to request
   *  (a short reply alone would end before they outgrow the prior). */
  private readonly draftLengths = new Map<string, DraftLength>()
  private hostP: Promise<Libp2p> | null = null
  private hostNow: Libp2p | null = null

  private constructor(
    private readonly o: GatewayServiceOptions,
    payer: string
  ) {
    this.payer = payer
    this.maxTokensLimit = o.maxTokensLimit ?? 1024
    this.slots = new Slots(o.maxConcurrent ?? 8, o.maxQueue ?? 256, o.metrics ?? null)
  }

  static async init(o: GatewayServiceOptions): Promise<GatewayService> {
    const s = new GatewayService(o, getAddress(await o.signer.getAddress()))
    try {
      s.hostP = createRouterHost({ listen: o.router?.listen })
      s.hostNow = await s.hostP
      await s.loadModels()
    } catch (err) {
      await s.close()
      throw err
    }
    return s
  }

  /**
   * The gateway's libp2p host: the routers of all its models run on it, and the network view
   * measures its round trips over it (router/gateway/network.ts), so a node sees one connection.
   */
  get host(): Libp2p {
    if (this.hostNow == null) throw new Error('the gateway has no libp2p host (closed)')
    return this.hostNow
  }

  get chain(): GatewayChain {
    return this.o.chain
  }

  private get log(): Logger | undefined {
    return this.o.logger
  }

  private async loadModels(): Promise<void> {
    const { contracts } = this.o.chain
    const given = new Map<string, Bundle>()
    for (const dir of this.o.bundles ?? []) {
      const b = await loadBundle(dir, { verify: 'lazy' })
      given.set(b.modelId.toLowerCase(), b)
    }
    const approved = (await contracts.models.approvedModels()).map((m) => String(m).toLowerCase())
    for (const id of given.keys())
      if (!approved.includes(id))
        throw new Error(
          `bundle ${given.get(id)?.dir} is model ${id}, which is not approved on-chain`
        )
    const infos = await Promise.all(
      approved.map(async (id) => ({ id, info: await contracts.models.modelInfo(id) }))
    )
    const names = new Map<string, number>()
    for (const { info } of infos) names.set(info.name, (names.get(info.name) ?? 0) + 1)
    for (const { id, info } of infos) {
      let bundle = given.get(id)
      if (bundle == null) {
        const path = info.uri.startsWith('file://') ? fileURLToPath(info.uri) : ''
        if (path === '' || !existsSync(path)) {
          this.log?.info(
            { model: id, name: info.name, uri: info.uri },
            'approved model has no local bundle; not served'
          )
          continue
        }
        bundle = await loadBundle(path, { verify: 'lazy' })
        if (bundle.modelId.toLowerCase() !== id) {
          this.log?.warn(
            { model: id, dir: path },
            'bundle at the approved URI is another model; not served'
          )
          continue
        }
      }
      const dense = await loadDenseRuntime(bundle, {
        device: this.o.device ?? 'cpu',
        allowSpinning: false
      })
      const model: ServedModel = {
        id: names.get(info.name) === 1 && !/^0x/i.test(info.name) ? info.name : bundle.modelId,
        modelId: bundle.modelId,
        name: info.name,
        bundle,
        tokenizer: await loadTokenizer(bundle.dir),
        template: await loadChatTemplate(bundle.dir),
        tokenBytes: await loadTokenBytes(bundle.dir),
        dense,
        unitsPerToken: bundle.config.numLayers * bundle.config.topK,
        drafts: this.o.speculative?.enabled !== false ? await DraftPool.open(bundle.dir) : null,
        created: Math.floor(Date.now() / 1000)
      }
      this.models.set(model.id, model)
      this.log?.info(
        { model: model.id, modelId: model.modelId, template: model.template.kind },
        'serving model'
      )
    }
  }

  /** A model by its id or its 0x model id; 404 otherwise. */
  model(name: string): ServedModel {
    const m =
      this.models.get(name) ??
      [...this.models.values()].find((x) => x.modelId.toLowerCase() === name.toLowerCase())
    if (m == null)
      throw new ApiError(
        404,
        'not_found_error',
        `The model '${name}' does not exist or is not served here (GET /v1/models lists the served ones)`,
        'model_not_found',
        'model'
      )
    return m
  }

  /**
   * 402 unless the payer can pay for `cost` more (the prompt's prefill, at the dearest selected
   * price): the lanes' room and the unallocated deposit together (re-read from the chain when
   * they fall short, so a fresh `pov deposit` counts at once). Before the model's router is open,
   * opening it decides (no deposit at all: PaymentSetupError, a 402 too).
   */
  async checkFunds(keeper: LaneKeeper, cost: bigint): Promise<Funds> {
    let funds = keeper.funds()
    if (funds.available < cost || funds.unlocking) {
      try {
        funds = await keeper.fresh()
      } catch (err) {
        throw new ApiError(
          503,
          'service_unavailable',
          `cannot read the escrow deposit from the chain: ${(err as Error).message}`,
          'chain_unavailable'
        )
      }
    }
    if (funds.unlocking)
      throw new ApiError(
        402,
        'insufficient_quota',
        `the escrow deposit of ${this.payer} is unlocking and nodes refuse work paid from it — run \`pov cancel-unlock\` to keep using it`,
        'deposit_unlocking'
      )
    if (funds.available < cost)
      throw new ApiError(
        402,
        'insufficient_quota',
        `the escrow deposit of ${this.payer} is spent: ${formatUnits(funds.available, 18)} POV left (unallocated ${formatUnits(funds.free, 18)}, the rest in lanes to nodes), this request needs about ${formatUnits(cost, 18)} POV to start — run \`pov deposit AMOUNT\` with the gateway's keystore (the gateway picks it up without a restart)`,
        'insufficient_funds'
      )
    return funds
  }

  /** The funds of every open router (the page and /v1/pov/network show them). */
  async funds(): Promise<Map<string, Funds>> {
    const out = new Map<string, Funds>()
    for (const [id, p] of this.routers) {
      try {
        out.set(id, (await p).keeper.funds())
      } catch {}
    }
    return out
  }

  /** The queue a request arriving now meets. */
  queue(): QueueView {
    return this.slots.view()
  }

  /** Per selected node of each open router: expert calls in flight now and paid calls so far. */
  async load(): Promise<Map<string, { inFlight: number; calls: number; units: number }>> {
    const out = new Map<string, { inFlight: number; calls: number; units: number }>()
    for (const r of (await this.openRouters()).values()) {
      const spent = r.payer.spent()
      for (const n of r.nodes.values()) {
        const s = spent.get(n.operator)
        const prev = out.get(n.peerId) ?? { inFlight: 0, calls: 0, units: 0 }
        out.set(n.peerId, {
          inFlight: prev.inFlight + (r.router.routes.load.get(n.peerId) ?? 0),
          calls: prev.calls + (s?.calls ?? 0),
          units: prev.units + (s?.units ?? 0)
        })
      }
    }
    return out
  }

  private checkGatewayCap(next = 0n): void {
    const cap = this.o.spendingCap
    if (cap != null && this.spent + next > cap)
      throw new ApiError(
        402,
        'insufficient_quota',
        `the gateway's spending cap of ${formatUnits(cap, 18)} POV is reached (spent ${formatUnits(this.spent, 18)} POV) — restart it with a higher --spending-cap`,
        'spending_cap_reached'
      )
  }

  /**
   * The paying router of `m` and the keeper of its lanes, opened on first use; a failed open is
   * retried by the next request.
   */
  async router(m: ServedModel): Promise<{ paid: PaidRouter; keeper: LaneKeeper }> {
    let p = this.routers.get(m.modelId)
    if (p == null) {
      const c = this.o.chain
      p = (async () => {
        const paid = await openPaidRouter({
          ...this.o.router,
          libp2p: this.host,
          contracts: c.contracts,
          chainId: c.chainId,
          registryAddress: c.deployment.contracts.registry,
          signer: this.o.signer,
          modelId: m.modelId,
          hidden: m.bundle.config.hiddenSize,
          shardCount: m.bundle.manifest.shards.length,
          onCharge: (charge) => this.charge(charge),
          onRefund: (charge) => {
            this.refund(charge)
          },
          logger: this.o.logger
        })
        try {
          const keeper = await LaneKeeper.open({
            escrow: c.contracts.escrow,
            signer: this.o.signer,
            payer: paid.payer,
            operators: () => [...new Set([...paid.nodes.values()].map((n) => n.operator))],
            logger: this.o.logger,
            metrics: this.o.metrics,
            ...this.o.lanes
          })
          return { paid, keeper }
        } catch (err) {
          await paid.close()
          throw err
        }
      })()
      this.routers.set(m.modelId, p)
      p.catch(() => {
        this.routers.delete(m.modelId)
      })
    }
    try {
      return await p
    } catch (err) {
      if (!(err instanceof PaymentSetupError)) throw err
      if (/no deposit|unlocking/.test(err.message))
        throw new ApiError(402, 'insufficient_quota', err.message, 'no_deposit')
      throw new ApiError(503, 'service_unavailable', err.message, 'no_node_available')
    }
  }

  /**
   * onCharge: attributes a call's charge to its request, refusing it past a cap, or when its lane
   * cannot cover the voucher and the deposit has nothing left to top it up (then the request
   * ends: no voucher the node would refuse goes out). Waits only while a lane is topped up.
   */
  private charge(c: CallCharge): void | Promise<void> {
    const a = this.accounts.getStore()
    if (a == null) throw new Error('an expert call outside a gateway request was refused payment')
    if (a.keeper.headroom(c.operator, c.amount) < 0n)
      return (async () => {
        if (!(await a.keeper.cover(c.operator, c.amount).catch(() => false))) {
          // money left in another lane of this shard: the router retries there (this node is
          // not at fault: neither benched nor disconnected)
          if (GatewayService.otherLaneCovers(a, c))
            throw new PaymentDeferredError(
              `the escrow lane to ${c.operator} cannot cover the next voucher and nothing is left to allocate; another replica is paid instead`
            )
          const f = a.keeper.funds()
          const refused = new SpendRefusedError(
            'funds',
            `the escrow deposit of ${this.payer} is spent: the lane to ${c.operator} cannot cover the next voucher and ${formatUnits(f.free, 18)} POV is unallocated — run \`pov deposit AMOUNT\``
          )
          a.refused ??= refused
          a.ac.abort(refused)
          throw refused
        }
        this.book(c, a)
      })()
    this.book(c, a)
  }

  /** Whether another selected node sharing a shard with the call's node has lane room for it. */
  private static otherLaneCovers(a: Account, c: CallCharge): boolean {
    const me = a.paid.nodes.get(c.peerId)
    if (me == null) return false
    for (const n of a.paid.nodes.values())
      if (
        n.peerId !== c.peerId &&
        n.shards.some((s) => me.shards.includes(s)) &&
        a.keeper.headroom(n.operator, c.amount) >= 0n
      )
        return true
    return false
  }

  private book(c: CallCharge, a: Account): void {
    const reqCap = this.o.maxCostPerRequest
    const cap = this.o.spendingCap
    let refused: SpendRefusedError | null = null
    if (reqCap != null && a.spent + c.amount > reqCap)
      refused = new SpendRefusedError(
        'request',
        `the request's cost cap of ${formatUnits(reqCap, 18)} POV is reached`
      )
    else if (cap != null && this.spent + c.amount > cap)
      refused = new SpendRefusedError(
        'gateway',
        `the gateway's spending cap of ${formatUnits(cap, 18)} POV is reached`
      )
    if (refused != null) {
      a.refused ??= refused
      a.ac.abort(refused)
      throw refused
    }
    a.spent += c.amount
    this.spent += c.amount
    a.charged.add(c.requestId)
    this.chargedTo.set(c.requestId, a)
    this.paidTo.set(c.operator, (this.paidTo.get(c.operator) ?? 0n) + c.amount)
    const n = a.nodes.get(c.peerId) ?? {
      operator: c.operator,
      peerId: c.peerId,
      calls: 0,
      units: 0,
      amount: 0n
    }
    n.calls++
    n.units += c.units
    n.amount += c.amount
    a.nodes.set(c.peerId, n)
    this.o.metrics?.cost.inc({ model: a.model }, povFloat(c.amount))
    this.o.metrics?.spent.set(povFloat(this.spent))
  }

  /**
   * onRefund: a call the node refused or failed is not owed; its charge leaves the request's and
   * the gateway's totals. A refund that arrives after its request ended stays counted (the
   * request's cost is already reported; the spending cap errs on the safe side).
   */
  private refund(c: CallCharge): void {
    const a = this.chargedTo.get(c.requestId)
    if (a == null) return
    this.chargedTo.delete(c.requestId)
    a.charged.delete(c.requestId)
    a.spent -= c.amount
    this.spent -= c.amount
    const paid = (this.paidTo.get(c.operator) ?? 0n) - c.amount
    if (paid > 0n) this.paidTo.set(c.operator, paid)
    else this.paidTo.delete(c.operator)
    const n = a.nodes.get(c.peerId)
    if (n != null) {
      n.calls--
      n.units -= c.units
      n.amount -= c.amount
      if (n.calls === 0) a.nodes.delete(c.peerId)
    }
    this.o.metrics?.refunded.inc({ model: a.model }, povFloat(c.amount))
    this.o.metrics?.spent.set(povFloat(this.spent))
  }

  /** Highest price per unit among the nodes a router selected (the cost bound used by the caps). */
  private static maxPrice(r: PaidRouter): bigint {
    let max = 0n
    for (const n of r.nodes.values()) if (n.price > max) max = n.price
    return max
  }

  async generate(req: GenerationRequest): Promise<GenerationResult> {
    const m = req.model
    if (req.json != null) {
      const min = new JsonConstraint(m.tokenBytes, null, req.json.schema, req.maxTokens).minTokens()
      if (min > req.maxTokens)
        throw new ApiError(
          400,
          'invalid_request_error',
          `a JSON reply of this response_format takes at least ${min} tokens; max_tokens is ${req.maxTokens}`,
          'invalid_value',
          'max_tokens'
        )
    }
    this.checkGatewayCap()
    const { paid, keeper } = await this.router(m)
    const perToken = BigInt(m.unitsPerToken) * GatewayService.maxPrice(paid)
    const prefill = BigInt(req.promptIds.length) * perToken
    const reqCap = this.o.maxCostPerRequest
    if (reqCap != null && prefill > reqCap)
      throw new ApiError(
        400,
        'invalid_request_error',
        `the prompt's ${req.promptIds.length} tokens may cost up to ${formatUnits(prefill, 18)} POV, above the per-request cap of ${formatUnits(reqCap, 18)} POV — shorten the prompt`,
        'cost_cap_exceeded',
        req.promptParam ?? 'messages'
      )
    // fail fast, before waiting in the queue: a deposit that cannot pay the prompt is a 402
    await this.checkFunds(keeper, prefill)
    const release = await this.slots.acquire(req.signal)
    const metrics = this.o.metrics
    metrics?.inFlight.inc()
    try {
      req.signal.throwIfAborted()
      this.checkGatewayCap(prefill)
      await this.checkFunds(keeper, prefill)
      const account: Account = {
        spent: 0n,
        nodes: new Map(),
        charged: new Set(),
        ac: new AbortController(),
        refused: null,
        model: m.id,
        keeper,
        paid,
        tokens: 0
      }
      req.onStart?.({
        nodes: paid.nodes.size,
        usage: () => ({
          cost: account.spent,
          nodes: [...account.nodes.values()].map((n) => ({ ...n })),
          completionTokens: account.tokens
        })
      })
      const signal = AbortSignal.any([req.signal, account.ac.signal])
      try {
        return await this.accounts.run(
          account,
          async () => await this.run(req, paid, perToken, account, signal)
        )
      } finally {
        for (const id of account.charged) this.chargedTo.delete(id)
      }
    } finally {
      metrics?.inFlight.dec()
      release()
    }
  }

  private draftLength(key: string): DraftLength {
    let l = this.draftLengths.get(key)
    if (l == null) this.draftLengths.set(key, (l = new DraftLength()))
    return l
  }

  private async run(
    req: GenerationRequest,
    paid: PaidRouter,
    perToken: bigint,
    account: Account,
    signal: AbortSignal
  ): Promise<GenerationResult> {
    const m = req.model
    const reqCap = this.o.maxCostPerRequest
    const cap = this.o.spendingCap
    const spec = this.o.speculative
    const draft = m.drafts?.acquire() ?? null
    const eos = req.ignoreEos === true ? null : m.bundle.config.eosTokenId
    // what the reply may still spend, re-read at every position from what was actually paid
    const budget = new ReplyBudget({
      maxTokens: req.maxTokens,
      rowCost: perToken,
      moneyLeft: () => {
        let left: bigint | null = reqCap != null ? reqCap - account.spent : null
        if (cap != null && (left == null || cap - this.spent < left)) left = cap - this.spent
        return left
      }
    })
    const constraint =
      req.json == null
        ? null
        : new JsonConstraint(m.tokenBytes, eos, req.json.schema, (n) => budget.tokensLeft(n))
    // rows of the round the generator just ran (its tokens come out one by one after it)
    let roundRows: number
    const it = generate({
      ...(draft != null
        ? {
            speculative: {
              draft,
              draftTokens: spec?.draftTokens,
              length: this.draftLength(
                `${m.id}/${(req.temperature ?? 0) > 0 ? 'sampled' : 'greedy'}`
              )
            }
          }
        : {}),
      dense: m.dense,
      experts: paid.router.executor,
      promptIds: req.promptIds,
      maxTokens: req.maxTokens,
      temperature: req.temperature,
      topP: req.topP,
      seed: req.seed,
      eosTokenId: eos,
      processLogits: GatewayService.logitsProcessor(req, constraint),
      returnLogits: req.logprobs != null,
      // a JSON reply's speculative rounds leave the rows its closing needs
      ...(constraint != null
        ? { draftLimit: (g: readonly number[]) => budget.draftLimit(constraint.closing(g).length) }
        : {}),
      onRound: (r) => {
        roundRows = r.proposed + 1
      },
      signal
    })
    const logprobs: TokenLogprob[] | null = req.logprobs != null ? [] : null
    let sent = 0
    const ids: number[] = []
    const text = new StopTextStream((x) => m.tokenizer.decode(x), req.stop)
    let finishReason: GenerationResult['finishReason'] = 'length'
    let degraded = false
    let capped: GenerationResult['capped'] = null
    // a token can cost more than its units × price: hedged and spot-checked calls are paid too
    let next = perToken
    try {
      for (;;) {
        if (ids.length > 0 && constraint != null) {
          // a JSON reply plans in rows (its rounds draft no more than the money left pays): it
          // stops when no row is left, and its closing is added below
          if (!budget.paysNextRow()) {
            const perRow = budget.costPerRow
            capped = reqCap != null && account.spent + perRow > reqCap ? 'request' : 'gateway'
            break
          }
        } else if (ids.length > 0) {
          // stop before a token whose price (the dearest seen so far) would cross a cap
          if (reqCap != null && account.spent + next > reqCap) {
            capped = 'request'
            break
          }
          if (cap != null && this.spent + next > cap) {
            capped = 'gateway'
            break
          }
        }
        const before = account.spent
        roundRows = 0
        const r = await it.next()
        if (ids.length > 0 && account.spent - before > next) next = account.spent - before
        if (roundRows > 0) budget.observe(account.spent - before, roundRows)
        if (r.done === true) {
          finishReason = r.value.stopReason === 'eos' ? 'stop' : 'length'
          degraded ||= r.value.degraded
          break
        }
        if (ids.length === 0)
          this.o.metrics?.ttft.observe({ model: m.id }, (performance.now() - req.receivedAt) / 1000)
        ids.push(r.value.id)
        account.tokens = ids.length
        degraded ||= r.value.degraded
        if (logprobs != null && r.value.logits != null)
          logprobs.push(tokenLogprob(m, r.value.id, r.value.logits, req.logprobs ?? 0))
        const delta = text.push(ids)
        if (delta !== '') {
          req.onText?.(delta, logprobs?.slice(sent) ?? [])
          sent = logprobs?.length ?? 0
        }
        if (text.stopped) {
          finishReason = 'stop'
          break
        }
        // a complete JSON document is the whole reply
        if (constraint != null && constraint.accept(ids) && constraint.done) {
          finishReason = 'stop'
          break
        }
      }
    } catch (err) {
      if (account.refused != null) {
        capped = account.refused.cap
        if (capped === 'funds') finishReason = 'insufficient_funds'
      } else if (req.signal.aborted) throw req.signal.reason ?? err
      else if (err instanceof NoExpertAvailableError || isExpertUnavailable(err))
        throw new ApiError(
          503,
          'service_unavailable',
          `no node available: ${(err as Error).message}`,
          'no_node_available'
        )
      else throw err
    } finally {
      await it.return(undefined as never).catch(() => {})
      if (draft != null) m.drafts?.release(draft)
    }
    if (constraint != null && capped != null && !text.stopped) {
      // Cut by a cap or the deposit (a call dearer than planned, a top-up that failed): the
      // document ends with its shortest closing, the tokens the mask would force one by one
      // anyway. The model's logits play no part in forced tokens, so no node is asked (nor
      // paid) for them; the mask kept room for them under max_tokens at every step.
      const closing = constraint.closing(ids)
      if (closing.every((id) => id >= 0) && ids.length + closing.length <= req.maxTokens) {
        for (const id of closing) {
          ids.push(id)
          if (logprobs != null) {
            const only = new Float32Array(m.bundle.config.vocabSize).fill(-Infinity)
            only[id] = 0
            logprobs.push(tokenLogprob(m, id, only, req.logprobs ?? 0))
          }
        }
        if (closing.length > 0 && finishReason === 'length') finishReason = 'stop'
      }
    }
    if (!text.stopped && ids.length > 0) {
      const tail = text.push(ids, true)
      if (tail !== '' || sent < (logprobs?.length ?? 0))
        req.onText?.(tail, logprobs?.slice(sent) ?? [])
    }
    this.o.metrics?.tokens.inc({ model: m.id, kind: 'prompt' }, req.promptIds.length)
    this.o.metrics?.tokens.inc({ model: m.id, kind: 'completion' }, ids.length)
    this.generatedTokens += ids.length
    return {
      text: text.text,
      promptTokens: req.promptIds.length,
      completionTokens: ids.length,
      finishReason,
      cost: account.spent,
      nodes: [...account.nodes.values()],
      degraded,
      capped,
      logprobs
    }
  }

  /** Penalties and the JSON mask, applied to each position's logits before its token is chosen. */
  private static logitsProcessor(
    req: GenerationRequest,
    constraint: JsonConstraint | null
  ): ((logits: Float32Array, generated: readonly number[]) => void) | undefined {
    const presence = req.presencePenalty ?? 0
    const frequency = req.frequencyPenalty ?? 0
    if (presence === 0 && frequency === 0 && constraint == null) return undefined
    return (logits, generated) => {
      if (presence !== 0 || frequency !== 0) {
        const counts = new Map<number, number>()
        for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1)
        for (const [id, n] of counts) logits[id] -= presence + frequency * n
      }
      constraint?.mask(logits, generated)
    }
  }

  /** Routers already open (the network view reads their selections). */
  async openRouters(): Promise<Map<string, PaidRouter>> {
    const out = new Map<string, PaidRouter>()
    for (const [id, p] of this.routers) {
      try {
        out.set(id, (await p).paid)
      } catch {}
    }
    return out
  }

  async close(): Promise<void> {
    const open = new Map<string, { paid: PaidRouter; keeper: LaneKeeper }>()
    for (const [id, p] of this.routers) {
      try {
        open.set(id, await p)
      } catch {}
    }
    this.routers.clear()
    await Promise.allSettled(
      [...open.values()].map(async (r) => {
        r.keeper.close()
        await r.paid.close()
      })
    )
    await Promise.allSettled(
      [...this.models.values()].map(async (m) => {
        await m.dense.close()
        await m.drafts?.close()
      })
    )
    const host = await this.hostP?.catch(() => null)
    this.hostP = null
    this.hostNow = null
    await host?.stop()
  }
}

/** log-softmax of `logits` at `id`, with the `top` most likely alternatives. */
function tokenLogprob(m: ServedModel, id: number, logits: Float32Array, top: number): TokenLogprob {
  let max = -Infinity
  for (const x of logits) if (x > max) max = x
  let sum = 0
  for (const x of logits) sum += Math.exp(x - max)
  const lse = max + Math.log(sum)
  const entry = (i: number): TokenLogprob['top'][number] => {
    const bytes = m.tokenBytes[i]
    return {
      id: i,
      token: m.tokenizer.decode([i], { skipSpecialTokens: false }),
      bytes: bytes == null ? [] : [...bytes],
      logprob: logits[i] - lse
    }
  }
  const best: number[] = []
  if (top > 0)
    for (let i = 0; i < logits.length; i++) {
      if (best.length < top || logits[i] > logits[best[best.length - 1]]) {
        best.push(i)
        best.sort((a, b) => logits[b] - logits[a] || a - b)
        if (best.length > top) best.pop()
      }
    }
  return { ...entry(id), top: best.map(entry) }
}

/**
 * A counting semaphore with a bounded wait queue; a waiter whose signal aborts leaves the queue.
 * It times how long slots are held (a moving mean) to tell a newcomer its likely wait.
 */
class Slots {
  private active = 0
  private readonly waiting: Array<() => void> = []
  /** Exponential moving mean of the seconds a slot is held (null before the first release). */
  private meanHeldS: number | null = null

  constructor(
    private readonly max: number,
    private readonly maxQueue: number,
    private readonly metrics: GatewayMetrics | null
  ) {}

  view(): QueueView {
    const waiting = this.waiting.length
    const full = this.active >= this.max
    // a newcomer waits for everyone queued ahead and for one slot to free: the slots drain the
    // queue `max` at a time, each round taking a mean generation
    const rounds = full ? Math.floor(waiting / this.max) + 0.5 : 0
    return {
      running: this.active,
      slots: this.max,
      waiting,
      maxQueue: this.maxQueue,
      meanGenerationS: this.meanHeldS,
      estimatedWaitS: Math.round(rounds * (this.meanHeldS ?? 0) * 100) / 100
    }
  }

  private publish(): void {
    this.metrics?.queued.set(this.waiting.length)
    this.metrics?.queueEstimate.set(this.view().estimatedWaitS)
  }

  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    const t0 = performance.now()
    if (this.active < this.max) {
      this.active++
      this.metrics?.queueWait.observe(0)
      return this.releaser()
    }
    if (this.waiting.length >= this.maxQueue)
      throw new ApiError(
        503,
        'service_unavailable',
        `the gateway is busy: ${this.active} generations running and ${this.waiting.length} waiting — retry later`,
        'overloaded'
      )
    await new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go)
        if (i >= 0) this.waiting.splice(i, 1)
        this.publish()
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(go)
      this.publish()
    })
    this.metrics?.queueWait.observe((performance.now() - t0) / 1000)
    return this.releaser()
  }

  private releaser(): () => void {
    let done = false
    const t0 = performance.now()
    return () => {
      if (done) return
      done = true
      const held = (performance.now() - t0) / 1000
      this.meanHeldS = this.meanHeldS == null ? held : 0.8 * this.meanHeldS + 0.2 * held
      const next = this.waiting.shift()
      if (next != null)
        next() // the slot passes straight to the next waiter
      else this.active--
      this.publish()
    }
  }
}
