// `pov gov`: governance from the command line — delegate votes, propose a named action (approve or
// revoke a model, set a parameter, slash), vote, queue, execute, list and inspect proposals.
// On a dev chain `--advance` mines the blocks and skips the time a step waits for.
import type { Command } from 'commander'
import {
  addChainOptions,
  addCommonOptions,
  addJsonOption,
  type CommonCliOptions,
  parseRecordNumber
} from '../options.js'
import {
  formatChainTime,
  formatPov,
  loadSigner,
  parsePov,
  sendTx,
  withChain,
  withSigner
} from '../chain.js'
import type { ChainContext } from '../chain.js'
import { print } from '../output.js'
import { UserError } from '../errors.js'
import { readBundleModel, isModelId, resolveModelId } from '../model-ref.js'
import {
  GOV_PARAMS,
  type GovContracts,
  approveModelAction,
  formatParamValue,
  readParams,
  revokeModelAction,
  setParamAction,
  slashAction,
  type BuiltProposal
} from '../../chain/gov-actions.js'
import {
  SUPPORT_VALUES,
  listProposals,
  pickProposal,
  proposalStatus,
  ProposalNotFoundError,
  type ProposalStatus,
  type Support
} from '../../chain/proposals.js'
import { devClock, requireDevChain } from '../../chain/devchain.js'
import { faultReportsOf, rejectFaultProposal, upholdFaultProposal } from '../../chain/faults.js'
import { connectInferenceRequests, type FaultReportsContract } from '../../chain/contracts.js'

type Opts = CommonCliOptions
type ProposeOpts = Opts & { description?: string }
type StepOpts = Opts & { advance?: boolean }

export function register(program: Command): void {
  const gov = program
    .command('gov')
    .description('governance: propose, vote, queue, execute; list proposals and parameters')

  addCommonOptions(
    gov
      .command('delegate')
      .argument('[address]', 'who votes with your POV (default: yourself)')
      .description('give your POV its voting power (needed once, before the proposals you vote on)')
  ).action(async (address: string | undefined, o: Opts) => {
    await withChain(o, async (ctx) => {
      const wallet = await loadSigner(o, ctx)
      const to = address ?? wallet.address
      const r = await sendTx('delegate', () => withSigner(ctx.contracts.token, wallet).delegate(to))
      const votes = await ctx.contracts.token.getVotes(to)
      print(
        o,
        { delegate: to, votes, tx: r.hash },
        `votes of ${wallet.address} delegated to ${to === wallet.address ? 'itself' : to}; ${to} now has ${formatPov(votes)} of votes (tx ${r.hash})`
      )
    })
  })

  addJsonOption(
    addChainOptions(
      gov.command('params').description('every parameter governance sets, with its current value')
    )
  ).action(async (o: Opts) => {
    await withChain(o, async (ctx) => {
      const rows = await readParams(govContracts(ctx))
      print(
        o,
        rows.map(({ param, value }) => ({
          name: param.name,
          contract: param.contract,
          value,
          description: param.description
        })),
        rows
          .map(
            ({ param, value }) =>
              `${param.name.padEnd(20)} ${formatParamValue(param, value).padEnd(24)} ${param.description}`
          )
          .join('\n')
      )
    })
  })

  registerPropose(gov)

  addCommonOptions(
    gov
      .command('vote')
      .argument('<proposal>', 'number from `pov gov list`, proposal id, or latest')
      .argument('<support>', 'for, against or abstain')
      .description('vote on an active proposal with your delegated POV')
  )
    .option('--reason <text>', 'recorded on-chain with the vote')
    .option('--advance', 'dev chain only: mine blocks until voting opens')
    .action(async (ref: string, supportIn: string, o: StepOpts & { reason?: string }) => {
      const support = supportIn.toLowerCase() as Support
      if (!(support in SUPPORT_VALUES))
        throw new UserError(`invalid vote "${supportIn}": expected for, against or abstain`)
      await withChain(o, async (ctx) => {
        const wallet = await loadSigner(o, ctx)
        let p = await findProposal(ctx, ref)
        if (p.state === 'Pending') {
          const wait = Number(p.voteStart) - p.currentBlock + 1
          if (o.advance !== true)
            throw new UserError(
              `voting on proposal #${p.number} opens after block ${p.voteStart} (now ${p.currentBlock}): wait ${wait} block(s), or on a dev chain add --advance`
            )
          await devClock(ctx.provider, await requireDevChain(ctx.provider, '--advance')).mineBlocks(
            wait
          )
          p = await findProposal(ctx, ref)
        }
        if (p.state !== 'Active')
          throw new UserError(`proposal #${p.number} is ${p.state}: votes are cast while Active`)
        const weight = await ctx.contracts.governor.getVotes(wallet.address, p.voteStart)
        if (weight === 0n)
          throw new UserError(
            `${wallet.address} had no votes at block ${p.voteStart}, this proposal's snapshot — votes count only if delegated before a proposal is made: run \`pov gov delegate\`, then vote on the next one`
          )
        const r = await sendTx('vote', () =>
          withSigner(ctx.contracts.governor, wallet).castVoteWithReason(
            p.id,
            SUPPORT_VALUES[support],
            o.reason ?? ''
          )
        )
        const after = await findProposal(ctx, ref)
        print(
          o,
          { proposal: after.number, id: after.id, support, weight, votes: after.votes, tx: r.hash },
          `voted ${support} on #${after.number} with ${formatPov(weight)} — ${tally(after)}; voting ends after block ${after.voteEnd} (tx ${r.hash})`
        )
      })
    })

  addCommonOptions(
    gov
      .command('queue')
      .argument('<proposal>', 'number from `pov gov list`, proposal id, or latest')
      .description('queue a passed proposal in the timelock (anyone may)')
  )
    .option('--advance', 'dev chain only: mine blocks until voting ends')
    .action(async (ref: string, o: StepOpts) => {
      await withChain(o, async (ctx) => {
        const wallet = await loadSigner(o, ctx)
        let p = await findProposal(ctx, ref)
        if (p.state === 'Pending' || p.state === 'Active') {
          const wait = Number(p.voteEnd) - p.currentBlock + 1
          if (o.advance !== true)
            throw new UserError(
              `voting on proposal #${p.number} ends after block ${p.voteEnd} (now ${p.currentBlock}): wait ${wait} block(s), or on a dev chain add --advance`
            )
          await devClock(ctx.provider, await requireDevChain(ctx.provider, '--advance')).mineBlocks(
            wait
          )
          p = await findProposal(ctx, ref)
        }
        if (p.state === 'Defeated')
          throw new UserError(
            `proposal #${p.number} was defeated (${tally(p)}): it needs more For than Against votes and For + Abstain ≥ quorum`
          )
        if (p.state !== 'Succeeded')
          throw new UserError(
            `proposal #${p.number} is ${p.state}: only a Succeeded proposal can be queued`
          )
        const r = await sendTx('queue', () =>
          withSigner(ctx.contracts.governor, wallet).queue(
            p.targets,
            p.values,
            p.calldatas,
            p.descriptionHash
          )
        )
        const after = await findProposal(ctx, ref)
        print(
          o,
          { proposal: after.number, id: after.id, eta: after.eta, tx: r.hash },
          `queued #${after.number}: executable after ${after.eta != null ? formatChainTime(after.eta) : '?'} (tx ${r.hash})`
        )
      })
    })

  addCommonOptions(
    gov
      .command('execute')
      .argument('<proposal>', 'number from `pov gov list`, proposal id, or latest')
      .description("execute a queued proposal once the timelock's delay is over (anyone may)")
  )
    .option('--advance', "dev chain only: move the chain's clock past the timelock delay")
    .action(async (ref: string, o: StepOpts) => {
      await withChain(o, async (ctx) => {
        const wallet = await loadSigner(o, ctx)
        const p = await findProposal(ctx, ref)
        if (p.state !== 'Queued')
          throw new UserError(
            `proposal #${p.number} is ${p.state}: only a Queued proposal can be executed${p.state === 'Succeeded' ? ' — run `pov gov queue` first' : ''}`
          )
        const now = BigInt((await ctx.provider.getBlock('latest'))!.timestamp)
        if (p.eta != null && now < p.eta) {
          if (o.advance !== true)
            throw new UserError(
              `proposal #${p.number} can execute after ${formatChainTime(p.eta)} (chain time now ${formatChainTime(now)}): wait, or on a dev chain add --advance`
            )
          await devClock(
            ctx.provider,
            await requireDevChain(ctx.provider, '--advance')
          ).increaseTime(Number(p.eta - now) + 1)
        }
        const r = await sendTx('execute', () =>
          withSigner(ctx.contracts.governor, wallet).execute(
            p.targets,
            p.values,
            p.calldatas,
            p.descriptionHash
          )
        )
        print(
          o,
          { proposal: p.number, id: p.id, calls: p.calls, tx: r.hash },
          `executed #${p.number}: ${p.calls.map((c) => c.call).join('; ')} (tx ${r.hash})`
        )
      })
    })

  addJsonOption(
    addChainOptions(gov.command('list').description('every proposal since the deployment'))
  ).action(async (o: Opts) => {
    await withChain(o, async (ctx) => {
      const list = await Promise.all(
        (await listProposals(ctx.provider, ctx.deployment, ctx.contracts)).map(
          async (r) => await proposalStatus(ctx.provider, ctx.deployment, ctx.contracts, r)
        )
      )
      print(
        o,
        list.map(statusJson),
        list.length === 0
          ? 'no proposals yet'
          : list
              .map((p) => `#${String(p.number).padEnd(3)} ${p.state.padEnd(9)} ${p.description}`)
              .join('\n')
      )
    })
  })

  addJsonOption(
    addChainOptions(
      gov
        .command('status')
        .argument('<proposal>', 'number from `pov gov list`, proposal id, or latest')
        .description('one proposal: state, votes against quorum, blocks, eta and decoded calls')
    )
  ).action(async (ref: string, o: Opts) => {
    await withChain(o, async (ctx) => {
      const p = await findProposal(ctx, ref)
      print(
        o,
        statusJson(p),
        [
          `proposal  #${p.number} ${p.id}`,
          `title     ${p.description}`,
          `state     ${p.state}`,
          `proposer  ${p.proposer}`,
          `votes     ${tally(p)}`,
          `voting    blocks ${p.voteStart + 1n}–${p.voteEnd} (now ${p.currentBlock})`,
          `eta       ${p.eta != null ? formatChainTime(p.eta) : '-'}`,
          ...p.calls.map((c, i) => `${i === 0 ? 'calls' : '     '}     ${c.call}`)
        ].join('\n')
      )
    })
  })
}

function registerPropose(gov: Command): void {
  const propose = gov
    .command('propose')
    .description(
      `propose an action: approve-model, revoke-model, set (${GOV_PARAMS.length} parameters, see \`pov gov params\`), slash, uphold-fault, reject-fault, resolve-dispute`
    )

  const submit = async (
    o: ProposeOpts,
    build: (ctx: ChainContext) => BuiltProposal | Promise<BuiltProposal>
  ): Promise<void> => {
    await withChain(o, async (ctx) => {
      // input errors (GovInputError, FaultInputError, …) become one line in withChain
      const built = await build(ctx)
      const wallet = await loadSigner(o, ctx)
      const description = o.description ?? built.description
      const g = ctx.contracts.governor
      const targets = built.actions.map((a) => a.target)
      const values = built.actions.map((a) => a.value ?? 0n)
      const calldatas = built.actions.map((a) => a.data)
      // the Governor counts the votes of the block before the proposal's: today's, once mined
      const [threshold, votes] = await Promise.all([
        g.proposalThreshold(),
        ctx.contracts.token.getVotes(wallet.address)
      ])
      if (votes < threshold)
        throw new UserError(
          `proposing needs ${formatPov(threshold)} of votes and ${wallet.address} has ${formatPov(votes)} — get POV and \`pov gov delegate\` to yourself`
        )
      const r = await sendTx('propose', () =>
        withSigner(g, wallet).propose(targets, values, calldatas, description)
      )
      const p = await findProposal(ctx, 'latest')
      print(
        o,
        statusJson(p),
        `proposal #${p.number} (${p.id}): ${description}\n  voting opens after block ${p.voteStart} and ends after block ${p.voteEnd} (now ${p.currentBlock}); next: \`pov gov vote ${p.number} for\` (tx ${r.hash})`
      )
    })
  }

  addCommonOptions(
    propose
      .command('approve-model')
      .description('approve a model id so operators may register it and clients use it')
  )
    .requiredOption('--model <id|bundle>', 'a bundle directory (reads its manifest) or a model id')
    .option('--name <name>', "model name (default: the bundle directory's name)")
    .option('--uri <uri>', "where the bundle is published (default: the bundle's file:// URL)")
    .option('--layers <n>', 'layers (with a model id)')
    .option('--experts <n>', 'experts per layer (with a model id)')
    .option('--shard-count <n>', 'shards (with a model id)')
    .option('--description <text>', 'proposal title (default: "Approve model NAME (ID)")')
    .action(
      async (
        o: ProposeOpts & {
          model: string
          name?: string
          uri?: string
          layers?: string
          experts?: string
          shardCount?: string
        }
      ) => {
        let m
        if (isModelId(o.model)) {
          const need = ['name', 'uri', 'layers', 'experts', 'shardCount'] as const
          const missing = need.filter((k) => o[k] == null)
          if (missing.length > 0)
            throw new UserError(
              `with a model id, also give ${missing.map((k) => `--${k === 'shardCount' ? 'shard-count' : k}`).join(', ')} (or pass the bundle directory as --model)`
            )
          m = {
            modelId: o.model,
            name: o.name!,
            uri: o.uri!,
            layers: positive(o.layers!, '--layers'),
            experts: positive(o.experts!, '--experts'),
            shardCount: positive(o.shardCount!, '--shard-count')
          }
        } else {
          const b = readBundleModel(o.model)
          m = { ...b, name: o.name ?? b.name, uri: o.uri ?? b.uri }
        }
        await submit(o, (ctx) => approveModelAction(ctx.contracts, m))
      }
    )

  addCommonOptions(
    propose
      .command('revoke-model')
      .argument('<model>', 'model id or bundle directory')
      .description('revoke a model: registered nodes stop being selected for it')
  )
    .option('--description <text>', 'proposal title')
    .action(async (model: string, o: ProposeOpts) => {
      const id = resolveModelId(model, 'model')
      await submit(o, (ctx) => revokeModelAction(ctx.contracts, id))
    })

  addCommonOptions(
    propose
      .command('set')
      .argument('<param>', `one of: ${GOV_PARAMS.map((p) => p.name).join(', ')}`)
      .argument('<value>', 'POV amounts in POV; durations in seconds or with s/m/h/d/w')
      .description('change a protocol parameter (`pov gov params` lists them with their values)')
  )
    .option('--description <text>', 'proposal title')
    .action(async (param: string, value: string, o: ProposeOpts) => {
      await submit(o, (ctx) => setParamAction(govContracts(ctx), param, value))
    })

  addCommonOptions(
    propose
      .command('slash')
      .argument('<operator>', "the operator's address")
      .argument('<amount>', 'POV taken from its stake (sent to the treasury)')
      .description("slash part of an operator's stake (possible while it unbonds, too)")
  )
    .requiredOption('--reason <text>', 'why, recorded on-chain')
    .option('--evidence <hash>', 'hash of the evidence (e.g. a fault file), recorded in the reason')
    .option('--description <text>', 'proposal title')
    .action(
      async (
        operator: string,
        amount: string,
        o: ProposeOpts & { reason: string; evidence?: string }
      ) => {
        await submit(o, (ctx) =>
          slashAction(ctx.contracts, {
            operator,
            amount,
            reason: o.reason,
            evidence: o.evidence,
            faultReports: ctx.deployment.faultReports
          })
        )
      }
    )

  // fault reports (docs/auditor.md): uphold = slash + pay the reporter; reject = forfeit its bond
  addCommonOptions(
    propose
      .command('uphold-fault')
      .argument('<report>', 'fault report number (`pov audit` lists them)')
      .argument('<amount>', 'POV slashed from the accused operator (the reporter gets its share)')
      .description(
        'uphold a fault report: slash the operator and pay the reporter, in one proposal'
      )
  )
    .option('--description <text>', 'proposal title')
    .action(async (report: string, amount: string, o: ProposeOpts) => {
      const value = parsePov(amount, 'amount')
      await submit(
        o,
        async (ctx) =>
          await upholdFaultProposal(
            ctx.contracts,
            faultReportsOrThrow(ctx),
            parseRecordNumber(report, 'fault report'),
            value
          )
      )
    })

  addCommonOptions(
    propose
      .command('reject-fault')
      .argument('<report>', 'fault report number')
      .description("reject a fault report: the reporter's bond goes to the accused operator")
  )
    .option('--description <text>', 'proposal title')
    .action(async (report: string, o: ProposeOpts) => {
      await submit(
        o,
        async (ctx) =>
          await rejectFaultProposal(
            faultReportsOrThrow(ctx),
            parseRecordNumber(report, 'fault report')
          )
      )
    })

  // inference request disputes (docs/contracts.md "Inference requests"): decided after re-running
  // the request (`pov oracle check`), with the near-tie rule
  addCommonOptions(
    propose
      .command('resolve-dispute')
      .argument('<request>', 'inference request number (`pov audit` lists them)')
      .argument(
        '<outcome>',
        'FulfillerRight | ChallengerRight | Tie (near-tie: both honest) | BothWrong'
      )
      .description('decide a disputed inference request: who gets both bonds and whose result')
  )
    .option('--description <text>', 'proposal title')
    .action(async (request: string, outcome: string, o: ProposeOpts) => {
      const { inferenceRequestsOf, resolveDisputeProposal, OUTCOMES } =
        await import('../../chain/oracle.js')
      if (!(OUTCOMES as readonly string[]).includes(outcome) || outcome === 'None')
        throw new UserError(`invalid outcome "${outcome}": one of ${OUTCOMES.slice(1).join(', ')}`)
      if (!/^\d+$/.test(request.trim()))
        throw new UserError(`invalid request "${request}": expected its number, e.g. 0`)
      await submit(
        o,
        async (ctx) =>
          await resolveDisputeProposal(
            inferenceRequestsOf(ctx.deployment, ctx.provider),
            Number(request),
            outcome as Exclude<(typeof OUTCOMES)[number], 'None'>
          )
      )
    })
}

/** Every contract a parameter may live in, those the deployment has. */
function govContracts(ctx: ChainContext): GovContracts {
  return {
    ...ctx.contracts,
    ...(ctx.deployment.faultReports != null
      ? { faultReports: faultReportsOf(ctx.deployment, ctx.provider) }
      : {}),
    ...(ctx.deployment.inferenceRequests != null
      ? {
          inferenceRequests: connectInferenceRequests(
            ctx.deployment.inferenceRequests,
            ctx.provider
          )
        }
      : {})
  }
}

const faultReportsOrThrow = (ctx: ChainContext): FaultReportsContract =>
  faultReportsOf(ctx.deployment, ctx.provider)

async function findProposal(ctx: ChainContext, ref: string): Promise<ProposalStatus> {
  try {
    const list = await listProposals(ctx.provider, ctx.deployment, ctx.contracts)
    return await proposalStatus(
      ctx.provider,
      ctx.deployment,
      ctx.contracts,
      pickProposal(list, ref)
    )
  } catch (err) {
    if (err instanceof ProposalNotFoundError) throw new UserError(err.message)
    throw err
  }
}

function tally(p: ProposalStatus): string {
  return `for ${formatPov(p.votes.for)}, against ${formatPov(p.votes.against)}, abstain ${formatPov(p.votes.abstain)}; quorum ${formatPov(p.quorum)}`
}

function statusJson(p: ProposalStatus): Record<string, unknown> {
  return {
    number: p.number,
    id: p.id,
    state: p.state,
    description: p.description,
    proposer: p.proposer,
    votes: p.votes,
    quorum: p.quorum,
    voteStart: p.voteStart,
    voteEnd: p.voteEnd,
    currentBlock: p.currentBlock,
    eta: p.eta,
    etaIso: p.eta != null ? formatChainTime(p.eta) : null,
    calls: p.calls
  }
}

function positive(v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`invalid ${flag} "${v}": expected a whole number ≥ 1`)
  return n
}
