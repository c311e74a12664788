// Spot re-execution against real in-process nodes on 127.0.0.1 (fake runtimes): a dishonest
// node is caught by a third opinion, the majority answer is used, the conviction survives a
// restart, the evidence file proves who was wrong, and honest nodes are never accused.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { transportOptions } from '../../../protocol/transport.js'
import { expertService, type ExpertService } from '../../../node/expert-service.js'
import type { HostedModel } from '../../../node/runtime.js'
import { Router } from '../../../router/router.js'
import { SpotChecker } from '../../../router/spot-check.js'
import { Reputation } from '../../../router/reputation.js'
import { parseEvidence, verifyFaultEvidence } from '../../../router/evidence.js'
import { fakeModel, MODEL_ID, HIDDEN, rowsOf } from '../node/fixtures.js'

type Host = Libp2p<{ expert: ExpertService }>
const hosts: Host[] = []
let dir: string
after(async () => {
  await Promise.all(hosts.map(async (h) => await h.stop()))
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

/** What the honest fake expert computes (fixtures.ts): x · (1 + 10 l + e). */
const truth = (l: number, e: number, x: Float32Array): Float32Array =>
  x.map((v) => v * (1 + 10 * l + e))

/** A node whose answers the test perturbs through the library API (no production flag). */
function tampered(scale: number): HostedModel {
  const m = fakeModel()
  const run = m.runtime.runExpert
  return {
    ...m,
    runtime: {
      ...m.runtime,
      runExpert: async (l, e, x, rows) => (await run(l, e, x, rows)).map((v) => v * scale)
    }
  }
}

async function startNode(model: HostedModel = fakeModel()): Promise<Host> {
  const h = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: { expert: expertService({ models: [model] }) }
  })) as unknown as Host
  hosts.push(h)
  return h
}
const addr = (h: Host): string => h.getMultiaddrs()[0].toString()

async function routerWith(peers: Host[], checker: SpotChecker): Promise<Router> {
  return await Router.init({
    opts: {
      peers: peers.map(addr),
      modelId: MODEL_ID,
      hidden: HIDDEN,
      spotCheck: checker,
      verifySignatures: 'sync'
    }
  })
}

test('a 1 % rescale is caught by the third opinion, the majority is used, and the conviction persists', async () => {
  dir = await mkdtemp(join(tmpdir(), 'pov-spot-'))
  const honest = [await startNode(), await startNode()]
  const cheat = await startNode(tampered(1.01))
  const repFile = join(dir, 'reputation.json')
  const faults: string[] = []
  const checker = new SpotChecker({
    rate: 1,
    modelId: MODEL_ID,
    reputation: new Reputation(repFile),
    evidenceDir: join(dir, 'evidence'),
    onFault: (f) => faults.push(f.peer)
  })
  const r = await routerWith([...honest, cheat], checker)
  try {
    const x = rowsOf(3)
    for (let i = 0; i < 12; i++)
      for (const [l, e] of [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1]
      ])
        assert.deepEqual(await r.executor.runExpert(l, e, x, 3), truth(l, e, x), 'majority answer')
    assert.deepEqual(faults, [cheat.peerId.toString()], 'only the cheat, once')
    assert.equal(checker.counts.convicted, 1)
    for (const h of honest) assert.equal(checker.reputation.isConvicted(h.peerId.toString()), false)
  } finally {
    await r.close()
  }

  // the evidence file: the cheat's signed answer is proven wrong by re-running the expert
  const [file] = await readdir(join(dir, 'evidence'))
  const ev = parseEvidence(await readFile(join(dir, 'evidence', file), 'utf8'))
  assert.equal(ev.answers.length, 3)
  const v = await verifyFaultEvidence(ev, MODEL_ID, async (x) => truth(ev.layer, ev.expert, x))
  assert.deepEqual(
    v.wrong.map((s) => s.peerId),
    [cheat.peerId.toString()]
  )
  assert.equal(v.signers.filter((s) => s.signatureOk && !s.wrong).length, 2)
  assert.deepEqual(v.problems, [])
  assert.ok(v.wrong[0].distance > 9e-3 && v.wrong[0].distance < 1.1e-2, `${v.wrong[0].distance}`)

  // a forged file (output swapped for the correct one) no longer matches the signed hash
  const forged = structuredClone(ev)
  const wrongIdx = ev.answers.findIndex((a) => a.peerId === cheat.peerId.toString())
  const rightIdx = ev.answers.findIndex(
    (a) => a.source === 'node' && a.peerId !== cheat.peerId.toString()
  )
  forged.answers[rightIdx].output = ev.answers[wrongIdx].output
  const fv = await verifyFaultEvidence(forged, MODEL_ID, async (x) => truth(ev.layer, ev.expert, x))
  assert.deepEqual(
    fv.wrong.map((s) => s.peerId),
    [cheat.peerId.toString()],
    'a forged answer convicts nobody else'
  )
  assert.ok(fv.problems.some((p) => p.includes('does not match its signed hash')))
  await assert.rejects(
    verifyFaultEvidence(ev, '0x' + 'cd'.repeat(32), async (x) => x),
    /the evidence is about model/
  )

  // a restarted router reads the reputation file and never calls the convicted node
  const r2 = await Router.init({
    opts: {
      peers: [...honest, cheat].map(addr),
      modelId: MODEL_ID,
      hidden: HIDDEN,
      spotCheck: new SpotChecker({
        rate: 0,
        modelId: MODEL_ID,
        reputation: new Reputation(repFile)
      })
    }
  })
  try {
    const x = rowsOf(1)
    for (let i = 0; i < 20; i++)
      assert.deepEqual(await r2.executor.runExpert(1, 1, x, 1), truth(1, 1, x))
    const used = new Set(
      r2.libp2p
        .getConnections()
        .flatMap((c) =>
          c.streams.some((s) => s.protocol === '/pov/expert/1.0.0') ? [c.remotePeer.toString()] : []
        )
    )
    assert.equal(used.has(cheat.peerId.toString()), false, 'convicted node not used after restart')
    assert.ok(used.size > 0)
  } finally {
    await r2.close()
  }
})

test('honest replicas agree: no accusation over many checked calls', async () => {
  const nodes = [await startNode(), await startNode(), await startNode()]
  const checker = new SpotChecker({ rate: 1, modelId: MODEL_ID, reputation: new Reputation() })
  const r = await routerWith(nodes, checker)
  try {
    for (let i = 0; i < 40; i++)
      await r.executor.runExpert(i % 2, (i >> 1) % 2, rowsOf(1 + (i % 4), i), 1 + (i % 4))
    assert.equal(checker.counts.agreed, 40)
    assert.equal(checker.counts.convicted, 0)
    assert.deepEqual(checker.reputation.list(), [])
  } finally {
    await r.close()
  }
})

test('two replicas (the demo layout): a mismatch never uses the primary’s word; the router’s own run referees and convicts', async () => {
  const honest = await startNode()
  const cheat = await startNode(tampered(1.5))
  const cheatId = cheat.peerId.toString()
  // no referee at all: a call whose two answers differ fails rather than use either
  const noRef = new SpotChecker({ rate: 1, modelId: MODEL_ID, reputation: new Reputation() })
  const r = await routerWith([honest, cheat], noRef)
  try {
    const x = rowsOf(1)
    for (let i = 0; i < 6; i++)
      await assert.rejects(r.executor.runExpert(0, 1, x, 1), /differently and no referee/)
    assert.equal(noRef.counts.undecided, 6)
    assert.equal(noRef.counts.convicted, 0)
  } finally {
    await r.close()
  }
  // default rate, the router's own run as referee: the first checked call convicts the cheat,
  // whichever of the two was the primary, and the referee's answer is used
  const local = fakeModel().runtime
  let sampled = 0
  const withLocal = new SpotChecker({
    modelId: MODEL_ID,
    reputation: new Reputation(),
    local: { runExpert: local.runExpert },
    random: () => (sampled++ === 3 ? 0 : 0.99) // the 4th call is the one checked
  })
  assert.equal(withLocal.rate, 0.02, 'default flags')
  const r2 = await routerWith([honest, cheat], withLocal)
  try {
    const x = rowsOf(2)
    const outs: boolean[] = []
    for (let i = 0; i < 8; i++) {
      const y = await r2.executor.runExpert(0, 1, x, 2)
      outs.push(y.every((v, j) => v === truth(0, 1, x)[j]))
    }
    assert.equal(withLocal.counts.convicted + withLocal.counts.agreed, 1)
    // convicted on its first check if it answered it, or as the referee's second opinion
    assert.equal(withLocal.reputation.isConvicted(cheatId), true)
    assert.equal(withLocal.reputation.isConvicted(honest.peerId.toString()), false)
    assert.deepEqual(
      outs.slice(4),
      [true, true, true, true],
      'after the conviction: only right answers'
    )
    assert.equal(outs[3], true, 'the checked call uses the right answer')
  } finally {
    await r2.close()
  }
})

test('one replica: the router’s own run is the second opinion and convicts', async () => {
  const cheat = await startNode(tampered(0.9))
  const local = fakeModel().runtime
  const checker = new SpotChecker({
    rate: 1,
    modelId: MODEL_ID,
    reputation: new Reputation(),
    local: { runExpert: local.runExpert }
  })
  const r = await routerWith([cheat], checker)
  try {
    const x = rowsOf(1)
    // the checked call's answer is the referee's
    assert.deepEqual(await r.executor.runExpert(1, 0, x, 1), truth(1, 0, x))
    assert.equal(checker.counts.convicted, 1)
    assert.equal(checker.reputation.isConvicted(cheat.peerId.toString()), true)
    // and it is not asked again: nobody is left
    await assert.rejects(r.executor.runExpert(1, 0, x, 1), /convicted/)
  } finally {
    await r.close()
  }
  // strict checking with no referee: an answer nobody can confirm is not used
  const honest = await startNode()
  const strict = new SpotChecker({ rate: 1, modelId: MODEL_ID, reputation: new Reputation() })
  const r2 = await routerWith([honest], strict)
  try {
    await assert.rejects(r2.executor.runExpert(0, 0, rowsOf(1), 1), {
      name: 'UnverifiedAnswerError'
    })
  } finally {
    await r2.close()
  }
})

test('a referee whose signature does not verify falls through to the next replica', async () => {
  const honest = [await startNode(), await startNode()]
  const unsigned = (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    ...transportOptions(),
    services: { expert: expertService({ models: [fakeModel()], sign: false }) }
  })) as unknown as Host
  hosts.push(unsigned)
  const bad: string[] = []
  const checker = new SpotChecker({ rate: 1, modelId: MODEL_ID, reputation: new Reputation() })
  const r = await Router.init({
    opts: {
      peers: [...honest, unsigned].map(addr),
      modelId: MODEL_ID,
      hidden: HIDDEN,
      spotCheck: checker,
      // short benches: the unsigned node keeps being asked, as primary and as referee
      routes: { benchBaseMs: 1, badAnswerMaxMs: 1 },
      calls: { hedge: false },
      onBadSignature: (e) => bad.push(e.peer)
    }
  })
  try {
    for (let i = 0; i < 30; i++) {
      await r.executor.runExpert(0, 0, rowsOf(1, i), 1)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    assert.ok(bad.length > 0, 'the unsigned node was asked')
    // every check found a verified second answer: none ended unchecked
    assert.deepEqual(checker.counts, { agreed: 30, convicted: 0, undecided: 0, unchecked: 0 })
  } finally {
    await r.close()
  }
})

test('a broken reputation file is a clear error, not a silent reset', async () => {
  const f = join(dir, 'bad.json')
  await writeFile(f, '{nope')
  assert.throws(() => new Reputation(f), /not valid JSON/)
  await writeFile(f, '{"version":2}')
  assert.throws(() => new Reputation(f), /not a version 1/)
  assert.throws(
    () => new SpotChecker({ rate: 2, modelId: MODEL_ID, reputation: new Reputation() }),
    /\[0, 1\]/
  )
})
