import { createServer } from 'node:http'
import type { Command } from 'commander'
import { OperatorNode, createNodeMetrics, type NodeMetrics } from '../../node/index.js'
import { createLogger } from '../logger.js'
import { redacted } from '../options.js'
import { addNodeStartOptions, parseArgs, type NodeStartArgs } from './options.js'
import { addChainOptions, addDataDirOption, addKeyOptions } from '../options.js'
import { registerPaidNodeCommands } from './paid.js'
import { registerLifecycleCommands } from './lifecycle.js'
import { preparePaidNode, type PaidSetup } from './paid-start.js'

/** Registers the `pov node` commands. */
export function register(program: Command): void {
  const node = program.command('node').description('run an operator node that serves expert shards')
  addDataDirOption(
    addKeyOptions(
      addChainOptions(
        addNodeStartOptions(
          node
            .command('start')
            .description(
              'load expert shards and serve /pov/expert/1.0.0 until SIGINT/SIGTERM; with --keystore: the registered shards, paid calls only'
            )
        )
      )
    )
  ).action(async (args: NodeStartArgs & PaidArgs, cmd: Command) => {
    await start(args, cmd)
  })
  registerPaidNodeCommands(node)
  registerLifecycleCommands(node)
}

type PaidArgs = {
  keystore?: string
  passwordFile?: string
  rpc: string
  deployment?: string
  dataDir: string
}

async function start(args: NodeStartArgs & PaidArgs, cmd: Command): Promise<void> {
  const g = cmd.optsWithGlobals()
  const logger = createLogger({
    level: g.logLevel,
    format: args.json === true ? 'json' : g.logFormat
  })
  // With a keystore the node is an on-chain operator: registered shards, identity and price.
  const metrics: NodeMetrics | null =
    args.metrics === true ? createNodeMetrics({ defaults: true }) : null
  let paid: PaidSetup | null = null
  if (args.keystore != null) {
    paid = await preparePaidNode(
      { ...args, shards: args.shards != null ? parseArgs(args).shards : undefined },
      logger,
      metrics
    )
  }
  const opts = parseArgs({ ...args, shards: args.shards ?? paid?.shards.join(',') ?? '' })
  if (paid != null)
    Object.assign(opts, { privateKey: paid.privateKey, verifyPayment: paid.verifyPayment })
  logger.info(
    {
      config: redacted({
        ...opts,
        privateKey: undefined,
        verifyPayment: undefined,
        keystore: args.keystore,
        paid: paid?.summary
      })
    },
    'starting node'
  )
  const node = await OperatorNode.init({ opts, logger, metrics })
  const server =
    metrics == null
      ? null
      : createServer((req, res) => {
          if (req.url === '/metrics') {
            void metrics.registry.metrics().then((body) => {
              res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body)
            })
          } else if (req.url === '/health' || req.url === '/ready') {
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
          } else res.writeHead(404).end()
        }).listen(Number(args.metricsPort), args.metricsAddress)

  const ready = {
    event: 'ready',
    peerId: node.peerId,
    addrs: node.addrs,
    modelId: node.hosted.modelId,
    shards: node.hosted.shards,
    experts: node.hosted.experts.length
  }
  if (args.json === true) process.stdout.write(JSON.stringify(ready) + '\n')
  else
    process.stdout.write(
      `ready: ${node.peerId} serving shards ${ready.shards.join(',')} of ${ready.modelId}\n${node.addrs.map((a) => `  ${a}`).join('\n')}\n`
    )

  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'stopping')
      server?.close()
      void node
        .close()
        .then(async () => {
          await paid?.close()
        })
        .finally(resolve)
    }
    process.once('SIGINT', () => {
      stop('SIGINT')
    })
    process.once('SIGTERM', () => {
      stop('SIGTERM')
    })
  })
  if (args.json === true) process.stdout.write(JSON.stringify({ event: 'stopped' }) + '\n')
}
