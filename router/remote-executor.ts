// RemoteExpertExecutor: the ExpertExecutor (model/experts.ts) the generation loop uses when experts live on other
// machines. One call = one request on the peer's long-lived stream; a failed or timed-out call
// is retried on another replica of the same shard (experts are stateless: the retry is exact),
// and the failed peer is benched. No replica left -> ExpertUnavailableError. With a SpotChecker,
// a sampled fraction of calls is asked again of another operator and compared
// (router/spot-check.ts); convicted peers are never selected again.
import { peerIdFromString } from '@libp2p/peer-id'
import type { PublicKey } from '@libp2p/interface'
import { ExpertUnavailableError, type ExpertExecutor } from '../model/experts.js'
import type { DType } from '../protocol/expert.js'
import { Status, type Voucher } from '../protocol/expert.js'
import { RemoteError } from '../protocol/errors.js'
import {
  bytesPerElement,
  bytesToHex,
  decodeTensor,
  encodeTensor,
  hexToBytes,
  toProtoDType,
  type WireDType
} from '../protocol/codec.js'
import { verifyResponse } from '../protocol/signature.js'
import type { ExpertChannel } from './channel.js'
import { LatencyTracker, type LatencyOptions } from './latency.js'
import type { RouteManager } from './routes.js'
import type { SignedAnswer, SpotChecker } from './spot-check.js'

/** What the executor needs of the wire client (WireClient; a fake in unit tests). */
export interface ExpertCallClient {
  channel: (peer: string) => Promise<Pick<ExpertChannel, 'call'>>
  drop: (peer: string) => void
}

export interface PaymentContext {
  peer: string
  layer: number
  expert: number
  rows: number
  requestId: bigint
}

export interface RemoteExecutorOptions {
  modelId: string
  hidden: number
  /** @default 'fp32' */
  wireDType?: WireDType
  /** A call with no answer by then is retried elsewhere. Generous: a CPU prefill batch takes seconds. @default 30000 */
  callTimeoutMs?: number
  /**
   * Check the node's signature on every response before its output is used: 'sync' (default)
   * — a bad one is not used, the peer is benched with a backoff that grows with every bad
   * answer and that no later success resets (RouteManager.onBadAnswer), and the call is retried
   * on another replica. Costs one Ed25519 verify and two SHA-256 per call (bench:verify,
   * "signature check"). 'off': not checked, for in-process fakes without keys; a paid call is
   * checked anyway. `true` = 'sync', `false` = 'off'. @default 'sync'
   */
  verifySignatures?: 'sync' | 'off' | boolean
  onBadSignature?: (e: { peer: string; layer: number; expert: number; requestId: bigint }) => void
  /** Payment step: returns the voucher to attach to this call (or none). */
  attachPayment?: (ctx: PaymentContext) => Promise<Voucher | undefined>
  /** Re-runs a sampled fraction of calls elsewhere and compares (router/spot-check.ts). @default none */
  spotCheck?: SpotChecker
  /** Who runs a peer: replicas of the same operator never check each other. @default the peer id */
  operatorOf?: (peer: string) => string
  /**
   * Attempts per call at most, hedges included: a failed attempt is retried on another replica,
   * then (after `unavailableWaitMs`) on the same ones again. @default 4
   */
  maxAttempts?: number
  /** Send a second request to another replica once the first has run past its p95. @default true */
  hedge?: boolean
  /**
   * When every replica is benched, wait up to this long for a bench to end (a node restarting)
   * before reporting the expert unavailable (the generation would then degrade). @default 0
   */
  unavailableWaitMs?: number
  latency?: LatencyOptions
  /**
   * Observes every completed call: the replica that answered, attempts, whether it was hedged,
   * and the answer used — the input sent, the node's signed output and the voucher it carried
   * (the per-call evidence of an oracle run, router/oracle-evidence.ts).
   */
  onCall?: (c: {
    peer: string
    layer: number
    expert: number
    rows: number
    ms: number
    attempts: number
    hedged: boolean
    dtype: DType
    input: Uint8Array
    answer: Pick<SignedAnswer, 'requestId' | 'output' | 'signature' | 'payment'>
  }) => void
  /**
   * Called once the answer to a call that carried a payment has been checked — status, echo,
   * shape and signature (the signature is checked for paid calls even with verification 'off'),
   * before the answer is used: `ok` false when the node refused
   * or failed it, or answered something unusable (the reason in `message`), so the payer can
   * take the charge back.
   */
  settlePayment?: (ctx: PaymentContext & { ok: boolean; status: Status; message: string }) => void
  /** Observes every attempt (for metrics and tests). */
  onAttempt?: (a: {
    peer: string
    layer: number
    expert: number
    ok: boolean
    ms: number
    error?: string
  }) => void
}

export class RemoteExpertExecutor implements ExpertExecutor {
  private readonly modelId: Uint8Array<ArrayBuffer>
  private readonly dtype: DType
  private readonly verifyMode: 'sync' | 'off'
  private readonly keys = new Map<string, PublicKey>()
  private nextId: bigint
  readonly latency: LatencyTracker
  /** Hedges sent, and how many of them answered first. */
  readonly stats = { hedges: 0, hedgesWon: 0 }

  constructor(
    private readonly client: ExpertCallClient,
    readonly routes: RouteManager,
    private readonly opts: RemoteExecutorOptions
  ) {
    this.modelId = hexToBytes(opts.modelId)
    this.dtype = toProtoDType(opts.wireDType ?? 'fp32')
    const v = opts.verifySignatures
    this.verifyMode = v === false || v === 'off' ? 'off' : 'sync'
    // never 0: a node answers a request whose id it could not read under id 0
    this.nextId = (BigInt(Math.floor(Math.random() * 2 ** 48)) << 16n) + 1n
    this.latency = new LatencyTracker(opts.latency)
  }

  async runExpert(
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number,
    opts: { signal?: AbortSignal } = {}
  ): Promise<Float32Array> {
    const limit = this.routes.maxRows(layer, expert)
    if (rows > limit) return await this.runSplit(layer, expert, x, rows, limit, opts)
    const tensor = encodeTensor(x, this.dtype)
    const primary = await this.answer(layer, expert, tensor, rows, new Set(), opts.signal)
    const checker = this.opts.spotCheck
    if (checker == null || !checker.sample()) return primary.y
    // every answer here was verified (signature and echo) before it was returned: it can be
    // evidence, and a referee that signs wrongly was retried on the next replica
    return await checker.check({
      layer,
      expert,
      rows,
      hidden: this.opts.hidden,
      dtype: this.dtype,
      input: tensor,
      primary,
      ask: async (excludeOperators) => {
        const skip = new Set(
          this.routes
            .replicas(layer, expert)
            .filter((p) => excludeOperators.has(this.operatorOf(p)))
        )
        try {
          return await this.answer(layer, expert, tensor, rows, skip, opts.signal, true)
        } catch (err) {
          if (opts.signal?.aborted === true) throw err
          return null
        }
      }
    })
  }

  /**
   * A call with more rows than its replicas take (a long prompt's prefill): the rows go out in
   * parts of at most `limit`, in parallel, each a call of its own (retried, hedged, paid and
   * checked like any other), and the outputs are put back together in order.
   */
  private async runSplit(
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number,
    limit: number,
    opts: { signal?: AbortSignal }
  ): Promise<Float32Array> {
    const hidden = x.length / rows
    const parts: Array<Promise<Float32Array>> = []
    for (let r = 0; r < rows; r += limit) {
      const n = Math.min(limit, rows - r)
      parts.push(this.runExpert(layer, expert, x.subarray(r * hidden, (r + n) * hidden), n, opts))
    }
    const out = new Float32Array(x.length)
    let off = 0
    for (const y of await Promise.all(parts)) {
      out.set(y, off)
      off += y.length
    }
    return out
  }
  private operatorOf(peer: string): string {
    return this.opts.operatorOf?.(peer) ?? peer
  }

  /**
   * One answer from a replica not in `skip` (nor convicted), retrying on the others. `quiet`:
   * a spot check's second opinion — nobody left is not an error worth a long message.
   */
  private async answer(
    layer: number,
    expert: number,
    tensor: Uint8Array,
    rows: number,
    skip: Set<string>,
    signal?: AbortSignal,
    quiet = false
  ): Promise<SignedAnswer> {
    const excluded = (): Set<string> => {
      const out = new Set(skip)
      const reputation = this.opts.spotCheck?.reputation
      if (reputation != null)
        for (const p of this.routes.replicas(layer, expert))
          if (reputation.isConvicted(p)) out.add(p)
      return out
    }
    let tried = excluded()
    const convicted = tried.size - skip.size
    const errors: string[] = []
    const maxAttempts = this.opts.maxAttempts ?? 4
    const hedging = this.opts.hedge !== false
    const waitUntil = performance.now() + (this.opts.unavailableWaitMs ?? 0)
    const inflight = new Map<string, Attempt>()
    let attempts = 0
    let hedged = false
    let hedgePeer: string | undefined
    const t0 = performance.now()
    const start = (): boolean => {
      const est = this.latency.forChoice(this.routes.replicas(layer, expert), rows)
      const peer = this.routes.select(layer, expert, tried, est.expected, est.perCall)
      if (peer == null) return false
      tried.add(peer)
      attempts++
      inflight.set(peer, this.launch(peer, layer, expert, tensor, rows, signal))
      return true
    }
    try {
      while (true) {
        signal?.throwIfAborted()
        if (inflight.size === 0 && (attempts >= maxAttempts || !start())) {
          // every replica tried or benched: wait for a bench to end when allowed (a restarting
          // node), then try the replicas again; else give up
          const next = this.routes.nextUnbench(layer, expert)
          const now = performance.now()
          if (!quiet && attempts < maxAttempts && next != null && now < waitUntil) {
            await sleep(Math.min(waitUntil - now, Math.max(next - Date.now(), 1)), signal)
            tried = excluded()
            continue
          }
          const n = this.routes.replicas(layer, expert).length
          throw new ExpertUnavailableError(
            layer,
            expert,
            quiet
              ? `no other replica of expert ${expert} of layer ${layer}`
              : n === 0
                ? `no known node serves expert ${expert} of layer ${layer} — add a --peers address that hosts its shard`
                : `all ${n} replicas of expert ${expert} of layer ${layer} failed, are benched or were convicted of wrong answers after ${attempts} attempts (${convicted} convicted${errors.length > 0 ? '; ' + errors.join('; ') : ''}) — wait and retry, or add replicas`
          )
        }
        // hedge: one more replica once the first has taken longer than its p95
        let hedgeIn: number | null = null
        if (hedging && !hedged && inflight.size === 1 && attempts < maxAttempts) {
          const [[peer, a]] = inflight
          const d = this.latency.hedgeDelay(peer, rows)
          if (d != null) hedgeIn = Math.max(0, a.t0 + d - performance.now())
        }
        const settled = await firstSettled([...inflight.values()], hedgeIn)
        if (settled == null) {
          hedged = true
          if (start()) {
            this.stats.hedges++
            hedgePeer = [...inflight.keys()][1]
          }
          continue
        }
        inflight.delete(settled.peer)
        if (settled.ok) {
          for (const [p, a] of inflight) {
            // the loser took at least this long: count it, so a slow peer stops being chosen
            this.latency.observeAtLeast(p, rows, performance.now() - a.sent.at)
            a.abort.abort(new Error('hedge lost'))
          }
          inflight.clear()
          if (settled.peer === hedgePeer) this.stats.hedgesWon++
          if (!quiet)
            this.opts.onCall?.({
              peer: settled.peer,
              layer,
              expert,
              rows,
              ms: performance.now() - t0,
              attempts,
              hedged,
              dtype: this.dtype,
              input: tensor,
              answer: settled.a
            })
          return settled.a
        }
        if (signal?.aborted === true) throw settled.err
        errors.push(`${settled.peer.slice(-8)}: ${settled.err.message}`)
      }
    } finally {
      for (const a of inflight.values()) a.abort.abort(new Error('call finished'))
    }
  }

  /** One attempt on `peer`: load and latency bookkeeping, bench and channel drop on failure. */
  private launch(
    peer: string,
    layer: number,
    expert: number,
    tensor: Uint8Array,
    rows: number,
    signal?: AbortSignal
  ): Attempt {
    const abort = new AbortController()
    const onOuter = (): void => {
      abort.abort(signal?.reason)
    }
    signal?.addEventListener('abort', onOuter, { once: true })
    const t0 = performance.now()
    // the estimate is of the call itself: a first call's dial (several round trips) or a wait
    // for a voucher would make a near node look far for good
    const sent = { at: t0 }
    this.routes.load.set(peer, (this.routes.load.get(peer) ?? 0) + 1)
    const done = this.attempt(peer, layer, expert, tensor, rows, abort.signal, sent).then(
      (a): Settled => {
        const ms = performance.now() - t0
        this.latency.observe(peer, rows, performance.now() - sent.at)
        this.routes.onSuccess(peer)
        this.opts.onAttempt?.({ peer, layer, expert, ok: true, ms })
        return { ok: true, peer, a }
      },
      (err: Error): Settled => {
        const ms = performance.now() - t0
        // the client declined to pay this replica now: no fault of the node, nothing was sent
        if (err instanceof PaymentDeferredError) {
          this.opts.onAttempt?.({ peer, layer, expert, ok: false, ms, error: err.message })
          return { ok: false, peer, err }
        }
        if (!abort.signal.aborted) {
          if (!(err instanceof BadAnswerError)) this.routes.onFailure(peer)
          // a status answer came over a working stream: only this call was refused. Dropping
          // the stream would fail the peer's other calls in flight on it too, each one more
          // failure on its bench
          if (!(err instanceof RemoteError)) this.client.drop(peer)
          this.opts.onAttempt?.({ peer, layer, expert, ok: false, ms, error: err.message })
        }
        return { ok: false, peer, err }
      }
    )
    void done.finally(() => {
      signal?.removeEventListener('abort', onOuter)
      this.routes.load.set(peer, (this.routes.load.get(peer) ?? 1) - 1)
    })
    return { peer, t0, sent, abort, done }
  }

  private async signatureOk(
    layer: number,
    expert: number,
    tensor: Uint8Array,
    rows: number,
    a: SignedAnswer
  ): Promise<boolean> {
    return await verifyResponse(
      this.publicKey(a.peer),
      {
        requestId: a.requestId,
        modelId: this.modelId,
        layer,
        expert,
        dtype: this.dtype,
        rows,
        hidden: this.opts.hidden,
        input: tensor,
        output: a.output
      },
      a.signature
    ).catch(() => false)
  }

  private async attempt(
    peer: string,
    layer: number,
    expert: number,
    tensor: Uint8Array,
    rows: number,
    signal?: AbortSignal,
    sent?: { at: number }
  ): Promise<SignedAnswer> {
    const requestId = this.nextId++
    const payment = await this.opts.attachPayment?.({ peer, layer, expert, rows, requestId })
    const ch = await this.client.channel(peer)
    if (sent != null) sent.at = performance.now()
    const res = await ch.call(
      {
        requestId,
        modelId: this.modelId,
        layer,
        expert,
        dtype: this.dtype,
        rows,
        hidden: this.opts.hidden,
        payment
      },
      tensor,
      { signal, timeoutMs: this.opts.callTimeoutMs ?? 30_000 }
    )
    // a paid call is settled (charged or taken back) only once its answer has passed every check
    // below, its signature included, so nothing unverified is paid for
    const settle = (ok: boolean, message: string): void => {
      if (payment != null)
        this.opts.settlePayment?.({
          peer,
          layer,
          expert,
          rows,
          requestId,
          ok,
          status: res.status,
          message
        })
    }
    if (res.status !== Status.OK) {
      settle(false, res.message)
      throw new RemoteError(res.status, res.message)
    }
    const expected = rows * this.opts.hidden * bytesPerElement(this.dtype)
    // the node's echo of what it served: a request it misread is caught here, before the output
    // is used, whatever the signature mode
    if (!equalBytes(res.modelId, this.modelId) || res.layer !== layer || res.expert !== expert) {
      const msg = `response is for expert ${res.expert} of layer ${res.layer} (model ${bytesToHex(res.modelId)}), not the expert ${expert} of layer ${layer} asked for`
      settle(false, msg)
      throw new Error(msg)
    }
    if (
      res.dtype !== this.dtype ||
      res.rows !== rows ||
      res.hidden !== this.opts.hidden ||
      res.tensor.byteLength !== expected
    ) {
      const msg = `bad response shape: ${res.dtype} ${res.rows}×${res.hidden} (${res.tensor.byteLength} bytes)`
      settle(false, msg)
      throw new Error(msg)
    }
    const answer: SignedAnswer = {
      peer,
      requestId,
      output: res.tensor,
      signature: res.signature,
      y: decodeTensor(res.tensor, this.dtype),
      ...(payment != null ? { payment } : {})
    }
    // an answer paid for is verified even with verification 'off'
    if (this.verifyMode === 'sync' || payment != null) {
      const ok = await this.signatureOk(layer, expert, tensor, rows, answer)
      settle(ok, ok ? '' : BAD_SIGNATURE)
      if (!ok) {
        // benched here with its own backoff; the rejection below adds no ordinary failure
        this.routes.onBadAnswer(peer)
        this.opts.onBadSignature?.({ peer, layer, expert, requestId })
        throw new BadAnswerError(BAD_SIGNATURE)
      }
    } else settle(true, '')
    return answer
  }

  private publicKey(peer: string): PublicKey {
    let k = this.keys.get(peer)
    if (k == null) {
      const key = peerIdFromString(peer).publicKey
      if (key == null)
        throw new Error(`peer id ${peer} does not embed its public key (use Ed25519 node keys)`)
      k = key
      this.keys.set(peer, k)
    }
    return k
  }
}

const BAD_SIGNATURE = 'response signature does not verify against the node key'

/**
 * Thrown by `attachPayment` when this client will not pay `peer` for the call now (its escrow
 * lane is empty and another replica's is not): the call goes to another replica, and the peer is
 * neither benched nor disconnected — it did nothing wrong, and its other calls go on.
 */
export class PaymentDeferredError extends Error {
  override name = 'PaymentDeferredError'
}

/** The node answered, but its answer failed verification (benched by RouteManager.onBadAnswer). */
class BadAnswerError extends Error {
  override name = 'BadAnswerError'
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

type Settled = { ok: true; peer: string; a: SignedAnswer } | { ok: false; peer: string; err: Error }

interface Attempt {
  peer: string
  t0: number
  /** When the request went out (after any dial and payment step). */
  sent: { at: number }
  abort: AbortController
  done: Promise<Settled>
}

/** The first attempt to settle, or null when `timeoutMs` (not null) passes first. */
async function firstSettled(
  attempts: Attempt[],
  timeoutMs: number | null
): Promise<Settled | null> {
  if (timeoutMs == null) return await Promise.race(attempts.map(async (a) => await a.done))
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => {
      resolve(null)
    }, timeoutMs)
  })
  try {
    return await Promise.race([...attempts.map(async (a) => await a.done), timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(done, ms)
    function done(): void {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort(): void {
      clearTimeout(t)
      reject(signal?.reason as Error)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
