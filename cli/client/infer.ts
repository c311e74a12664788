// `pov infer`: a paid generation. Nodes come from the registry, every call carries a voucher, and
// the run ends with what each node was paid.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import {
  addCommonOptions,
  parseListen,
  routerListenOption,
  type CommonCliOptions
} from '../options.js'
import { connectChain, formatPov, loadSigner, parsePov } from '../chain.js'
import { UserError } from '../errors.js'
import { isModelId, resolveModelId } from '../model-ref.js'
import { asUserError } from '../error-format.js'
import {
  addSamplingOptions,
  parseGenerateArgs,
  parseWireArgs,
  type SamplingCliOptions
} from '../generate/options.js'
import { addVerifyOptions, parseVerifyArgs, verifyParts, type VerifyCliOptions } from '../verify.js'

interface InferOpts extends CommonCliOptions, SamplingCliOptions, VerifyCliOptions {
  model: string
  bundle?: string
  maxPrice?: string
  replicas: string
  listen?: string[]
}

export function registerInfer(program: Command): void {
  addVerifyOptions(
    addCommonOptions(
      addSamplingOptions(
        program
          .command('infer')
          .argument('[prompt]', 'prompt text')
          .description(
            'paid generation: nodes from the on-chain registry, a voucher on every expert call, a cost summary per node'
          )
      )
    )
  )
    .requiredOption(
      '--model <id|bundle>',
      'approved model id (0x… 32 bytes), or a local bundle of it (then also the --bundle)'
    )
    .option(
      '--bundle <dir>',
      "local bundle of that model (the dense part runs here); default: the approved model's file URI"
    )
    .option('--max-price <pov>', 'highest price per unit of work accepted')
    .option(
      '--replicas <n>',
      'replicas per shard expected (failover needs ≥ 2); fewer: a warning',
      '2'
    )
    .addOption(routerListenOption())
    .action(async (prompt: string | undefined, o: InferOpts, cmd: Command) => {
      if (!isModelId(o.model)) {
        o.bundle ??= o.model
        o.model = resolveModelId(o.model)
      }
      const replicas = Number(o.replicas)
      if (!Number.isInteger(replicas) || replicas < 1)
        throw new UserError(`invalid --replicas "${o.replicas}"`)
      const maxPrice = o.maxPrice != null ? parsePov(o.maxPrice, '--max-price') : undefined
      const wire = parseWireArgs(o)
      const listen = parseListen(o.listen)
      // loaded here, not at start-up: the other commands of this module do not need them
      const [{ createLogger }, { runGenerateInTerminal }, { openPaidRouter, PaymentSetupError }] =
        await Promise.all([
          import('../logger.js'),
          import('../generate/handler.js'),
          import('../../router/paid.js')
        ])
      const ctx = await connectChain(o)
      const logger = createLogger({
        level: cmd.optsWithGlobals().logLevel,
        format: o.json === true ? 'json' : cmd.optsWithGlobals().logFormat
      })
      try {
        const signer = await loadSigner(o, ctx)
        const bundleDir = o.bundle ?? (await bundleFromUri(ctx, o.model))
        // the paying router is the executor; speculative decoding is on unless --no-speculative
        const args = parseGenerateArgs({
          ...o,
          speculative: o.speculative ?? true,
          model: bundleDir,
          local: true,
          prompt
        })
        const debug = (line: string): void => {
          logger.debug({ module: 'speculative' }, line)
        }
        await runGenerateInTerminal(args, debug, async (bundle) => {
          if (bundle.modelId.toLowerCase() !== o.model.toLowerCase())
            throw new UserError(`bundle ${bundle.dir} is model ${bundle.modelId}, not ${o.model}`)
          const verify = await verifyParts(parseVerifyArgs(o, o.dataDir), bundle, (l) =>
            logger.warn(l)
          )
          let paid
          try {
            paid = await openPaidRouter({
              verify: verify.options,
              contracts: ctx.contracts,
              chainId: ctx.chainId,
              registryAddress: ctx.deployment.contracts.registry,
              signer,
              modelId: bundle.modelId,
              hidden: bundle.config.hiddenSize,
              shardCount: bundle.manifest.shards.length,
              shardExperts: bundle.manifest.shards.map((s) => s.experts),
              replicas,
              maxPrice,
              listen,
              ...wire,
              ledgerPath: join(
                o.dataDir,
                'payer',
                `${ctx.chainId}-${ctx.deployment.contracts.escrow}-${signer.address}.json`
              ),
              logger
            })
          } catch (err) {
            await verify.close()
            if (err instanceof PaymentSetupError) throw new UserError(err.message)
            throw err
          }
          const p = paid
          return {
            executor: p.router.executor,
            describe: `${p.nodes.size} paid nodes from the registry`,
            close: async () => {
              await p.close()
              await verify.close()
            },
            verification: () => verify.summary(p.spotCheck!),
            report: () => {
              const costs = p.costs()
              const total = costs.reduce((a, c) => a + c.amount, 0n)
              const prepaid = costs.reduce((a, c) => a + c.prepaid, 0n)
              const st = p.stats()
              return {
                json: {
                  payer: signer.address,
                  total,
                  prepaid,
                  signatures: st.signatures,
                  rpcCallsDuringGeneration: st.rpcCalls,
                  directoryRpcCallsDuringGeneration: st.directoryRpcCalls,
                  refusedCalls: st.refunds,
                  nodes: costs.map((c) => ({
                    operator: c.operator,
                    peerId: c.peerId,
                    shards: c.shards,
                    price: c.price,
                    calls: c.calls,
                    units: c.units,
                    amount: c.amount,
                    prepaid: c.prepaid
                  }))
                },
                text: [
                  'cost per node:',
                  ...costs.map(
                    (c) =>
                      `  ${c.operator} (${c.peerId.slice(-8)}) shards ${c.shards.join(',')}: ${c.calls} calls, ${c.units} units × ${formatPov(c.price)} = ${formatPov(c.amount)}`
                  ),
                  `  ${st.signatures} voucher signatures, ${st.rpcCalls} chain calls while generating (+${st.directoryRpcCalls} by the registry directory's refresh), ${st.refunds} refused calls (not charged)`,
                  `  total ${formatPov(total)}` +
                    (prepaid > 0n
                      ? ` (+ ${formatPov(prepaid)} prepaid in the last vouchers, which the nodes may redeem)`
                      : '')
                ].join('\n')
              }
            }
          }
        })
      } catch (err) {
        throw asUserError(err)
      } finally {
        ctx.provider.destroy()
      }
    })
}

async function bundleFromUri(
  ctx: Awaited<ReturnType<typeof connectChain>>,
  modelId: string
): Promise<string> {
  if (!(await ctx.contracts.models.isApproved(modelId)))
    throw new UserError(
      `model ${modelId} is not approved on this chain — \`pov gov list\` and \`pov audit\` show the approved models`
    )
  const info = await ctx.contracts.models.modelInfo(modelId)
  const uri = info.uri
  const path = uri.startsWith('file://') ? fileURLToPath(uri) : uri
  if (path === '' || !existsSync(path))
    throw new UserError(
      `no local bundle for model ${modelId} (its URI is "${uri}") — pass --bundle DIR (convert the checkpoint with \`pov model convert\`)`
    )
  return path
}
