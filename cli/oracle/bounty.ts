// `pov oracle bounty deploy|fund|claim|show`: the example consumer contracts/examples/InferenceBounty.sol
// from the command line (docs/oracle.md): a reward paid when the model judges a claimed answer
// right, through an on-chain inference request.
import type { Command } from 'commander'
import { ContractFactory } from 'ethers'
import {
  addChainOptions,
  addCommonOptions,
  addJsonOption,
  type CommonCliOptions
} from '../options.js'
import { formatPov, loadSigner, parseAddress, parsePov, sendTx, withChain } from '../chain.js'
import { print } from '../output.js'
import { UserError } from '../errors.js'
import { resolveModelId } from '../model-ref.js'
import { loadArtifact } from '../../chain/artifacts.js'
import { connectInferenceBounty, type InferenceBountyContract } from '../../chain/contracts.js'
import { inferenceRequestsOf } from '../../chain/oracle.js'
import { loadTokenizer } from '../../model/tokenizer.js'

const STATES = ['Open', 'Judging', 'Paid'] as const

/** The first token id of `word` in `bundle`'s tokenizer (what the model's answer is compared with). */
async function acceptToken(bundle: string, word: string): Promise<number> {
  const ids = (await loadTokenizer(bundle)).encode(word, { addSpecialTokens: false })
  if (ids.length === 0) throw new UserError(`--accept "${word}" is no token of ${bundle}`)
  return ids[0]
}

export function registerBounty(oracle: Command): void {
  const bounty = oracle
    .command('bounty')
    .description('the example consumer: a reward paid when the model judges an answer right')

  addCommonOptions(
    bounty
      .command('deploy')
      .argument('<question>', 'the question answers are judged against')
      .description('deploy an InferenceBounty for an approved model')
  )
    .requiredOption('--model <id|bundle>', 'approved model id or a bundle of it')
    .requiredOption('--accept <word>', 'the answer the model must give first, e.g. " yes"')
    .option(
      '--bundle <dir>',
      'bundle whose tokenizer gives the token of --accept (default: --model)'
    )
    .option('--reward <pov>', 'POV put in the bounty now', '0')
    .action(
      async (
        question: string,
        o: CommonCliOptions & { model: string; accept: string; bundle?: string; reward: string }
      ) => {
        const modelId = resolveModelId(o.model)
        const tokenizerDir = o.bundle ?? o.model
        if (tokenizerDir === modelId)
          throw new UserError('--accept needs the tokenizer: pass --bundle DIR')
        const token = await acceptToken(tokenizerDir, o.accept)
        const reward = parsePov(o.reward, '--reward')
        await withChain(o, async (ctx) => {
          const ir = inferenceRequestsOf(ctx.deployment, ctx.provider)
          const signer = await loadSigner(o, ctx)
          const { abi, bytecode } = loadArtifact('InferenceBounty')
          let address: string
          try {
            const c = await new ContractFactory(abi, bytecode, signer).deploy(
              ir.target,
              modelId,
              question,
              token
            )
            await c.waitForDeployment()
            address = await c.getAddress()
          } catch (err) {
            throw new UserError(
              `deploying the bounty failed: ${(err as Error).message.split('\n')[0]}`
            )
          }
          const b = connectInferenceBounty(address, signer)
          if (reward > 0n) await fund(ctx.contracts.token.connect(signer) as never, b, reward)
          print(
            o,
            { address, acceptToken: token, reward },
            `bounty ${address} deployed — "${question}", pays ${formatPov(reward)} when the model's first token is ${token} (${JSON.stringify(o.accept)})`
          )
        })
      }
    )

  addCommonOptions(
    bounty
      .command('fund')
      .argument('<bounty>', 'bounty address')
      .argument('<amount>', 'POV added to the reward')
      .description('add POV to a bounty’s reward')
  ).action(async (address: string, amount: string, o: CommonCliOptions) => {
    await withChain(o, async (ctx) => {
      const signer = await loadSigner(o, ctx)
      const b = connectInferenceBounty(parseAddress(address, 'bounty'), signer)
      await fund(ctx.contracts.token.connect(signer) as never, b, parsePov(amount, 'amount'))
      print(o, { reward: await b.reward() }, `reward now ${formatPov(await b.reward())}`)
    })
  })

  addCommonOptions(
    bounty
      .command('claim')
      .argument('<bounty>', 'bounty address')
      .argument('<answer>', 'your answer')
      .description('claim a bounty with an answer: posts the inference request (you pay the fee)')
  )
    .requiredOption('--fee <pov>', 'POV paid to whoever answers the request')
    .option('--deadline <s>', 'seconds from now the model must answer by', '3600')
    .action(
      async (
        address: string,
        answer: string,
        o: CommonCliOptions & { fee: string; deadline: string }
      ) => {
        const fee = parsePov(o.fee, '--fee')
        const seconds = Number(o.deadline)
        if (!Number.isInteger(seconds) || seconds < 1)
          throw new UserError(`invalid --deadline "${o.deadline}"`)
        await withChain(o, async (ctx) => {
          const signer = await loadSigner(o, ctx)
          const b = connectInferenceBounty(parseAddress(address, 'bounty'), signer)
          const token = ctx.contracts.token.connect(signer) as typeof ctx.contracts.token
          await sendTx('approve', async () => await token.approve(b.target as string, fee))
          const now = (await ctx.provider.getBlock('latest'))!.timestamp
          await sendTx('claim', async () => await b.claim(answer, fee, now + seconds))
          const id = Number(await b.judging())
          print(
            o,
            { requestId: id },
            `claimed with "${answer}": inference request #${id}, the bounty pays once it is finalised`
          )
        })
      }
    )

  addJsonOption(
    addChainOptions(
      bounty
        .command('show')
        .argument('<bounty>', 'bounty address')
        .description('a bounty’s question, reward and state')
    )
  ).action(async (address: string, o: CommonCliOptions) => {
    await withChain(o, async (ctx) => {
      const b = connectInferenceBounty(parseAddress(address, 'bounty'), ctx.provider)
      const [question, reward, state, claimant, judging, accept] = await Promise.all([
        b.question(),
        b.reward(),
        b.state(),
        b.claimant(),
        b.judging(),
        b.acceptToken()
      ])
      const s = STATES[Number(state)]
      print(
        o,
        {
          address,
          question,
          reward,
          state: s,
          claimant,
          judging: Number(judging),
          acceptToken: Number(accept)
        },
        `bounty ${address}: "${question}" — ${s}, reward ${formatPov(reward)}, accepts token ${accept}` +
          (s === 'Open'
            ? ''
            : `; ${s === 'Paid' ? 'paid to' : 'claimed by'} ${claimant} (request #${judging})`)
      )
    })
  })
}

async function fund(
  token: { approve: (s: string, v: bigint) => Promise<{ wait: () => Promise<unknown> }> },
  b: InferenceBountyContract,
  amount: bigint
): Promise<void> {
  await sendTx('approve', async () => (await token.approve(b.target as string, amount)) as never)
  await sendTx('fund', async () => await b.fund(amount))
}
