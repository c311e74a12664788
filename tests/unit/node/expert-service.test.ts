import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DType, Status, type ExpertResponse } from '../../../protocol/expert.js'
import {
  decodeResponse,
  decodeTensor,
  encodeRequestFrame,
  encodeTensor,
  hexToBytes
} from '../../../protocol/codec.js'
import { FrameDecoder, encodeFrame, encodeVarint } from '../../../protocol/framing.js'
import { PaymentError } from '../../../protocol/errors.js'
import { verifyResponse } from '../../../protocol/signature.js'
import type { ExpertChannel } from '../../../router/channel.js'
import { BusyPoll } from '../../../protocol/busy-poll.js'
import { createNodeMetrics } from '../../../node/metrics.js'
import {
  HIDDEN,
  MODEL_ID,
  fakeModel,
  harness,
  request,
  rowsOf,
  type Harness,
  type Run
} from './fixtures.js'

async function assertServes(h: Harness, client?: ExpertChannel): Promise<void> {
  const c = client ?? (await h.connect()).client
  const x = rowsOf(2, 5)
  const { header, tensor } = request(x, { layer: 1, expert: 0 })
  const res = await c.call(header, tensor, { timeoutMs: 2000 })
  assert.equal(res.status, Status.OK, res.message)
  assert.deepEqual(
    decodeTensor(res.tensor, res.dtype),
    x.map((v) => v * 11)
  )
}

test('one stream carries many sequential and pipelined calls; responses are signed', async () => {
  const h = await harness()
  const { client } = await h.connect()
  for (let i = 0; i < 5; i++) await assertServes(h, client)
  const calls = [0, 1].map(async (e) => {
    const x = rowsOf(1, e)
    const { header, tensor } = request(x, { layer: 0, expert: e })
    const res = await client.call(header, tensor)
    assert.equal(res.status, Status.OK)
    assert.deepEqual(
      decodeTensor(res.tensor, DType.FP32),
      x.map((v) => v * (1 + e))
    )
    assert.ok(
      await verifyResponse(
        h.key.publicKey,
        {
          requestId: header.requestId,
          modelId: header.modelId,
          layer: 0,
          expert: e,
          dtype: header.dtype,
          rows: header.rows,
          hidden: header.hidden,
          input: tensor,
          output: res.tensor
        },
        res.signature
      )
    )
  })
  await Promise.all(calls)
})

test('fp16 on the wire: answered in fp16', async () => {
  const h = await harness()
  const { client } = await h.connect()
  const x = rowsOf(3)
  const { header, tensor } = request(x, { dtype: DType.FP16 })
  const res = await client.call(header, tensor)
  assert.equal(res.status, Status.OK)
  assert.equal(res.dtype, DType.FP16)
  assert.equal(res.tensor.byteLength, 3 * HIDDEN * 2)
  assert.deepEqual(
    decodeTensor(res.tensor, DType.FP16),
    x.map((v) => v * 12)
  )
})

test('malformed requests get error codes and the node keeps serving', async (t) => {
  const h = await harness()
  const { client } = await h.connect()
  const x = rowsOf(2)
  const cases: Array<[string, ReturnType<typeof request>, Status]> = [
    [
      'unknown model',
      request(x, { modelId: hexToBytes('0x' + '00'.repeat(32)) }),
      Status.UNKNOWN_MODEL
    ],
    ['unknown layer', request(x, { layer: 7 }), Status.EXPERT_NOT_HOSTED],
    ['expert not hosted', request(x, { expert: 3 }), Status.EXPERT_NOT_HOSTED],
    ['wrong hidden', request(x, { hidden: 4, rows: 4 }), Status.BAD_SHAPE],
    ['zero rows', request(x, { rows: 0 }), Status.BAD_SHAPE],
    ['bytes/shape mismatch', request(x, { rows: 3 }), Status.BAD_SHAPE],
    ['wrong dtype (unspecified)', request(x, { dtype: DType.DTYPE_UNSPECIFIED }), Status.BAD_DTYPE],
    [
      'fp16 header with fp32 bytes',
      { ...request(x, { dtype: DType.FP16 }), tensor: encodeTensor(x, DType.FP32) },
      Status.BAD_SHAPE
    ]
  ]
  for (const [name, { header, tensor }, status] of cases) {
    await t.test(name, async () => {
      const res = await client.call(header, tensor, { timeoutMs: 2000 })
      assert.equal(res.status, status, res.message)
      assert.equal(res.requestId, header.requestId)
      assert.equal(res.tensor.byteLength, 0)
      await assertServes(h, client) // same stream still works
    })
  }
})

test('a frame whose length cannot be trusted resets that stream only; the node keeps serving others', async () => {
  const h = await harness()
  const good = (await h.connect()).client
  const { raw } = await h.connect()
  const closed = new Promise<Error | undefined>((resolve) => {
    raw.addEventListener('close', (e) => {
      resolve(e.error)
    })
  })
  raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])) // a 7-byte length varint
  assert.ok((await closed) != null, 'the stream was reset')
  await assertServes(h, good)
  await assertServes(h)
})

/** Responses read off a raw stream (the ExpertChannel drops answers to ids it did not send). */
function responses(raw: import('@libp2p/interface').Stream): ExpertResponse[] {
  const out: ExpertResponse[] = []
  const dec = new FrameDecoder(1 << 20)
  raw.addEventListener('message', (e) => {
    for (const f of dec.push(e.data)) out.push(decodeResponse(f))
  })
  return out
}

test('a malformed request is answered with a status; the other calls on its stream complete', async () => {
  const h = await harness({ model: fakeModel({ delayMs: 30 }) })
  const { client, raw } = await h.connect()
  const seen = responses(raw)
  const x = rowsOf(1)
  const slow = request(x, { layer: 1, expert: 1 })
  const inFlight = client.call(slow.header, slow.tensor, { timeoutMs: 5000 })
  // expert = 1 as a 6-byte varint (a generated decoder reads it as 1 and drops 4 bytes after it)
  const { header, tensor } = request(x, { layer: 1, expert: 1 })
  const ok = encodeRequestFrame({ ...header, requestId: 99n }, tensor).subarray()
  const at = Buffer.from(ok).indexOf(Buffer.from([0x18, 1, 0x20, 1])) + 3 // layer 1, expert 1
  const bad = Uint8Array.from([
    ...ok.subarray(1, at),
    0x81,
    0x80,
    0x80,
    0x80,
    0x80,
    0x00,
    ...ok.subarray(at + 1)
  ])
  raw.send(encodeFrame(bad))
  // a dtype outside the enum, and a frame whose request id is unreadable (answered under id 0)
  raw.send(encodeFrame(Uint8Array.from([0x08, 100, 0x28, 3])))
  raw.send(encodeFrame(Uint8Array.from([0x08, 0x81, 0x00])))
  const res = await inFlight
  assert.equal(res.status, Status.OK, 'the call in flight was not taken down')
  assert.deepEqual(
    decodeTensor(res.tensor, res.dtype),
    x.map((v) => v * 12)
  )
  for (let i = 0; i < 100 && seen.length < 4; i++) await new Promise((r) => setTimeout(r, 10))
  const byId = new Map(seen.map((r) => [r.requestId, r]))
  assert.equal(byId.get(99n)?.status, Status.BAD_REQUEST)
  assert.match(byId.get(99n)?.message ?? '', /expert is a non-minimal/)
  assert.equal(byId.get(100n)?.status, Status.BAD_DTYPE)
  assert.equal(byId.get(0n)?.status, Status.BAD_REQUEST)
  await assertServes(h, client)
})

test('OK responses echo the model id, layer and expert served', async () => {
  const h = await harness()
  const { client } = await h.connect()
  const { header, tensor } = request(rowsOf(1), { layer: 0, expert: 1 })
  const res = await client.call(header, tensor)
  assert.equal(res.status, Status.OK)
  assert.deepEqual([res.modelId, res.layer, res.expert], [hexToBytes(MODEL_ID), 0, 1])
})

test('non-finite values: NaN/Inf inputs and outputs that overflow are refused, never signed', async () => {
  const seen: unknown[] = []
  const h = await harness({
    verifyPayment: async (req) => {
      seen.push(req.requestId)
    }
  })
  const { client } = await h.connect()
  const cases: Array<[string, number, DType, RegExp]> = [
    ['NaN input', NaN, DType.FP32, /input element 3 .* is NaN/],
    ['Inf input', Infinity, DType.FP32, /input element 3 .* is Infinity/],
    ['-Inf input in fp16', -Infinity, DType.FP16, /input element 3 .* is -Infinity/],
    ['fp32 output overflow (3e38 × 12)', 3e38, DType.FP32, /output element 3 .* is not finite/],
    ['fp16 output overflow (60000 × 12)', 60000, DType.FP16, /output element 3 .* is not finite/]
  ]
  for (const [name, v, dtype, message] of cases) {
    const x = rowsOf(1)
    x[3] = v
    const { header, tensor } = request(x, { dtype })
    const res = await client.call(header, tensor)
    assert.equal(res.status, Status.BAD_REQUEST, name)
    assert.match(res.message, message, name)
    assert.equal(res.signature.byteLength, 0, name)
    assert.equal(res.tensor.byteLength, 0, name)
  }
  assert.equal(seen.length, 2, 'non-finite inputs are refused before the payment hook')
  await assertServes(h, client)
})

test('an oversize frame is refused from its length prefix alone', async () => {
  const h = await harness({ maxFrameBytes: 1024 })
  const { raw } = await h.connect()
  const closed = new Promise<Error | undefined>((resolve) => {
    raw.addEventListener('close', (e) => {
      resolve(e.error)
    })
  })
  raw.send(encodeVarint(1025)) // no body follows: the node must not wait for (or allocate) it
  const err = await closed
  assert.ok(err != null)
  await assertServes(h)
  // a legal frame just under the cap still works on a new stream
  const { client } = await h.connect()
  await assertServes(h, client)
})

test('runtime failure -> INTERNAL for that call only', async () => {
  const h = await harness({ model: fakeModel({ fail: true }) })
  const { client } = await h.connect()
  const { header, tensor } = request(rowsOf(1))
  const res = await client.call(header, tensor)
  assert.equal(res.status, Status.INTERNAL)
  assert.match(res.message, /exploded/)
})

test('payment hook: a PaymentError becomes PAYMENT_REQUIRED; the voucher reaches the hook', async () => {
  const seen: unknown[] = []
  const h = await harness({
    verifyPayment: async (req) => {
      seen.push(req.payment)
      if (req.payment == null) throw new PaymentError('attach a voucher')
    }
  })
  const { client } = await h.connect()
  const { header, tensor } = request(rowsOf(1))
  const res = await client.call(header, tensor)
  assert.equal(res.status, Status.PAYMENT_REQUIRED)
  assert.equal(res.message, 'attach a voucher')
  const paid = request(rowsOf(1))
  const voucher = {
    payer: new Uint8Array(20).fill(1),
    payee: new Uint8Array(20).fill(2),
    cumulativeAmount: new Uint8Array([1, 0]),
    signature: new Uint8Array(65),
    extra: new Uint8Array(0)
  }
  const ok = await client.call({ ...paid.header, payment: voucher }, paid.tensor)
  assert.equal(ok.status, Status.OK)
  assert.deepEqual((seen[1] as typeof voucher).cumulativeAmount, new Uint8Array([1, 0]))
})

test('batching: N concurrent calls from different streams -> one runtime run, each gets its own rows', async () => {
  const runs: Run[] = []
  const h = await harness({ model: fakeModel({ runs, delayMs: 20 }) })
  const clients = await Promise.all(
    Array.from({ length: 6 }, async () => (await h.connect()).client)
  )
  const inputs = clients.map((_, i) => rowsOf(i + 1, i))
  const reqs = inputs.map((x) => request(x, { layer: 1, expert: 1 }))
  // send all, then wait: they arrive in the same window
  const results = await Promise.all(
    clients.map(async (c, i) => await c.call(reqs[i].header, reqs[i].tensor))
  )
  results.forEach((res, i) => {
    assert.equal(res.status, Status.OK)
    assert.deepEqual(
      decodeTensor(res.tensor, DType.FP32),
      inputs[i].map((v) => v * 12)
    )
  })
  assert.equal(runs.length, 1, `runs: ${JSON.stringify(runs)}`)
  assert.equal(runs[0].rows, 1 + 2 + 3 + 4 + 5 + 6)
})

test('batching: calls arriving while a run is in flight form the next single run', async () => {
  const runs: Run[] = []
  const h = await harness({ model: fakeModel({ runs, delayMs: 50 }) })
  const { client } = await h.connect()
  const first = request(rowsOf(1), { layer: 0, expert: 1 })
  const p0 = client.call(first.header, first.tensor)
  await new Promise((resolve) => setTimeout(resolve, 15)) // first run is now in flight
  const later = [1, 2, 3].map((i) => request(rowsOf(i, i), { layer: 0, expert: 1 }))
  const ps = later.map(async (r) => await client.call(r.header, r.tensor))
  const all = await Promise.all([p0, ...ps])
  all.forEach((r, i) => {
    assert.equal(r.status, Status.OK)
    const x = i === 0 ? rowsOf(1) : rowsOf(i, i)
    assert.deepEqual(
      decodeTensor(r.tensor, DType.FP32),
      x.map((v) => v * 2)
    )
  })
  assert.deepEqual(
    runs.map((r) => r.rows),
    [1, 6]
  )
})

test('info reports the served model, shards and manifest hash', async () => {
  const h = await harness()
  const info = h.service.info()
  assert.equal(Buffer.from(info.models[0].modelId).toString('hex'), MODEL_ID.slice(2))
  assert.deepEqual(info.models[0].shards, [0, 1])
  assert.deepEqual(info.models[0].experts, [0, 0, 0, 1, 1, 0, 1, 1])
})

test('busy polling: the node polls after a call, the router only while its call is in flight', async () => {
  const h = await harness({ model: fakeModel({ delayMs: 30 }), busyPollUs: 10_000_000 })
  const routerPoll = new BusyPoll({ windowUs: 10_000_000, onlyWhileWaiting: true })
  const { client } = await h.connect({ poll: routerPoll })
  assert.equal(h.service.busyPoll.active, false, 'an idle node does not poll')
  const x = rowsOf(1)
  const { header, tensor } = request(x)
  const call = client.call(header, tensor)
  assert.equal(routerPoll.waiting, 1)
  assert.equal(routerPoll.active, true, 'the router polls while its call is out')
  await new Promise((resolve) => setTimeout(resolve, 10))
  const during = routerPoll.turns
  assert.ok(during > 0, 'the router loop kept turning during the 30 ms expert run')
  assert.equal((await call).status, Status.OK)
  assert.equal(routerPoll.waiting, 0, 'the answer ended the wait')
  for (let i = 0; i < 100 && routerPoll.active; i++)
    await new Promise((resolve) => setImmediate(resolve))
  assert.equal(
    routerPoll.active,
    false,
    'the router stops polling once nothing is in flight (long before its window)'
  )
  assert.equal(h.service.busyPoll.active, true, 'the node keeps polling for the next request')
  // a call that fails (unknown expert) and a timed-out call end their waits too
  const bad = request(x, { expert: 3 })
  assert.equal((await client.call(bad.header, bad.tensor)).status, Status.EXPERT_NOT_HOSTED)
  await assert.rejects(
    client.call(request(x).header, request(x).tensor, { timeoutMs: 1 }),
    /no answer within 1 ms/
  )
  assert.equal(routerPoll.waiting, 0)
  await h.service.stop()
  for (let i = 0; i < 100 && h.service.busyPoll.active; i++)
    await new Promise((resolve) => setImmediate(resolve))
  assert.equal(h.service.busyPoll.active, false, 'stopping the service stops its polling')
})

test('expert streams per peer are capped: one more is reset at once and counted; closing one frees a slot', async () => {
  const metrics = createNodeMetrics()
  const h = await harness({ maxInboundStreams: 2, metrics })
  const a = await h.connect()
  await h.connect()
  const third = await h.connect()
  const closed = new Promise<Error | undefined>((resolve) => {
    third.raw.addEventListener('close', (e) => {
      resolve(e.error)
    })
  })
  assert.ok((await closed) != null, 'the stream over the cap was reset')
  const m = await metrics.refusals.get()
  assert.equal(m.values.find((v) => v.labels.reason === 'streams')?.value, 1)
  await assertServes(h, a.client)
  await a.client.close()
  for (let i = 0; i < 50 && h.service.openStreams > 1; i++)
    await new Promise((resolve) => setTimeout(resolve, 10))
  await assertServes(h) // a new stream fits again
})

test('end of stream: calls in flight are answered, a truncated last frame is dropped and counted, then the node closes', async () => {
  const metrics = createNodeMetrics()
  const h = await harness({ model: fakeModel({ delayMs: 20 }), metrics })
  const { raw } = await h.connect()
  const seen = responses(raw)
  const { header, tensor } = request(rowsOf(1))
  raw.send(encodeRequestFrame(header, tensor))
  const whole = encodeRequestFrame({ ...header, requestId: header.requestId + 1000n }, tensor)
  raw.send(whole.subarray(0, whole.byteLength - 5)) // the last 5 bytes never come
  const closed = new Promise<void>((resolve) => {
    raw.addEventListener('close', () => {
      resolve()
    })
  })
  await raw.close()
  await closed
  assert.deepEqual(
    seen.map((r) => [r.requestId, r.status]),
    [[header.requestId, Status.OK]]
  )
  const m = await metrics.refusals.get()
  assert.equal(m.values.find((v) => v.labels.reason === 'frame')?.value, 1)
})

test('metrics: each runtime run is timed apart from the whole request (pov_expert_run_seconds within pov_request_duration_seconds)', async () => {
  const metrics = createNodeMetrics()
  const h = await harness({ model: fakeModel({ delayMs: 30 }), metrics })
  const { client } = await h.connect()
  for (let i = 0; i < 2; i++) {
    const { header, tensor } = request(rowsOf(1, i))
    assert.equal((await client.call(header, tensor)).status, Status.OK)
  }
  const sumCount = async (
    hist: typeof metrics.runDuration | typeof metrics.requestDuration
  ): Promise<[number, number]> => {
    const v = (await hist.get()).values
    const of = (name: string): number =>
      v.filter((x) => x.metricName === name).reduce((a, x) => a + x.value, 0)
    return [of(`${(await hist.get()).name}_sum`), of(`${(await hist.get()).name}_count`)]
  }
  const [runSum, runs] = await sumCount(metrics.runDuration)
  const [reqSum, reqs] = await sumCount(metrics.requestDuration)
  assert.equal(runs, 2)
  assert.equal(reqs, 2)
  assert.ok(runSum >= 0.055, `two runs of ≥ 30 ms: ${runSum} s`)
  assert.ok(reqSum >= runSum, `requests ${reqSum} s include their runs ${runSum} s`)
})
