// The paid network the money e2e tests (paid.test.ts, gateway.test.ts) run against, built one
// way: a local chain with the contracts (deploy/localnet.ts), the tiny model converted to a
// bundle and approved by governance, two operators staked and priced, each serving every shard
// (each is the other's replica), their nodes started, and a client key funded.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther } from 'ethers'
import { LocalNet, freePort, type OperatorHandle } from '../../deploy/localnet.js'
import { writeTinyCheckpoint } from '../../model/tiny.js'
import { convertCheckpoint, loadBundle, type Bundle } from '../../model/bundle/index.js'
import { buildDenseArtifacts } from '../../model/dense/index.js'

export interface PaidNetworkOptions {
  /** Prefix of the temporary directory. */
  tmpPrefix: string
  /** The approved model's name. */
  modelName: string
  /** POV per unit, each operator's price. */
  price: string
  /** Build the bundle's dense artifacts too (what a router, a gateway, runs). @default false */
  dense?: boolean
  /** Which nodes get a metrics port (by operator index). @default none */
  metrics?: (i: number) => boolean
}

export interface PaidNetwork {
  dir: string
  net: LocalNet
  bundle: Bundle
  ops: OperatorHandle[]
  /** The governance proposal that approved the model. */
  proposalId: bigint
  /** Per operator index: its node's metrics port, or undefined. */
  metricsPorts: Array<number | undefined>
  /** The client's keystore (funded with 100 POV and 10 ETH, nothing deposited yet) and its address. */
  clientKeystore: string
  clientAddress: string
  close: () => Promise<void>
}

export async function startPaidNetwork(o: PaidNetworkOptions): Promise<PaidNetwork> {
  const dir = await mkdtemp(join(tmpdir(), o.tmpPrefix))
  const net = new LocalNet(dir)
  const close = async (): Promise<void> => {
    await net.close()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await net.start()
    await writeTinyCheckpoint(join(dir, 'hf'), { seed: 7 })
    await convertCheckpoint(join(dir, 'hf'), join(dir, 'bundle'), {
      quant: 'none',
      ...(o.dense === true ? { extraBuilders: [buildDenseArtifacts] } : {})
    })
    const bundle = await loadBundle(join(dir, 'bundle'))
    const round = await net.approveModel({
      modelId: bundle.modelId,
      name: o.modelName,
      layers: bundle.config.numLayers,
      experts: 8,
      shardCount: 8,
      uri: 'file://' + bundle.dir
    })
    const ops = await Promise.all(
      [0, 1].map(
        async (i) =>
          await net.addOperator(`op${i}`, {
            modelId: bundle.modelId,
            shards: [0, 1, 2, 3, 4, 5, 6, 7],
            stake: '1000',
            price: o.price,
            fundPov: parseEther('1500')
          })
      )
    )
    const metricsPorts: Array<number | undefined> = []
    for (let i = 0; i < ops.length; i++)
      metricsPorts.push(o.metrics?.(i) === true ? await freePort() : undefined)
    await Promise.all(
      ops.map(async (op, i) => {
        const port = metricsPorts[i]
        await net.startNode(op, bundle.dir, port != null ? { metricsPort: port } : {})
      })
    )
    const client = await net.addClient('client')
    return {
      dir,
      net,
      bundle,
      ops,
      proposalId: round.proposalId,
      metricsPorts,
      clientKeystore: client.keystore,
      clientAddress: client.address,
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}
