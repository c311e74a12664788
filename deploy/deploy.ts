/**
 * Deploys and wires the POV contracts, then hands every parameter to the timelock.
 *
 * As a script (writes deployments/<chainId>.json; every parameter is an option, `--help` lists them):
 *   npm run deploy:local                                  # the `npm run chain` node (else 127.0.0.1:8545), account #0, --preset local
 *   POV_DEPLOYER_KEY=0x… npx tsx deploy/deploy.ts --rpc URL [--preset public] [--distribute ADDR=POV …]
 *
 * As a function: `deployAll(signer, opts)` against any ethers signer (tests, the demo).
 * Needs the compiled artifacts (`npx hardhat build`).
 *
 * Two presets (docs/contracts.md, "Deployment presets"): `public` (the default) has governance
 * and withdrawal periods in days, a 10 % quorum and a proposal threshold; `local` has the
 * seconds-and-blocks values of the demo and the tests. Whatever the values, the deployment
 * refuses an unbonding period that does not outlast the governance path (voting delay + voting
 * period + timelock delay), and warns loudly when one address holds a quorum on its own.
 */
import { NonceManager, Wallet, formatEther, getAddress, parseEther, id } from 'ethers'
import type { Signer } from 'ethers'
import { Command, InvalidArgumentError, Option } from 'commander'
import { pathToFileURL } from 'node:url'
import type { ContractName } from '../chain/artifacts.js'
import { connectContracts } from '../chain/contracts.js'
import type { PovContracts } from '../chain/contracts.js'
import { writeDeployment } from '../chain/deployment.js'
import { defaultLocalRpc } from '../chain/local-chain.js'
import { decodeChainError } from '../chain/errors.js'
import type { ModelApprovalArgs } from '../chain/gov-actions.js'
import { createProvider } from '../chain/provider.js'
import {
  defaultDecisionPeriod,
  deployFaultReportsContract,
  type FaultReportsParams
} from './fault-reports.js'
import type { ContractAddresses, Deployment, DeploymentParams } from '../chain/deployment.js'
import { deployContract } from './contract.js'
import {
  defaultDisputePeriod,
  deployInferenceRequestsContract,
  type InferenceRequestsParams
} from './inference-requests.js'

export type DeployPreset = 'public' | 'local'

/** The parameters a preset fills in (the options override them one by one). */
export interface PresetValues {
  minStake: bigint
  unbondingPeriod: number
  unlockPeriod: number
  feeBps: number
  votingDelay: number
  votingPeriod: number
  proposalThreshold: bigint
  quorumPercent: number
  timelockDelay: number
  blockTime: number
}

const DAY = 86_400

/**
 * `public`: a proposal takes ≥ 1 + 5 days of voting (at 12 s blocks) + a 2-day timelock = 8 days,
 * so an operator who starts unbonding when it is proposed is still bonded when it executes (14
 * days); payers get their lanes back 2 days after `unlock()`, the time a node has to redeem.
 * `local`: everything in seconds or single blocks, for the demo and the tests.
 */
export const PRESETS: Record<DeployPreset, PresetValues> = {
  public: {
    minStake: parseEther('1000'),
    unbondingPeriod: 14 * DAY,
    unlockPeriod: 2 * DAY,
    feeBps: 100,
    votingDelay: 7_200, // blocks: 1 day at 12 s
    votingPeriod: 36_000, // blocks: 5 days at 12 s
    proposalThreshold: parseEther('1000000'), // 0.1 % of the default supply
    quorumPercent: 10,
    timelockDelay: 2 * DAY,
    blockTime: 12
  },
  local: {
    minStake: parseEther('1000'),
    unbondingPeriod: 3_600,
    unlockPeriod: 3_600,
    feeBps: 100,
    votingDelay: 1,
    votingPeriod: 20,
    proposalThreshold: parseEther('1'),
    quorumPercent: 4,
    timelockDelay: 60,
    blockTime: 1
  }
}

export interface DeployOptions extends Partial<PresetValues> {
  /** Where the unset parameters come from. @default 'public' */
  preset?: DeployPreset
  /** Receives the initial supply (less `distribution`), slashed stake and fees. @default the deployer */
  treasury?: string
  /** @default 1,000,000,000 POV */
  initialSupply?: bigint
  /** Initial holders: each gets `amount` out of the initial supply; the treasury keeps the rest. */
  distribution?: Array<{ to: string; amount: bigint }>
  /**
   * Floor of the registry's unbonding period, fixed for ever (seconds). @default the governance
   * path (votingDelay + votingPeriod) × blockTime + timelockDelay, at least one hour
   */
  minUnbondingPeriod?: number
  /** Models approved before ownership goes to the timelock (handy for demos). @default none */
  models?: ModelApprovalArgs[]
  /** When the treasury is the deployer, delegate its votes to itself so it can vote. @default true */
  selfDelegate?: boolean
  /**
   * Let one address hold a quorum on its own under the `public` preset (refused otherwise, before
   * anything is deployed; the `local` preset only warns). @default false
   */
  allowQuorumHolder?: boolean
  /**
   * FaultReports, deployed and wired into the registry (freezer and treasury) before the registry
   * goes to the timelock; `false` leaves it out. Its decision period defaults to twice the
   * governance path (an uphold proposal must pass before the report's deadline).
   * @default {} (deployed, FAULT_REPORT_DEFAULTS otherwise)
   */
  faultReports?: FaultReportsParams | false
  /**
   * InferenceRequests (on-chain requests answered by the network), owned by the timelock;
   * `false` leaves it out. Its dispute period defaults to twice the governance path, its
   * challenge window to 1 hour (60 s with the local preset).
   * @default {}
   */
  inferenceRequests?: InferenceRequestsParams | false
  log?: (line: string) => void
}

/** Seconds from a proposal to its execution: (voting delay + period) × block time + timelock delay. */
export function governancePathSeconds(
  p: Pick<PresetValues, 'votingDelay' | 'votingPeriod' | 'blockTime' | 'timelockDelay'>
): number {
  return (p.votingDelay + p.votingPeriod) * p.blockTime + p.timelockDelay
}

/** The registry's lower bound on any unbonding period (ExpertRegistry.MIN_UNBONDING_PERIOD). */
export const MIN_UNBONDING_PERIOD = 3_600

/**
 * ExpertRegistry.UNBONDING_MARGIN_BPS (= PovGovernor's): the unbonding period must exceed the
 * governance path by half of it, enforced on-chain in both directions.
 */
export const UNBONDING_MARGIN_BPS = 5_000

/** The shortest unbonding period the registry accepts under a governance path of `path` seconds. */
export function unbondingFloorSeconds(path: number): number {
  return path + Math.floor((path * UNBONDING_MARGIN_BPS) / 10_000)
}

/**
 * The holders that reach the quorum on their own, as loud warnings: such an address passes any
 * proposal alone (slash, mint, parameters) once its votes are delegated.
 */
export function quorumWarnings(
  holdings: Array<{ holder: string; amount: bigint }>,
  supply: bigint,
  quorumPercent: number
): string[] {
  const quorum = (supply * BigInt(quorumPercent)) / 100n
  return holdings
    .filter((h) => h.amount >= quorum && h.amount > 0n)
    .map(
      (h) =>
        `WARNING: ${h.holder} holds ${formatEther(h.amount)} POV, ${(Number((h.amount * 10_000n) / supply) / 100).toFixed(2)} % of the supply, at or above the ${quorumPercent} % quorum: it alone can pass any proposal (slash any operator, mint, change every parameter). Distribute the supply (--distribute) before this network is public.`
    )
}

/** The `public` preset refuses a deployment in which one address holds a quorum on its own. */
export class QuorumHolderError extends Error {
  override name = 'QuorumHolderError'
  constructor(readonly warnings: string[]) {
    super(
      `refused: ${warnings.join(' ')} The public preset does not deploy this; give --distribute ADDR=POV so that no address reaches the quorum, or --allow-quorum-holder to deploy it anyway (a test network).`
    )
  }
}

export interface DeployResult {
  deployment: Deployment
  contracts: PovContracts
  /** Loud warnings about the deployment (an address holding a quorum alone). */
  warnings: string[]
}

async function deploy(
  signer: Signer,
  name: ContractName,
  args: unknown[],
  log: (l: string) => void
): Promise<string> {
  const address = await deployContract(signer, name, args)
  log(`${name.padEnd(15)} ${address}`)
  return address
}

async function send(
  label: string,
  p: Promise<{ wait(): Promise<unknown> }>,
  log: (l: string) => void
) {
  const tx = await p
  await tx.wait()
  log(label)
}

/** Deploys token, approvals, registry, escrow, timelock and governor; wires and hands over. */
export async function deployAll(
  baseSigner: Signer,
  opts: DeployOptions = {}
): Promise<DeployResult> {
  const log = opts.log ?? (() => {})
  // Count nonces locally: providers cache identical eth_getTransactionCount calls for a short
  // while, so back-to-back transactions could otherwise reuse a nonce.
  const signer = new NonceManager(baseSigner)
  const provider = signer.provider
  if (!provider) throw new Error('deployAll: the signer has no provider')
  const deployer = getAddress(await signer.getAddress())
  const { chainId } = await provider.getNetwork()
  const startBlock = await provider.getBlockNumber()
  const preset = PRESETS[opts.preset ?? 'public']
  const v = (k: keyof PresetValues) => opts[k] ?? preset[k]
  const gov = {
    votingDelay: v('votingDelay') as number,
    votingPeriod: v('votingPeriod') as number,
    timelockDelay: v('timelockDelay') as number,
    blockTime: v('blockTime') as number
  }
  const path = governancePathSeconds(gov)
  const unbondingPeriod = v('unbondingPeriod') as number
  const minUnbondingPeriod = opts.minUnbondingPeriod ?? Math.max(MIN_UNBONDING_PERIOD, path)
  const floor = unbondingFloorSeconds(path)
  if (unbondingPeriod < floor)
    throw new Error(
      `unbonding period ${unbondingPeriod} s does not outlast the governance path of ${path} s ((voting delay ${gov.votingDelay} + period ${gov.votingPeriod} blocks) × ${gov.blockTime} s + timelock ${gov.timelockDelay} s) with its ${UNBONDING_MARGIN_BPS / 100} % margin (${floor} s): an operator could unbond and withdraw before a slash executes — raise --unbonding-period or shorten governance`
    )
  if (minUnbondingPeriod > unbondingPeriod)
    throw new Error(
      `minimum unbonding period ${minUnbondingPeriod} s is above the unbonding period ${unbondingPeriod} s`
    )
  const faults =
    opts.faultReports === false
      ? null
      : {
          ...opts.faultReports,
          decisionPeriod: opts.faultReports?.decisionPeriod ?? defaultDecisionPeriod(path)
        }
  if (faults != null && faults.decisionPeriod <= path)
    throw new Error(
      `fault-report decision period ${faults.decisionPeriod} s does not outlast the governance path of ${path} s: a report would expire, and the accused's withdrawal thaw, before the proposal upholding it could execute`
    )
  const disputePeriod =
    opts.inferenceRequests === false
      ? null
      : (opts.inferenceRequests?.disputePeriod ?? defaultDisputePeriod(path))
  if (disputePeriod != null && disputePeriod <= path)
    throw new Error(
      `inference dispute period ${disputePeriod} s does not outlast the governance path of ${path} s: a dispute would expire, bonds and fee returned, before the proposal deciding it could execute`
    )
  const initialSupply = opts.initialSupply ?? parseEther('1000000000')
  const distribution = (opts.distribution ?? []).map((d) => ({
    to: getAddress(d.to),
    amount: d.amount
  }))
  const distributed = distribution.reduce((a, d) => a + d.amount, 0n)
  if (distributed > initialSupply)
    throw new Error(
      `the distribution hands out ${formatEther(distributed)} POV, more than the initial supply of ${formatEther(initialSupply)}`
    )
  const treasury = getAddress(opts.treasury ?? deployer)
  const holdings = new Map<string, bigint>()
  holdings.set(treasury, initialSupply - distributed)
  for (const d of distribution) holdings.set(d.to, (holdings.get(d.to) ?? 0n) + d.amount)
  const warnings = quorumWarnings(
    [...holdings].map(([holder, amount]) => ({ holder, amount })),
    initialSupply,
    v('quorumPercent') as number
  )
  if ((opts.preset ?? 'public') === 'public' && warnings.length > 0 && !opts.allowQuorumHolder)
    throw new QuorumHolderError(warnings)
  const p: DeploymentParams = {
    treasury,
    initialSupply: initialSupply.toString(),
    minStake: (v('minStake') as bigint).toString(),
    unbondingPeriod,
    minUnbondingPeriod,
    unlockPeriod: v('unlockPeriod') as number,
    feeBps: v('feeBps') as number,
    votingDelay: gov.votingDelay,
    votingPeriod: gov.votingPeriod,
    proposalThreshold: (v('proposalThreshold') as bigint).toString(),
    quorumPercent: v('quorumPercent') as number,
    timelockDelay: gov.timelockDelay,
    blockTime: gov.blockTime,
    distribution: distribution.map((d) => ({ to: d.to, amount: d.amount.toString() }))
  }

  // The timelock starts with the deployer as admin only to grant the governor its roles; the
  // admin role is renounced below. Anyone may execute a ready operation (executor = 0x0).
  const timelock = await deploy(
    signer,
    'PovTimelock',
    [p.timelockDelay, [], ['0x0000000000000000000000000000000000000000'], deployer],
    log
  )
  // With a distribution the deployer mints, hands out the allocations, then sends the rest on.
  const minter = distribution.length > 0 ? deployer : p.treasury
  const token = await deploy(signer, 'PovToken', [minter, p.initialSupply, timelock], log)
  // Approvals start owned by the deployer so that opts.models can be approved, then move to the timelock.
  const models = await deploy(signer, 'ModelApprovals', [deployer], log)
  // The governor comes before the registry: the registry reads its path (live) to keep the
  // unbonding period above it; the governor and the timelock are bound back to it below.
  const governor = await deploy(
    signer,
    'PovGovernor',
    [
      token,
      timelock,
      p.votingDelay,
      p.votingPeriod,
      p.proposalThreshold,
      p.quorumPercent,
      p.blockTime
    ],
    log
  )
  // With fault reports the registry starts owned by the deployer, to be wired, then moves to the timelock.
  const registry = await deploy(
    signer,
    'ExpertRegistry',
    [
      token,
      models,
      p.treasury,
      p.minStake,
      p.unbondingPeriod,
      p.minUnbondingPeriod,
      governor,
      faults != null ? deployer : timelock
    ],
    log
  )
  const escrow = await deploy(
    signer,
    'PovEscrow',
    [token, p.treasury, p.feeBps, p.unlockPeriod, timelock],
    log
  )

  const addresses: ContractAddresses = { token, models, registry, escrow, governor, timelock }
  const c = connectContracts(addresses, signer)
  // Both directions of "unbonding outlasts the governance path": the governor refuses a longer
  // voting path, the timelock (asking the governor) a longer delay.
  await send('governor bound to the registry', c.governor.bindRegistry(registry), log)
  await send('timelock delay guarded by the governor', c.timelock.bindGuard(governor), log)

  let faultReports: string | undefined
  if (faults != null) {
    faultReports = await deployFaultReportsContract(
      signer,
      { token, registry, owner: timelock, treasury: p.treasury },
      faults
    )
    log(`${'FaultReports'.padEnd(15)} ${faultReports}`)
    // what wireFaultReportsActions proposes for a deployment made without it
    await send('registry freezer → FaultReports', c.registry.setFreezer(faultReports), log)
    await send('registry treasury → FaultReports', c.registry.setTreasury(faultReports), log)
    await send('ExpertRegistry owner → timelock', c.registry.transferOwnership(timelock), log)
  }

  let inferenceRequests: string | undefined
  if (opts.inferenceRequests !== false) {
    const ir = opts.inferenceRequests ?? {}
    inferenceRequests = await deployInferenceRequestsContract(
      signer,
      { token, models, owner: timelock, treasury: p.treasury },
      {
        ...ir,
        challengeWindow: ir.challengeWindow ?? (opts.preset === 'local' ? 60 : undefined),
        disputePeriod: disputePeriod!
      }
    )
    log(`${'InferenceRequests'.padEnd(15)} ${inferenceRequests}`)
  }

  for (const d of distribution)
    await send(
      `distributed ${formatEther(d.amount)} POV to ${d.to}`,
      c.token.transfer(d.to, d.amount),
      log
    )
  if (minter !== p.treasury && initialSupply > distributed)
    await send(
      `treasury ${p.treasury} gets the remaining ${formatEther(initialSupply - distributed)} POV`,
      c.token.transfer(p.treasury, initialSupply - distributed),
      log
    )

  for (const m of opts.models ?? []) {
    await send(
      `approved model ${m.name} ${m.modelId}`,
      c.models.approveModel(m.modelId, {
        name: m.name,
        layers: m.layers,
        experts: m.experts,
        shardCount: m.shardCount,
        uri: m.uri
      }),
      log
    )
  }
  await send('ModelApprovals owner → timelock', c.models.transferOwnership(timelock), log)
  await send(
    'timelock: governor is proposer',
    c.timelock.grantRole(id('PROPOSER_ROLE'), governor),
    log
  )
  await send(
    'timelock: governor is canceller',
    c.timelock.grantRole(id('CANCELLER_ROLE'), governor),
    log
  )
  await send(
    'timelock: deployer admin renounced',
    c.timelock.renounceRole(await c.timelock.DEFAULT_ADMIN_ROLE(), deployer),
    log
  )
  if ((opts.selfDelegate ?? true) && p.treasury === deployer) {
    await send('treasury votes delegated to itself', c.token.delegate(deployer), log)
  }

  for (const w of warnings) log(w)

  const genesisHash = (await provider.getBlock(0))?.hash ?? undefined
  const deployment: Deployment = {
    chainId: Number(chainId),
    deployer,
    startBlock,
    ...(genesisHash != null ? { genesisHash } : {}),
    deployedAt: new Date().toISOString(),
    contracts: addresses,
    params: p,
    ...(faultReports != null ? { faultReports } : {}),
    ...(inferenceRequests != null ? { inferenceRequests } : {})
  }
  return { deployment, contracts: connectContracts(addresses, baseSigner), warnings }
}

// ─────────────────────────────── script ───────────────────────────────

const int = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`)
  return Number(v)
}
const pov = (v: string) => {
  try {
    return parseEther(v)
  } catch {
    throw new InvalidArgumentError(`not a POV amount: ${v}`)
  }
}

function parseDistribution(v: string, prev: Array<{ to: string; amount: bigint }> = []) {
  const [to, amount] = v.split('=')
  if (to == null || amount == null) throw new InvalidArgumentError(`expected ADDR=POV, got ${v}`)
  try {
    return [...prev, { to: getAddress(to), amount: parseEther(amount) }]
  } catch {
    throw new InvalidArgumentError(`expected ADDR=POV, got ${v}`)
  }
}

/** The deploy script's options → (rpc, local, out, DeployOptions). */
export function parseDeployArgs(argv: string[]): {
  rpc: string
  local: boolean
  out?: string
  opts: DeployOptions
} {
  const cmd = new Command('deploy.ts')
    .description('Deploys the POV contracts and hands every parameter to the timelock.')
    .addOption(new Option('--network <name>', 'a known network').choices(['localhost']))
    .option('--rpc <url>', 'JSON-RPC endpoint (the key comes from POV_DEPLOYER_KEY)')
    .addOption(
      new Option(
        '--preset <preset>',
        'defaults of the parameters not given (local with --network localhost)'
      ).choices(['public', 'local'])
    )
    .option(
      '--treasury <address>',
      'receives the supply left after --distribute, slashed stake and fees (default: the deployer)'
    )
    .option('--initial-supply <pov>', 'POV minted once (default 1000000000)', pov)
    .option(
      '--distribute <addr=pov>',
      'an initial holder and its POV (repeat the option)',
      parseDistribution
    )
    .option('--min-stake <pov>', 'minimum stake of an active node', pov)
    .option(
      '--unbonding-period <s>',
      'seconds before an unbonding operator can withdraw',
      int('--unbonding-period')
    )
    .option(
      '--min-unbonding-period <s>',
      'floor of the unbonding period governance can set (default: the governance path)',
      int('--min-unbonding-period')
    )
    .option(
      '--unlock-period <s>',
      "seconds between a payer's unlock() and withdraw()",
      int('--unlock-period')
    )
    .option('--fee-bps <bps>', 'protocol fee in basis points (≤ 2000)', int('--fee-bps'))
    .option(
      '--voting-delay <blocks>',
      'blocks between a proposal and its vote',
      int('--voting-delay')
    )
    .option('--voting-period <blocks>', 'blocks of voting', int('--voting-period'))
    .option('--timelock-delay <s>', 'seconds between queue and execute', int('--timelock-delay'))
    .option('--quorum <percent>', 'quorum, % of the supply at the snapshot', int('--quorum'))
    .option('--proposal-threshold <pov>', 'votes needed to propose', pov)
    .option(
      '--block-time <s>',
      'seconds per block, to compare governance (blocks) with unbonding (seconds)',
      int('--block-time')
    )
    .option(
      '--allow-quorum-holder',
      'deploy under the public preset even when one address holds a quorum alone (refused otherwise)'
    )
    .option('--no-fault-reports', 'leave FaultReports out (it can be added and wired later)')
    .option('--report-bond <pov>', 'least POV a fault reporter posts (default 100, ≥ 1)', pov)
    .option(
      '--bond-bps <bps>',
      "a fault report's bond as a share of the accused's stake, basis points (default 100, ≥ 10)",
      int('--bond-bps')
    )
    .option(
      '--decision-period <s>',
      "seconds governance has to decide a fault report, the accused's withdrawal frozen meanwhile (default: twice the governance path)",
      int('--decision-period')
    )
    .option(
      '--reporter-share <bps>',
      'share of an upheld slash paid to the reporter, in basis points (≤ 5000, default 2000)',
      int('--reporter-share')
    )
    .option(
      '--no-inference-requests',
      'leave InferenceRequests out (deploy/inference-requests.ts adds it later)'
    )
    .option(
      '--fulfil-bond <pov>',
      'POV an inference fulfiller (and a challenger) posts (default 100)',
      pov
    )
    .option(
      '--challenge-window <s>',
      'seconds a posted inference result can be challenged (default 3600; 60 with the local preset)',
      int('--challenge-window')
    )
    .option(
      '--dispute-period <s>',
      'seconds governance has to decide an inference dispute (default: twice the governance path)',
      int('--dispute-period')
    )
    .option(
      '--tie-margin <micrologits>',
      'top-1/top-2 logit margin below which a token is a near-tie (default 50000 = 0.05)',
      int('--tie-margin')
    )
    .option('--out <dir>', 'where deployments/<chainId>.json goes')
    .exitOverride()
  cmd.parse(argv, { from: 'user' })
  const o = cmd.opts()
  let rpc = o.rpc as string | undefined
  const local = o.network === 'localhost'
  if (local) rpc ??= defaultLocalRpc() // the chain `npm run chain` recorded, else 8545
  if (rpc == null)
    throw new Error(
      'usage: deploy.ts --network localhost | --rpc URL [options] (--help lists them)'
    )
  return {
    rpc,
    local,
    out: o.out,
    opts: {
      preset: o.preset ?? (local ? 'local' : 'public'),
      treasury: o.treasury,
      initialSupply: o.initialSupply,
      distribution: o.distribute,
      minStake: o.minStake,
      unbondingPeriod: o.unbondingPeriod,
      minUnbondingPeriod: o.minUnbondingPeriod,
      unlockPeriod: o.unlockPeriod,
      feeBps: o.feeBps,
      votingDelay: o.votingDelay,
      votingPeriod: o.votingPeriod,
      timelockDelay: o.timelockDelay,
      quorumPercent: o.quorum,
      proposalThreshold: o.proposalThreshold,
      blockTime: o.blockTime,
      allowQuorumHolder: o.allowQuorumHolder === true,
      faultReports:
        o.faultReports === false
          ? false
          : {
              reportBond: o.reportBond,
              bondBps: o.bondBps,
              decisionPeriod: o.decisionPeriod,
              reporterShareBps: o.reporterShare
            },
      inferenceRequests:
        o.inferenceRequests === false
          ? false
          : {
              fulfilBond: o.fulfilBond,
              challengeWindow: o.challengeWindow,
              disputePeriod: o.disputePeriod,
              tieMargin: o.tieMargin
            }
    }
  }
}

async function main(): Promise<void> {
  const args = parseDeployArgs(process.argv.slice(2))
  const provider = createProvider(args.rpc)
  let signer: Signer
  const key = process.env.POV_DEPLOYER_KEY
  if (key) signer = new Wallet(key, provider)
  else if (args.local)
    signer = await provider.getSigner(0) // hardhat node's unlocked account #0
  else throw new Error('set POV_DEPLOYER_KEY to deploy to --rpc ' + args.rpc)
  try {
    await provider.getBlockNumber()
  } catch {
    throw new Error(
      `cannot reach ${args.rpc}` + (args.local ? ' — start it with npm run chain' : '')
    )
  }
  const { deployment, warnings } = await deployAll(signer, {
    ...args.opts,
    log: (l) => console.log(l)
  })
  for (const w of warnings) console.error(`\n*** ${w} ***\n`)
  const path = writeDeployment(deployment, args.out)
  console.log(`wrote ${path}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      const code = (err as { code?: string }).code
      if (code === 'commander.helpDisplayed' || code === 'commander.version') process.exit(0)
      if (code?.startsWith('commander.') === true) process.exit(1) // commander printed why
      console.error(`deploy failed: ${decodeChainError(err)}`)
      process.exit(1)
    }
  )
}
