// `pov oracle`: on-chain inference requests (docs/oracle.md). `request` posts one for a person,
// `serve` answers requests (and checks and challenges others' answers), `check` re-runs a posted
// result and says agree/disagree, `challenge` posts a different result with a bond, `finalize`
// pays and runs the callback once the window is over. The logic lives in chain/oracle.ts,
// router/oracle.ts and router/oracle-worker.ts.
import type { Command } from 'commander'
import { formatUnits, id as keccakId, isHexString } from 'ethers'
import { addCommonOptions, type CommonCliOptions, parseRecordNumber } from '../options.js'
import {
  formatChainTime,
  formatPov,
  loadSigner,
  parseAddress,
  parsePov,
  withChain
} from '../chain.js'
import type { ChainContext } from '../chain.js'
import { print, toJson } from '../output.js'
import { UserError } from '../errors.js'
import { resolveModelId } from '../model-ref.js'
import { describeChainError } from '../error-format.js'
import {
  challengeRequest,
  finalizeRequest,
  inferenceRequestsOf,
  postRequest,
  readRequest,
  type RequestView
} from '../../chain/oracle.js'
import type { InferenceRequestsContract } from '../../chain/contracts.js'
import { addModelOptions, openOracleModel, saveEvidence, type ModelCliOptions } from './model.js'
import { registerBounty } from './bounty.js'

/** Exit code of `pov oracle check` when the posted result is wrong (like `pov audit`'s failed checks). */
export const DISAGREE_EXIT = 3
/** Exit code of `pov oracle check` when the tokens agree but the evidence does not hold up. */
export const EVIDENCE_EXIT = 4

type ModelOpts = CommonCliOptions & ModelCliOptions

// the chain layer's input errors (no InferenceRequests, a bad request number) reach the user as
// one line through withChain's asUserError
const oracleOf = (ctx: ChainContext): InferenceRequestsContract =>
  inferenceRequestsOf(ctx.deployment, ctx.provider)

async function view(ir: InferenceRequestsContract, ref: string): Promise<RequestView> {
  return await readRequest(ir, parseRecordNumber(ref, 'request'))
}

async function tx<T>(what: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send()
  } catch (err) {
    throw new UserError(`${what} failed: ${describeChainError(err)}`)
  }
}

/** Re-runs request `v` with the opened model; the run and its comparison with the posted result. */
async function rerun(
  o: ModelOpts,
  ctx: ChainContext,
  ir: InferenceRequestsContract,
  v: RequestView
) {
  if (v.prompt == null)
    throw new UserError(`request #${v.id} has only a prompt hash (${v.promptUri}): nothing to run`)
  const { runOracleRequest, compareResults } = await import('../../router/oracle.js')
  const model = await openOracleModel(o, ctx)
  try {
    if (model.modelId.toLowerCase() !== v.params.modelId.toLowerCase())
      throw new UserError(
        `bundle ${o.bundle} is model ${model.modelId}, request #${v.id} asks ${v.params.modelId}`
      )
    const run = await runOracleRequest(model, { prompt: v.prompt, maxTokens: v.params.maxTokens })
    const verdict =
      v.result != null ? compareResults(v.result, run.result, Number(await ir.tieMargin())) : null
    return { run, verdict }
  } finally {
    await model.close()
  }
}

export function register(program: Command): void {
  const oracle = program
    .command('oracle')
    .description(
      'on-chain inference requests: request, serve (fulfil and check), check, challenge, finalize'
    )

  registerBounty(oracle)

  addCommonOptions(
    oracle
      .command('request')
      .argument('<prompt>', 'prompt text (UTF-8, in calldata)')
      .description('post an inference request with a POV fee (greedy decoding)')
  )
    .requiredOption('--model <id|bundle>', 'approved model id (0x… 32 bytes) or a bundle of it')
    .requiredOption('--fee <pov>', 'POV paid to whoever answers')
    .option('--max-tokens <n>', 'tokens to generate at most', '16')
    .option('--deadline <s>', 'seconds from now an answer must be posted by', '3600')
    .option('--callback <address>', 'contract called with (requestId, tokens) on finalisation')
    .option(
      '--selector <sig>',
      'callback function, e.g. "onInferenceResult(uint256,uint32[])" or 0x…',
      'onInferenceResult(uint256,uint32[])'
    )
    .option('--callback-gas <n>', 'gas limit of the callback', '200000')
    .action(
      async (
        prompt: string,
        o: CommonCliOptions & {
          model: string
          fee: string
          maxTokens: string
          deadline: string
          callback?: string
          selector: string
          callbackGas: string
        }
      ) => {
        const fee = parsePov(o.fee, '--fee')
        const maxTokens = Number(o.maxTokens)
        const seconds = Number(o.deadline)
        const gas = Number(o.callbackGas)
        if (!Number.isInteger(maxTokens) || maxTokens < 1)
          throw new UserError(`invalid --max-tokens "${o.maxTokens}"`)
        if (!Number.isInteger(seconds) || seconds < 1)
          throw new UserError(`invalid --deadline "${o.deadline}"`)
        if (!Number.isInteger(gas) || gas < 0)
          throw new UserError(`invalid --callback-gas "${o.callbackGas}"`)
        const selector = isHexString(o.selector, 4) ? o.selector : keccakId(o.selector).slice(0, 10)
        const modelId = resolveModelId(o.model)
        await withChain(o, async (ctx) => {
          const ir = oracleOf(ctx)
          const signer = await loadSigner(o, ctx)
          const now = (await ctx.provider.getBlock('latest'))!.timestamp
          const posted = await tx(
            'request',
            async () =>
              await postRequest(ctx.contracts, ir, signer, {
                modelId,
                prompt,
                maxTokens,
                fee,
                deadline: now + seconds,
                ...(o.callback != null
                  ? {
                      callback: parseAddress(o.callback, '--callback'),
                      selector,
                      callbackGasLimit: gas
                    }
                  : {})
              })
          )
          print(
            o,
            { requestId: posted.id, tx: posted.tx, params: posted.params },
            `request #${posted.id} posted (tx ${posted.tx}): ${maxTokens} tokens at most, fee ${formatPov(fee)}, answer by ${formatChainTime(now + seconds)}; bond ${formatPov(posted.params.bond)}, challenge window ${posted.params.challengeWindow} s`
          )
        })
      }
    )

  addModelOptions(
    addCommonOptions(
      oracle
        .command('check')
        .argument('<request>', 'request number (`pov audit` lists them)')
        .description(
          're-run a posted result from its request and say agree / disagree, and check its evidence (commitment, node signatures against the registry)'
        )
    )
  )
    .option('--evidence <file|uri>', 'the posted evidence file, when not at its posted URI')
    .action(async (ref: string, o: ModelOpts & { evidence?: string }) => {
      await withChain(o, async (ctx) => {
        const ir = oracleOf(ctx)
        const v = await view(ir, ref)
        if (v.result == null)
          throw new UserError(`request #${v.id} is ${v.status}: no result posted yet`)
        const { run, verdict } = await rerun(o, ctx, ir, v)
        const posted = v.result
        const { judgeEvidence, describeEvidence, evidenceJson } = await import('./evidence.js')
        const { firstDifferingCall } = await import('../../router/oracle-evidence.js')
        const evidence = await judgeEvidence(ctx, v.params.modelId, posted, o.evidence)
        const call =
          !verdict!.agree && evidence.ok
            ? firstDifferingCall(evidence.evidence.calls, run.record.calls)
            : null
        const evidenceBad = !evidence.ok || evidence.check.problems.length > 0
        const text = [
          verdict!.agree
            ? `request #${v.id}: AGREE — the posted result of ${posted.by} is [${posted.tokens.join(',')}], this run gives the same (${JSON.stringify(run.text)})`
            : `request #${v.id}: DISAGREE at token ${verdict!.position}` +
              (verdict!.nearTie
                ? ' — a NEAR-TIE (both margins below the tolerance): both results are honest, a challenge is refused'
                : ''),
          ...(verdict!.agree
            ? []
            : [
                `  posted by ${posted.by}: [${posted.tokens.join(',')}] margins [${posted.margins.join(',')}] µlogit`,
                `  this run:  [${run.result.tokens.join(',')}] margins [${run.result.margins.join(',')}] µlogit (${JSON.stringify(run.text)})`
              ]),
          ...describeEvidence(evidence),
          ...(call != null
            ? [`  first differing expert call: ${call.text}`]
            : !verdict!.agree && evidence.ok
              ? ['  the expert calls agree: the difference is in the dense part']
              : []),
          `  this run: ${run.record.calls.length} expert calls (${run.record.experts}), evidence keccak256 ${run.result.evidenceHash}`
        ].join('\n')
        print(
          o,
          {
            requestId: v.id,
            status: v.status,
            verdict,
            posted,
            mine: run.result,
            evidence: evidenceJson(evidence),
            firstDifferingCall: call,
            record: { ...run.record, calls: run.record.calls.length }
          },
          text
        )
        if (!verdict!.agree && !verdict!.nearTie) process.exitCode = DISAGREE_EXIT
        else if (evidenceBad) process.exitCode = EVIDENCE_EXIT
      })
    })

  addModelOptions(
    addCommonOptions(
      oracle
        .command('challenge')
        .argument('<request>', 'request number')
        .description('re-run a posted result and, when it is wrong, post this run with a bond')
    )
  ).action(async (ref: string, o: ModelOpts) => {
    await withChain(o, async (ctx) => {
      const ir = oracleOf(ctx)
      const v = await view(ir, ref)
      if (v.status !== 'Fulfilled' || v.result == null)
        throw new UserError(
          `request #${v.id} is ${v.status}: only a posted result in its window can be challenged`
        )
      const signer = await loadSigner(o, ctx)
      const { run, verdict } = await rerun(o, ctx, ir, v)
      if (verdict!.agree)
        throw new UserError(
          `request #${v.id}: this run agrees with the posted result — nothing to challenge`
        )
      if (verdict!.nearTie)
        throw new UserError(
          `request #${v.id}: differs at token ${verdict!.position}, a near-tie (margins ${verdict!.postedMargin} and ${verdict!.myMargin} µlogit) — the contract refuses such a challenge`
        )
      const uri = await saveEvidence(o.dataDir, ctx.chainId, v, run)
      const hash = await tx(
        'challenge',
        async () => await challengeRequest(ctx.contracts, ir, signer, v, run.result, uri)
      )
      print(
        o,
        {
          requestId: v.id,
          tx: hash,
          position: verdict!.position,
          mine: run.result,
          evidenceUri: uri
        },
        `request #${v.id} challenged (tx ${hash}): first difference at token ${verdict!.position}, bond ${formatPov(v.params.bond)}; governance decides (\`pov gov propose resolve-dispute ${v.id} ChallengerRight\`)\n  evidence ${uri}`
      )
    })
  })

  addCommonOptions(
    oracle
      .command('finalize')
      .argument('<request>', 'request number')
      .description(
        'pay the answer (fee, and the bond back) and run the callback, once the window is over'
      )
  ).action(async (ref: string, o: CommonCliOptions) => {
    await withChain(o, async (ctx) => {
      const ir = oracleOf(ctx)
      const v = await view(ir, ref)
      const signer = await loadSigner(o, ctx)
      const r = await tx('finalize', async () => await finalizeRequest(ir, signer, v))
      const paidTo = v.dispute?.outcome === 'ChallengerRight' ? v.dispute.by : v.result?.by
      print(
        o,
        { requestId: v.id, tx: r.tx, paidTo, callbackOk: r.callbackOk },
        `request #${v.id} finalised (tx ${r.tx}): paid ${paidTo}; callback ${r.callbackOk == null ? 'none' : r.callbackOk ? 'ran' : 'FAILED (the fee and result stay final)'}`
      )
    })
  })

  addModelOptions(
    addCommonOptions(
      oracle
        .command('serve')
        .description(
          'answer the requests for this model, check and challenge others’ answers, finalise'
        )
    )
  )
    .option(
      '--max-spend <pov>',
      'POV out at once: bonds not returned + expert payments no fee has paid back (+ the next run’s estimate)',
      '1000'
    )
    .option('--max-gas <eth>', 'ETH this run of serve may spend on gas in all', '1')
    .option('--min-fee <pov>', 'leave requests paying less to others', '0')
    .option('--no-challenge', 'answer only: do not check others’ results')
    .option('--interval <s>', 'seconds between passes', '2')
    .option('--once', 'one pass, then exit')
    .option('--until-idle <passes>', 'exit after this many passes that did nothing')
    .action(
      async (
        o: ModelOpts & {
          maxSpend: string
          maxGas: string
          minFee: string
          challenge: boolean
          interval: string
          once?: boolean
          untilIdle?: string
        }
      ) => {
        const maxSpend = parsePov(o.maxSpend, '--max-spend')
        const maxGas = parsePov(o.maxGas, '--max-gas') // ETH has 18 decimals too
        const minFee = parsePov(o.minFee, '--min-fee')
        const interval = Number(o.interval)
        if (!(interval > 0)) throw new UserError(`invalid --interval "${o.interval}"`)
        const idleLimit = o.untilIdle != null ? Number(o.untilIdle) : null
        await withChain(o, async (ctx) => {
          const ir = oracleOf(ctx)
          const signer = await loadSigner(o, ctx)
          const [{ OracleWorker }, { runOracleRequest }] = await Promise.all([
            import('../../router/oracle-worker.js'),
            import('../../router/oracle.js')
          ])
          const model = await openOracleModel(o, ctx)
          const log = (l: string): void => {
            process.stderr.write(`${l}\n`)
          }
          const ac = new AbortController()
          const stop = (): void => ac.abort()
          process.once('SIGINT', stop)
          process.once('SIGTERM', stop)
          try {
            log(
              `pov oracle serve: ${signer.address}, model ${model.modelId} (experts ${model.describe}), POV out ≤ ${formatPov(maxSpend)}, gas ≤ ${formatUnits(maxGas, 18)} ETH`
            )
            const worker = new OracleWorker({
              contracts: ctx.contracts,
              ir,
              signer,
              modelId: model.modelId,
              run: async (v) =>
                await runOracleRequest(
                  model,
                  { prompt: v.prompt!, maxTokens: v.params.maxTokens },
                  ac.signal
                ),
              saveEvidence: async (v, run) => await saveEvidence(o.dataDir, ctx.chainId, v, run),
              maxSpend,
              maxGas,
              // every token of the prompt and of the answer through every layer's top-k experts,
              // at the dearest selected node's price
              estimateCost: (v) =>
                model.maxPrice == null || v.prompt == null
                  ? 0n
                  : BigInt(
                      (model.tokenizer.encode(v.prompt).length + v.params.maxTokens) *
                        model.numLayers *
                        model.topK
                    ) * model.maxPrice,
              minFee,
              challenge: o.challenge,
              fromBlock: ctx.deployment.startBlock,
              log: o.json === true ? (l) => process.stdout.write(toJson({ log: l }) + '\n') : log
            })
            let idle = 0
            while (!ac.signal.aborted) {
              const done = await worker.tick()
              if (o.once === true) break
              idle = done.length === 0 ? idle + 1 : 0
              if (idleLimit != null && idle >= idleLimit) break
              await new Promise((r) => setTimeout(r, interval * 1000))
            }
          } finally {
            process.off('SIGINT', stop)
            process.off('SIGTERM', stop)
            await model.close()
          }
        })
      }
    )
}
