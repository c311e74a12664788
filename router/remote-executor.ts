// RemoteExpertExecutor: the ExpertExecutor the generation loop uses when experts live on other
// machines. One call = one request on the peer's long-lived stream; a failed or timed-out call
// is retried on another replica of the same shard (experts are stateless: the retry is exact),
// and the failed peer is benched. No replica left -> ExpertUnavailableError.
import { peerIdFromString } from '@libp2p/peer-id'
import type { PublicKey } from '@libp2p/interface'
import { ExpertUnavailableError, type ExpertExecutor } from '../model/generate.js'
import type { DType } from '../protocol/expert.js'
import { Status, type Voucher } from '../protocol/expert.js'
import { RemoteError } from '../protocol/errors.js'
import {
  bytesPerElement,
  decodeTensor,
  encodeTensor,
  hexToBytes,
  toProtoDType,
  type WireDType
} from '../protocol/codec.js'
import { verifyResponse } from '../protocol/signature.js'
import type { WireClient } from './client.js'
import type { RouteManager } from './routes.js'

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
   * Check the node's signature on every response. 'async' (default): the output is used at once
   * and the signature checked right after, off the call's latency path (verifying costs
   * ~100 µs at 16 KiB here: two SHA-256 and an Ed25519 verify); a bad signature benches the peer and
   * is reported through onBadSignature. 'sync': checked before the output is returned (a bad one
   * is retried on another replica). 'off': not checked. @default 'async'
   */
  verifySignatures?: 'sync' | 'async' | 'off' | boolean
  onBadSignature?: (e: { peer: string; layer: number; expert: number; requestId: bigint }) => void
  /** Payment step: returns the voucher to attach to this call (or none). */
  attachPayment?: (ctx: PaymentContext) => Promise<Voucher | undefined>
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
  private readonly verifyMode: 'sync' | 'async' | 'off'
  private readonly keys = new Map<string, PublicKey>()
  private nextId: bigint

  constructor(
    private readonly client: WireClient,
    readonly routes: RouteManager,
    private readonly opts: RemoteExecutorOptions
  ) {
    this.modelId = hexToBytes(opts.modelId)
    this.dtype = toProtoDType(opts.wireDType ?? 'fp32')
    const v = opts.verifySignatures
    this.verifyMode = v === true ? 'sync' : v === false ? 'off' : (v ?? 'async')
    this.nextId = BigInt(Math.floor(Math.random() * 2 ** 48)) << 16n
  }

  async runExpert(
    layer: number,
    expert: number,
    x: Float32Array,
    rows: number,
    opts: { signal?: AbortSignal } = {}
  ): Promise<Float32Array> {
    const tried = new Set<string>()
    const tensor = encodeTensor(x, this.dtype)
    const errors: string[] = []
    while (true) {
      opts.signal?.throwIfAborted()
      const peer = this.routes.select(layer, expert, tried)
      if (peer == null) {
        const n = this.routes.replicas(layer, expert).length
        throw new ExpertUnavailableError(
          layer,
          expert,
          n === 0
            ? `no known node serves expert ${expert} of layer ${layer} — add a --peers address that hosts its shard`
            : `all ${n} replicas of expert ${expert} of layer ${layer} failed or are benched (${errors.join('; ') || 'benched'}) — wait and retry, or add replicas`
        )
      }
      tried.add(peer)
      const t0 = performance.now()
      this.routes.load.set(peer, (this.routes.load.get(peer) ?? 0) + 1)
      try {
        const y = await this.attempt(peer, layer, expert, tensor, rows, opts.signal)
        this.routes.onSuccess(peer)
        this.opts.onAttempt?.({ peer, layer, expert, ok: true, ms: performance.now() - t0 })
        return y
      } catch (err) {
        if (opts.signal?.aborted === true) throw err
        const msg = (err as Error).message
        errors.push(`${peer.slice(-8)}: ${msg}`)
        this.routes.onFailure(peer)
        this.client.drop(peer)
        this.opts.onAttempt?.({
          peer,
          layer,
          expert,
          ok: false,
          ms: performance.now() - t0,
          error: msg
        })
      } finally {
        this.routes.load.set(peer, (this.routes.load.get(peer) ?? 1) - 1)
      }
    }
  }

  private async attempt(
    peer: string,
    layer: number,
    expert: number,
    tensor: Uint8Array,
    rows: number,
    signal?: AbortSignal
  ): Promise<Float32Array> {
    const requestId = this.nextId++
    const payment = await this.opts.attachPayment?.({ peer, layer, expert, rows, requestId })
    const ch = await this.client.channel(peer)
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
    if (res.status !== Status.OK) throw new RemoteError(res.status, res.message)
    const expected = rows * this.opts.hidden * bytesPerElement(this.dtype)
    if (
      res.dtype !== this.dtype ||
      res.rows !== rows ||
      res.hidden !== this.opts.hidden ||
      res.tensor.byteLength !== expected
    ) {
      throw new Error(
        `bad response shape: ${res.dtype} ${res.rows}×${res.hidden} (${res.tensor.byteLength} bytes)`
      )
    }
    const mode = this.verifyMode
    if (mode !== 'off') {
      const key = this.publicKey(peer)
      const check = async (): Promise<boolean> =>
        await verifyResponse(
          key,
          { requestId, modelId: this.modelId, layer, expert, input: tensor, output: res.tensor },
          res.signature
        ).catch(() => false)
      if (mode === 'sync') {
        if (!(await check()))
          throw new Error('response signature does not verify against the node key')
      } else {
        setImmediate(() => {
          void check().then((ok) => {
            if (ok) return
            this.routes.onFailure(peer)
            this.opts.onBadSignature?.({ peer, layer, expert, requestId })
          })
        })
      }
    }
    return decodeTensor(res.tensor, this.dtype)
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
