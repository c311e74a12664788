// Whether routers choose a node (node/selection.ts): a real router picks the nearer of two
// in-process replicas by measured call time; the far one sees only the router's trial,
// re-measurement and hedge calls, learns its part from the gaps in the router's request ids, and
// warns once with what helps. A client with non-counter ids is not judged.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import type { Logger } from 'pino'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import { createNodeMetrics } from '../../../node/metrics.js'
import { SelectionWatch } from '../../../node/selection.js'
import { Router } from '../../../router/router.js'
import { fakeModel, MODEL_ID, HIDDEN, rowsOf } from './fixtures.js'

type Host = Libp2p<{ expert: ExpertService }>

function recordingLogger() {
  const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = []
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      lines.push({ level, msg, obj })
    }
  return { lines, logger: { warn: at('warn'), info: at('info') } as unknown as Logger }
}

test('a replica the router passes over for a nearer one learns it, warns once with the remedy, and exports its share', async () => {
  const near = recordingLogger()
  const far = recordingLogger()
  const metrics = createNodeMetrics()
  // the calls below go only to experts both replicas host: either gets all of them when chosen
  const hostedFraction = 1
  const watches = {
    near: new SelectionWatch({ hostedFraction, logger: near.logger, minSpan: 50 }),
    far: new SelectionWatch({ hostedFraction, logger: far.logger, metrics, minSpan: 50 })
  }
  const start = async (w: SelectionWatch, delayMs?: number): Promise<Host> =>
    (await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      ...transportOptions(),
      services: {
        expert: expertService({
          models: [fakeModel({ delayMs })],
          onRequest: (peer, id) => {
            w.observe(peer, id)
          }
        })
      }
    })) as unknown as Host
  const a = await start(watches.near)
  const b = await start(watches.far, 50) // 50 ms of compute (or of path) more than `a`
  const router = await Router.init({
    opts: {
      peers: [a, b].map((h) => h.getMultiaddrs()[0].toString()),
      modelId: MODEL_ID,
      hidden: HIDDEN
    }
  })
  try {
    // decode-like traffic: one row per call, over every hosted expert
    const experts = fakeModel().experts
    const x = rowsOf(1)
    for (let i = 0; i < 240; i++) {
      const [l, e] = experts[i % experts.length]
      await router.executor.runExpert(l, e, x, 1)
    }
    // the router's choice, as it measured it: the near replica took most calls
    const farView = watches.far.check()
    const nearView = watches.near.check()
    assert.equal(farView.clients, 1, JSON.stringify(farView))
    assert.equal(farView.passedOver, 1, JSON.stringify(farView))
    assert.ok(farView.share! < 0.2, `far share ${farView.share}`)
    assert.equal(nearView.chose, 1, JSON.stringify(nearView))
    assert.ok(nearView.share! > 0.8, `near share ${nearView.share}`)
    // near and far shares add up to every call the router made (retries and hedges included)
    assert.ok(
      Math.abs(nearView.share! + farView.share! - 1) < 0.1,
      `${nearView.share} + ${farView.share}`
    )

    const warns = far.lines.filter((l) => l.level === 'warn')
    assert.equal(warns.length, 1, JSON.stringify(far.lines))
    assert.match(
      warns[0].msg,
      /^selected less: 1 of 1 clients sent their calls for this node's experts to other replicas \(it got \d+ % of them\)/
    )
    assert.match(warns[0].msg, /lowest measured call time/)
    assert.match(String(warns[0].obj.remedy), /--device cuda/)
    assert.equal(near.lines.length, 0, 'the chosen replica says nothing')
    watches.far.check()
    assert.equal(far.lines.filter((l) => l.level === 'warn').length, 1, 'rate-limited')
    assert.match(
      await metrics.registry.getSingleMetricAsString('pov_selection_clients'),
      /choice="passed-over"\} 1/
    )
    const share = await metrics.registry.getSingleMetricAsString('pov_selection_share')
    assert.ok(Number(/^pov_selection_share (\S+)$/m.exec(share)![1]) < 0.2, share)
  } finally {
    await router.close()
    await a.stop()
    await b.stop()
  }
})

test('clients with random ids, too few calls, or calls gone out of the window are not judged; the warning ends with an info line', () => {
  let t = 0
  const { lines, logger } = recordingLogger()
  const w = new SelectionWatch({ hostedFraction: 0.5, logger, now: () => t, repeatMs: 1000 })
  // random 64-bit ids: no counter, no share
  for (let i = 0; i < 200; i++)
    w.observe('random', BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n))
  // a counter, but only 40 calls made in all
  for (let i = 0; i < 40; i += 4) w.observe('short', 1000n + BigInt(i))
  assert.deepEqual(w.check(), { clients: 0, chose: 0, passedOver: 0, share: null })
  // one in 20 of a client's calls: a tenth of the half its experts would get
  for (let i = 0; i < 400; i += 20) w.observe('elsewhere', 5000n + BigInt(i))
  const v = w.check()
  assert.equal(v.passedOver, 1)
  assert.ok(Math.abs(v.share! - 0.1) < 0.01, String(v.share))
  assert.equal(lines.filter((l) => l.level === 'warn').length, 1)
  // a minute later those calls left the window; a client that sends half its calls here arrives
  t = 61_000
  for (let i = 0; i < 400; i += 2) w.observe('chooser', 9000n + BigInt(i))
  const after = w.check()
  assert.deepEqual([after.clients, after.chose, after.passedOver], [1, 1, 0])
  assert.equal(lines.at(-1)!.msg, 'selected again: most clients send this node its experts’ calls')
})
