// `pov serve`: the OpenAI-compatible gateway and web page (router/gateway), paying nodes from
// the keystore's escrow deposit exactly as `pov infer` does. Parses, loads the key, starts the
// server, stops on SIGINT/SIGTERM.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { isAddress } from 'ethers'
import {
  addCommonOptions,
  busyPollOption,
  parseBusyPollUs,
  parseListen,
  redacted,
  routerListenOption
} from '../options.js'
import { connectChain, loadSigner, parsePov } from '../chain.js'
import { UserError } from '../errors.js'
import { createLogger } from '../logger.js'
import { DEVICES } from '../../model/experts.js'
import {
  GatewayService,
  GatewayServer,
  DEFAULT_BODY_LIMIT,
  createGatewayMetrics,
  isLoopback
} from '../../router/gateway/index.js'
import {
  draftTokensOption,
  noSpeculativeOption,
  parseSpeculativeArgs,
  speculativeOption
} from '../generate/options.js'

/** Away from the ports other stacks use (8545 chain, 8080/8000 web servers, exo, Petals, Livepeer). */
export const DEFAULT_SERVE_PORT = 8640

interface ServeOpts {
  host: string
  port: string
  tokensFile?: string
  bundle?: string[]
  maxCost?: string
  spendingCap?: string
  maxTokensLimit: string
  maxConcurrent: string
  bodyLimit: string
  corsOrigins?: string
  replicas: string
  maxPrice?: string
  operators?: string
  wireDtype: string
  busyPollUs?: string
  device: string
  rpc: string
  deployment?: string
  keystore?: string
  passwordFile?: string
  dataDir: string
  json?: boolean
  speculative?: boolean
  draftTokens?: string
  listen?: string[]
}

export function register(program: Command): void {
  addCommonOptions(
    program
      .command('serve')
      .description(
        'OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions) and a web page, paid from your escrow deposit'
      )
  )
    .addOption(
      new Option('--host <addr>', 'listen address').env('POV_SERVE_HOST').default('127.0.0.1')
    )
    .addOption(
      new Option('--port <n>', 'listen port (0: any free one)')
        .env('POV_SERVE_PORT')
        .default(String(DEFAULT_SERVE_PORT))
    )
    .addOption(
      new Option(
        '--tokens-file <file>',
        'bearer tokens accepted, one per line (required off loopback); or POV_SERVE_TOKENS=a,b'
      ).env('POV_SERVE_TOKENS_FILE')
    )
    .option(
      '--bundle <dir...>',
      'local bundles to serve (approved models with a local file:// URI are served too)'
    )
    .option('--max-cost <pov>', 'most POV one request may spend')
    .option(
      '--spending-cap <pov>',
      'most POV this gateway spends until restarted, all requests together'
    )
    .option('--max-tokens-limit <n>', 'most tokens one request may generate', '1024')
    .option('--max-concurrent <n>', 'generations at once (more wait in a queue)', '8')
    .option('--body-limit <bytes>', 'largest request body', String(DEFAULT_BODY_LIMIT))
    .addOption(
      new Option(
        '--cors-origins <list>',
        'browser origins allowed to call the API, comma-separated (e.g. https://app.example), or * for any; default none'
      ).env('POV_SERVE_CORS_ORIGINS')
    )
    .option('--replicas <n>', 'nodes selected per shard (failover needs ≥ 2)', '2')
    .option('--max-price <pov>', 'highest price per unit of work accepted')
    .option(
      '--operators <addresses>',
      'only nodes of these operators (comma-separated addresses) are used: they see the prompts'
    )
    .addOption(
      new Option('--wire-dtype <dtype>', 'tensor encoding on the wire')
        .choices(['fp32', 'fp16'])
        .default('fp32')
    )
    .addOption(busyPollOption())
    .addOption(routerListenOption())
    .addOption(
      new Option('--device <device>', 'where the dense part runs')
        .choices([...DEVICES])
        .default('cpu')
    )
    .addOption(speculativeOption())
    .addOption(noSpeculativeOption())
    .addOption(draftTokensOption())
    .action(async (o: ServeOpts, cmd: Command) => {
      const int = (v: string, what: string, min: number): number => {
        const n = Number(v)
        if (!Number.isSafeInteger(n) || n < min)
          throw new UserError(`invalid ${what} "${v}": expected an integer ≥ ${min}`)
        return n
      }
      const port = int(o.port, '--port', 0)
      if (port > 65535) throw new UserError(`invalid --port "${o.port}"`)
      const listen = parseListen(o.listen)
      const tokens = await readTokens(o.tokensFile)
      if (tokens.length === 0 && !isLoopback(o.host))
        throw new UserError(
          `refusing to serve on ${o.host} without access tokens: anyone who reaches it would spend your deposit — give --tokens-file FILE (or POV_SERVE_TOKENS), or listen on 127.0.0.1`
        )
      const logger = createLogger({
        level: cmd.optsWithGlobals().logLevel,
        format: o.json === true ? 'json' : cmd.optsWithGlobals().logFormat,
        repeatWindowMs: 60_000 // long-running: a persisting problem is reported again each minute
      })
      logger.info({ settings: redacted({ ...o, tokens: tokens.length }) }, 'pov serve')
      const ctx = await connectChain(o)
      const signer = await loadSigner(o, ctx)
      const metrics = createGatewayMetrics({ defaults: true })
      let service: GatewayService | undefined
      let server: GatewayServer | undefined
      try {
        service = await GatewayService.init({
          chain: ctx,
          signer,
          bundles: o.bundle,
          maxCostPerRequest: o.maxCost != null ? parsePov(o.maxCost, '--max-cost') : undefined,
          spendingCap:
            o.spendingCap != null ? parsePov(o.spendingCap, '--spending-cap') : undefined,
          maxTokensLimit: int(o.maxTokensLimit, '--max-tokens-limit', 1),
          maxConcurrent: int(o.maxConcurrent, '--max-concurrent', 1),
          router: {
            replicas: int(o.replicas, '--replicas', 1),
            maxPrice: o.maxPrice != null ? parsePov(o.maxPrice, '--max-price') : undefined,
            operators: o.operators != null ? parseOperators(o.operators) : undefined,
            wireDType: o.wireDtype === 'fp16' ? 'fp16' : 'fp32',
            busyPollUs: o.busyPollUs != null ? parseBusyPollUs(o.busyPollUs) : undefined,
            listen,
            ledgerPath: join(
              o.dataDir,
              'payer',
              `${ctx.chainId}-${ctx.deployment.contracts.escrow}-${signer.address}.json`
            )
          },
          device: o.device === 'cuda' ? 'cuda' : 'cpu',
          speculative: parseSpeculativeArgs(o, true),
          logger,
          metrics
        })
        if (service.models.size === 0)
          throw new UserError(
            'no approved model has a local bundle here — pass --bundle DIR (convert the checkpoint with `pov model convert`)'
          )
        try {
          server = await GatewayServer.start({
            service,
            host: o.host,
            port,
            tokens,
            bodyLimit: int(o.bodyLimit, '--body-limit', 1024),
            corsOrigins: (o.corsOrigins ?? '')
              .split(',')
              .map((x) => x.trim())
              .filter((x) => x !== ''),
            metrics,
            logger
          })
        } catch (err) {
          throw new UserError(`pov serve: ${(err as Error).message}`)
        }
        const models = [...service.models.values()].map((m) => ({ id: m.id, modelId: m.modelId }))
        if (o.json === true)
          process.stdout.write(
            JSON.stringify({ event: 'ready', url: server.url, payer: service.payer, models }) + '\n'
          )
        else
          process.stdout.write(
            `pov serve: ${server.url}  (web page at /, OpenAI API at /v1, metrics at /metrics)\n  payer ${service.payer}\n  models ${models.map((m) => m.id).join(', ')}\n`
          )
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGINT', () => {
            resolve('SIGINT')
          })
          process.once('SIGTERM', () => {
            resolve('SIGTERM')
          })
        })
        logger.info({ signal }, 'stopping')
      } finally {
        await server?.close()
        await service?.close()
        ctx.provider.destroy()
      }
      if (o.json === true) process.stdout.write(JSON.stringify({ event: 'stopped' }) + '\n')
    })
}

function parseOperators(list: string): string[] {
  const out = list
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
  for (const a of out)
    if (!isAddress(a))
      throw new UserError(`invalid --operators entry "${a}": expected a 0x… operator address`)
  if (out.length === 0) throw new UserError('--operators needs at least one operator address')
  return out
}

async function readTokens(file: string | undefined): Promise<string[]> {
  const fromEnv = (process.env.POV_SERVE_TOKENS ?? '').split(',')
  let fromFile: string[] = []
  if (file != null) {
    try {
      fromFile = (await readFile(file, 'utf8')).split('\n')
    } catch (err) {
      throw new UserError(`cannot read --tokens-file ${file}: ${(err as Error).message}`)
    }
  }
  return [...fromEnv, ...fromFile]
    .map((t) => t.trim())
    .filter((t) => t !== '' && !t.startsWith('#'))
}
