// A governance round as one library call: propose → vote → queue → execute, through the plain
// OpenZeppelin Governor and its timelock. Used by the demo, the e2e tests and `pov gov` tooling.
// On a live chain the waits are real; on a local dev chain `devChainClock` fast-forwards them.
import { id, type Provider, type Signer } from 'ethers'
import type { PovContracts } from './contracts.js'
import { PROPOSAL_STATES } from './proposal-states.js'

export interface ProposalAction {
  target: string
  data: string
  value?: bigint
}

/** How the round waits for blocks and seconds to pass. */
export interface ChainClock {
  mineBlocks(n: number): Promise<void>
  increaseTime(seconds: number): Promise<void>
}

/** Fast-forwards a Hardhat / anvil dev chain through its RPC. */
export function devChainClock(
  provider: Provider & { send(method: string, params: unknown[]): Promise<unknown> }
): ChainClock {
  return {
    async mineBlocks(n) {
      await provider.send('hardhat_mine', ['0x' + n.toString(16)])
    },
    async increaseTime(s) {
      await provider.send('evm_increaseTime', [s])
      await provider.send('evm_mine', [])
    }
  }
}

export interface RoundResult {
  proposalId: bigint
  state: string
  txs: string[]
  gasUsed: bigint
}

/**
 * Runs a full round. `voters` vote For (their delegated POV counts); anyone may queue and
 * execute. Throws with the proposal state if it does not pass.
 */
export async function governanceRound(opts: {
  contracts: PovContracts
  proposer: Signer
  voters: Signer[]
  actions: ProposalAction[]
  description: string
  clock: ChainClock
  log?: (line: string) => void
}): Promise<RoundResult> {
  const { governor } = opts.contracts
  const log = opts.log ?? (() => {})
  const targets = opts.actions.map((a) => a.target)
  const values = opts.actions.map((a) => a.value ?? 0n)
  const calldatas = opts.actions.map((a) => a.data)
  const descHash = id(opts.description)
  const txs: string[] = []
  let gasUsed = 0n
  const send = async (
    label: string,
    p: Promise<{ hash: string; wait(): Promise<{ gasUsed: bigint } | null> }>
  ): Promise<void> => {
    const tx = await p
    const r = await tx.wait()
    txs.push(tx.hash)
    gasUsed += r?.gasUsed ?? 0n
    log(`${label} (${tx.hash.slice(0, 10)}…)`)
  }
  const g = (s: Signer): typeof governor => governor.connect(s) as typeof governor
  const proposalId = (await governor.hashProposal(targets, values, calldatas, descHash)) as bigint
  await send(
    `proposed ${proposalId.toString().slice(0, 12)}…: ${opts.description}`,
    g(opts.proposer).propose(targets, values, calldatas, opts.description)
  )
  await opts.clock.mineBlocks(Number(await governor.votingDelay()) + 1)
  for (const v of opts.voters)
    await send(`voted For as ${await v.getAddress()}`, g(v).castVote(proposalId, 1))
  await opts.clock.mineBlocks(Number(await governor.votingPeriod()) + 1)
  const state = (): Promise<string> =>
    governor.state(proposalId).then((s) => PROPOSAL_STATES[Number(s)] ?? String(s))
  if ((await state()) !== 'Succeeded')
    throw new Error(`proposal ${proposalId} did not pass: state ${await state()}`)
  await send('queued in the timelock', g(opts.proposer).queue(targets, values, calldatas, descHash))
  await opts.clock.increaseTime(Number(await opts.contracts.timelock.getMinDelay()) + 1)
  await send('executed', g(opts.proposer).execute(targets, values, calldatas, descHash))
  return { proposalId, state: await state(), txs, gasUsed }
}
