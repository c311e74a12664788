import { createServer, type Server } from 'node:http'
import type { Command } from 'commander'
import {
  OperatorNode,
  createNodeMetrics,
  type NodeMetrics,
  type Reachability
} from '../../node/index.js'
import { createLogger } from '../logger.js'
import { addNodeStartOptions, parseArgs, type NodeStartArgs } from './options.js'
import {
  addChainOptions,
  addDataDirOption,
  addKeyOptions,
  redacted,
  type CommonCliOptions
} from '../options.js'
import { registerPaidNodeCommands } from './paid.js'
import { registerLifecycleCommands } from './lifecycle.js'
import { preparePaidNode, type PaidSetup } from './paid-start.js'
import { keystoreDir } from '../options.js'
import { ETH_KEY_FILE } from '../keystore.js'
import { UserError } from '../errors.js'
import { listenError } from '../error-format.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

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
              'load expert shards and serve /pov/expert/1.0.0 until SIGINT/SIGTERM; with a keystore (--keystore, default <data-dir>/keystore): the registered shards, paid calls only; with --shards and no --keystore: unpaid development serving'
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

function reachabilityLine(r: Reachability): string {
  if (r.state === 'public' || r.state === 'mapped')
    return `reachable directly${r.state === 'mapped' ? ' (router port mapping)' : ''} at ${r.direct.join(', ')}`
  if (r.state === 'relayed')
    return `reachable only through a relay at ${r.relayed.join(', ')}; announce it with \`pov node update --announce\``
  return 'not reachable from outside yet: forward a TCP port to --listen, enable UPnP on the router, or give --relay-via <relay address>'
}

type PaidArgs = Omit<CommonCliOptions, 'json'>

async function start(args: NodeStartArgs & PaidArgs, cmd: Command): Promise<void> {
  const g = cmd.optsWithGlobals()
  const logger = createLogger({
    level: g.logLevel,
    format: args.json === true ? 'json' : g.logFormat,
    repeatWindowMs: 60_000 // long-running: a persisting problem is reported again each minute
  })
  // With a keystore the node is an on-chain operator: registered shards, identity and price.
  const metrics: NodeMetrics | null =
    args.metrics === true ? createNodeMetrics({ defaults: true }) : null
  let paid: PaidSetup | null = null
  // Like the other operator commands, the keystore defaults to <data-dir>/keystore; only --shards
  // without --keystore asks for the unpaid development mode.
  const keystore = args.keystore ?? (args.shards == null ? keystoreDir(args) : undefined)
  if (keystore != null) {
    if (args.keystore == null && !existsSync(join(keystore, ETH_KEY_FILE)))
      throw new UserError(
        `no operator keystore at ${keystore} — create one with \`pov node init\` and register it (then the registered shards are served, paid), or give --shards 0,1 for unpaid development serving`
      )
    paid = await preparePaidNode(
      { ...args, keystore, shards: args.shards != null ? parseArgs(args).shards : undefined },
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
        keystore,
        paid: paid?.summary
      })
    },
    'starting node'
  )
  let node: OperatorNode
  try {
    node = await OperatorNode.init({ opts, logger, metrics })
  } catch (err) {
    await paid?.close()
    throw listenError(err, opts.listen) ?? err
  }
  const server =
    metrics == null
      ? null
      : createServer((req, res) => {
          if (req.url === '/metrics') {
            void metrics.registry.metrics().then((body) => {
              res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body)
            })
          } else if (req.url === '/health') {
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
          } else if (req.url === '/ready') {
            // ready: experts loaded (the server starts after that) and, for a paid node, the chain
            // reachable and the node in good standing; the body says why not. `selection` is for
            // information only: a node that clients pass over still serves (node/selection.ts)
            const r = paid?.readiness() ?? { ok: true, reasons: [] }
            res
              .writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json' })
              .end(JSON.stringify({ ...r, selection: node.selection.view() }))
          } else res.writeHead(404).end()
        })
  if (server != null)
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => {
        void node.close().finally(() => {
          reject(
            listenError(err, [`${args.metricsAddress}:${args.metricsPort}`], '--metrics-port') ??
              err
          )
        })
      })
      server.listen(Number(args.metricsPort), args.metricsAddress, resolve)
    })

  const ready = {
    event: 'ready',
    peerId: node.peerId,
    addrs: node.addrs,
    modelId: node.hosted.modelId,
    shards: node.hosted.shards,
    experts: node.hosted.experts.length,
    device: node.device,
    engine: node.engine,
    // where /metrics is (the port the OS chose for --metrics-port 0)
    ...(server != null ? { metrics: metricsUrl(server.address()) } : {})
  }
  if (args.json === true) process.stdout.write(JSON.stringify(ready) + '\n')
  else
    process.stdout.write(
      `ready: ${node.peerId} serving shards ${ready.shards.join(',')} of ${ready.modelId} (${ready.experts} experts on ${deviceName(ready.device)}, ${ready.engine})\n${node.addrs.map((a) => `  ${a}`).join('\n')}\n`
    )
  // how the node can be reached (AutoNAT, port mapping, relay), each time it changes
  node.onReachability((r) => {
    if (args.json === true)
      process.stdout.write(JSON.stringify({ event: 'reachability', ...r }) + '\n')
    else logger.info(r, reachabilityLine(r))
  })

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

/** The execution provider in words, as operators look for it. */
function deviceName(d: string): string {
  return d === 'cuda' ? 'CUDA (GPU)' : d === 'webgpu' ? 'WebGPU (GPU)' : 'CPU'
}

function metricsUrl(a: ReturnType<Server['address']>): string | undefined {
  if (a == null || typeof a === 'string') return undefined
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
}
