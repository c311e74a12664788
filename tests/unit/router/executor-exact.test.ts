// The executor must hand every call the answer to ITS input, whatever happens on the way: hedges
// to a second replica, losers answering late, failed attempts retried elsewhere, calls split by a
// replica's row limit, and two clients (two executors) calling the same experts at once. The fake
// replicas compute their answer only when they reply, from the bytes they were sent, so a request
// buffer reused or changed while in flight, or an answer crossed between calls, shows here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RouteManager, expertKey } from '../../../router/routes.js'
import { RemoteExpertExecutor, type ExpertCallClient } from '../../../router/remote-executor.js'
import { Status, type ExpertResponse } from '../../../protocol/expert.js'
import { okResponse } from './fake-response.js'
import { seededRandom } from '../../../model/sampling.js'

const HIDDEN = 8
const MODEL_ID = '0x' + '22'.repeat(32)
const LAYERS = 2
const EXPERTS = 4
const PEERS = ['A', 'B', 'C']

/** What expert (layer, expert) computes. */
const f = (layer: number, expert: number, v: number): number => v * (layer + 2) + expert + 0.25

function replicas(random: () => number, stats: { late: number; failed: number }): ExpertCallClient {
  return {
    drop: () => {},
    channel: async (peer: string) => ({
      call: async (req, tensor, opts) =>
        await new Promise<ExpertResponse>((resolve, reject) => {
          const fail = random() < 0.08
          // mostly fast, now and then slow enough to be hedged
          const ms = random() < 0.1 ? 10 + random() * 10 : random() * 3
          let aborted = false
          opts?.signal?.addEventListener('abort', () => {
            aborted = true
            reject(new Error(`${peer}: aborted`))
          })
          setTimeout(() => {
            if (aborted) stats.late++ // a loser's answer arrives anyway: it must go nowhere
            if (fail) {
              stats.failed++
              reject(new Error(`${peer}: stream closed`))
              return
            }
            const x = new Float32Array(tensor.buffer, tensor.byteOffset, tensor.byteLength / 4)
            const y = Float32Array.from(x, (v) => f(req.layer, req.expert, v))
            resolve(okResponse(req, new Uint8Array(y.buffer)))
          }, ms)
        })
    })
  }
}

test('every answer is the answer to its own input through hedges, late losers, retries and splits, two clients at once', async () => {
  const random = seededRandom(42)
  const stats = { late: 0, failed: 0 }
  const experts = new Set<number>()
  for (let l = 0; l < LAYERS; l++) for (let e = 0; e < EXPERTS; e++) experts.add(expertKey(l, e))
  const executors = [0, 1].map(
    () =>
      new RemoteExpertExecutor(
        replicas(random, stats),
        new RouteManager(
          // a replica takes 2 rows per call: a 3-row call is split in two
          PEERS.map((p) => ({ peerId: p, addrs: [], shards: [0], experts, maxRows: 2 })),
          { benchBaseMs: 2, benchMaxMs: 5 }
        ),
        {
          modelId: MODEL_ID,
          hidden: HIDDEN,
          verifySignatures: 'off',
          maxAttempts: 6,
          unavailableWaitMs: 1000,
          // hedge after the median: about half the calls get a second request
          latency: { minSamples: 2, window: 16, quantile: 0.5, minHedgeMs: 1 }
        }
      )
  )
  let calls = 0
  let wrong = 0
  // each client: steps of one call per expert of a layer, all in parallel, like a generation
  await Promise.all(
    executors.map(async (ex) => {
      for (let step = 0; step < 25; step++)
        for (let layer = 0; layer < LAYERS; layer++)
          await Promise.all(
            Array.from({ length: EXPERTS }, async (_, expert) => {
              const rows = 1 + Math.floor(random() * 3)
              const x = Float32Array.from({ length: rows * HIDDEN }, () => random() * 2 - 1)
              const sent = x.slice()
              const y = await ex.runExpert(layer, expert, x, rows)
              calls++
              assert.deepEqual(x, sent, 'the caller’s input is left as it was')
              assert.equal(y.length, rows * HIDDEN)
              for (let i = 0; i < y.length; i++)
                if (y[i] !== Math.fround(f(layer, expert, sent[i]))) {
                  wrong++
                  break
                }
            })
          )
    })
  )
  const hedges = executors.reduce((a, ex) => a + ex.stats.hedges, 0)
  assert.equal(wrong, 0, `${wrong} of ${calls} calls got an answer that is not theirs`)
  // the run went through the paths it is about
  assert.ok(hedges > 10, `hedges: ${hedges}`)
  assert.ok(stats.late > 0, `late answers of aborted attempts: ${stats.late}`)
  assert.ok(stats.failed > 10, `failed attempts: ${stats.failed}`)
})

test('a node refusing one call (a status answer) keeps its stream: its other calls in flight are not failed', async () => {
  const drops: string[] = []
  const client: ExpertCallClient = {
    drop: (p) => drops.push(p),
    channel: async (peer: string) => ({
      call: async (req, tensor) => {
        await new Promise((r) => setTimeout(r, 2))
        const refused = peer === 'A' && req.expert === 0
        return {
          requestId: req.requestId,
          modelId: req.modelId,
          layer: req.layer,
          expert: req.expert,
          status: refused ? Status.OVERLOADED : Status.OK,
          message: refused ? 'busy' : '',
          dtype: req.dtype,
          rows: refused ? 0 : req.rows,
          hidden: refused ? 0 : req.hidden,
          tensor: refused ? new Uint8Array() : tensor,
          signature: new Uint8Array()
        } as unknown as ExpertResponse
      }
    })
  }
  const experts = new Set([expertKey(0, 0), expertKey(0, 1)])
  const ex = new RemoteExpertExecutor(
    client,
    new RouteManager(['A', 'B'].map((p) => ({ peerId: p, addrs: [], shards: [0], experts }))),
    { modelId: MODEL_ID, hidden: HIDDEN, verifySignatures: 'off', hedge: false }
  )
  ex.latency.observe('A', 1, 1) // A is chosen first
  ex.latency.observe('B', 1, 50)
  const x = new Float32Array(HIDDEN).fill(0.5)
  await Promise.all([ex.runExpert(0, 0, x, 1), ex.runExpert(0, 1, x, 1)])
  assert.deepEqual(drops, [], 'no stream dropped for a refusal')
  assert.equal(ex.routes.benched.has('A'), true, 'the refusing node is still benched')
})
