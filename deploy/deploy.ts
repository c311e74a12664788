/**
 * Deploys and wires the POV contracts, then hands every parameter to the timelock.
 *
 * As a script (writes deployments/<chainId>.json):
 *   npm run deploy:local                                  # hardhat node on 127.0.0.1:8545, account #0
 *   POV_DEPLOYER_KEY=0x… npx tsx deploy/deploy.ts --rpc URL [--treasury ADDR] [--out DIR]
 *
 * As a function: `deployAll(signer, opts)` against any ethers signer (tests, the demo).
 * Needs the compiled artifacts (`npx hardhat build`).
 */
import { ContractFactory, NonceManager, Wallet, getAddress, parseEther, id } from 'ethers'
import type { Signer } from 'ethers'
import { pathToFileURL } from 'node:url'
import { loadArtifact } from '../chain/artifacts.js'
import type { ContractName } from '../chain/artifacts.js'
import { connectContracts } from '../chain/contracts.js'
import type { PovContracts } from '../chain/contracts.js'
import { writeDeployment } from '../chain/deployment.js'
import { decodeChainError } from '../chain/errors.js'
import { createProvider } from '../chain/provider.js'
import type { ContractAddresses, Deployment, DeploymentParams } from '../chain/deployment.js'

export interface ModelApprovalInput {
  modelId: string
  name: string
  layers: number
  experts: number
  shardCount: number
  uri: string
}

export interface DeployOptions {
  /** Receives the initial supply, slashed stake and fees. @default the deployer */
  treasury?: string
  /** @default 1,000,000,000 POV */
  initialSupply?: bigint
  /** @default 1,000 POV */
  minStake?: bigint
  /** Seconds before an unbonding operator can withdraw. @default 3600 (local demo; use days on a live chain) */
  unbondingPeriod?: number
  /** Seconds between a payer's unlock() and withdraw(). @default 3600 */
  unlockPeriod?: number
  /** Protocol fee in basis points. @default 100 (1 %) */
  feeBps?: number
  /** Blocks between proposal and voting start. @default 1 (local demo) */
  votingDelay?: number
  /** Blocks of voting. @default 20 (local demo) */
  votingPeriod?: number
  /** @default 0 */
  proposalThreshold?: bigint
  /** Quorum as a percentage of the supply at the snapshot. @default 4 */
  quorumPercent?: number
  /** Timelock minimum delay in seconds. @default 60 (local demo) */
  timelockDelay?: number
  /** Models approved before ownership goes to the timelock (handy for demos). @default none */
  models?: ModelApprovalInput[]
  /** When the treasury is the deployer, delegate its votes to itself so it can vote. @default true */
  selfDelegate?: boolean
  log?: (line: string) => void
}

export interface DeployResult {
  deployment: Deployment
  contracts: PovContracts
}

async function deploy(
  signer: Signer,
  name: ContractName,
  args: unknown[],
  log: (l: string) => void
): Promise<string> {
  const { abi, bytecode } = loadArtifact(name)
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(...args)
  await contract.waitForDeployment()
  const address = await contract.getAddress()
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
  const p: DeploymentParams = {
    treasury: getAddress(opts.treasury ?? deployer),
    initialSupply: (opts.initialSupply ?? parseEther('1000000000')).toString(),
    minStake: (opts.minStake ?? parseEther('1000')).toString(),
    unbondingPeriod: opts.unbondingPeriod ?? 3600,
    unlockPeriod: opts.unlockPeriod ?? 3600,
    feeBps: opts.feeBps ?? 100,
    votingDelay: opts.votingDelay ?? 1,
    votingPeriod: opts.votingPeriod ?? 20,
    proposalThreshold: (opts.proposalThreshold ?? 0n).toString(),
    quorumPercent: opts.quorumPercent ?? 4,
    timelockDelay: opts.timelockDelay ?? 60
  }

  // The timelock starts with the deployer as admin only to grant the governor its roles; the
  // admin role is renounced below. Anyone may execute a ready operation (executor = 0x0).
  const timelock = await deploy(
    signer,
    'PovTimelock',
    [p.timelockDelay, [], ['0x0000000000000000000000000000000000000000'], deployer],
    log
  )
  const token = await deploy(signer, 'PovToken', [p.treasury, p.initialSupply, timelock], log)
  // Approvals start owned by the deployer so that opts.models can be approved, then move to the timelock.
  const models = await deploy(signer, 'ModelApprovals', [deployer], log)
  const registry = await deploy(
    signer,
    'ExpertRegistry',
    [token, models, p.treasury, p.minStake, p.unbondingPeriod, timelock],
    log
  )
  const escrow = await deploy(
    signer,
    'PovEscrow',
    [token, p.treasury, p.feeBps, p.unlockPeriod, timelock],
    log
  )
  const governor = await deploy(
    signer,
    'PovGovernor',
    [token, timelock, p.votingDelay, p.votingPeriod, p.proposalThreshold, p.quorumPercent],
    log
  )

  const addresses: ContractAddresses = { token, models, registry, escrow, governor, timelock }
  const c = connectContracts(addresses, signer)

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

  const deployment: Deployment = {
    chainId: Number(chainId),
    deployer,
    startBlock,
    deployedAt: new Date().toISOString(),
    contracts: addresses,
    params: p
  }
  return { deployment, contracts: connectContracts(addresses, baseSigner) }
}

// ─────────────────────────────── script ───────────────────────────────

function parseArgs(argv: string[]): {
  rpc: string
  treasury?: string
  out?: string
  local: boolean
} {
  let rpc: string | undefined
  let treasury: string | undefined
  let out: string | undefined
  let local = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--network') {
      const net = argv[++i]
      if (net !== 'localhost')
        throw new Error(`unknown network ${net}: use --network localhost or --rpc URL`)
      rpc = 'http://127.0.0.1:8545'
      local = true
    } else if (a === '--rpc') rpc = argv[++i]
    else if (a === '--treasury') treasury = argv[++i]
    else if (a === '--out') out = argv[++i]
    else throw new Error(`unknown argument ${a}`)
  }
  if (!rpc)
    throw new Error(
      'usage: deploy.ts --network localhost | --rpc URL  [--treasury ADDR] [--out DIR]'
    )
  return { rpc, treasury, out, local }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
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
  const { deployment } = await deployAll(signer, {
    treasury: args.treasury,
    log: (l) => console.log(l)
  })
  const path = writeDeployment(deployment, args.out)
  console.log(`wrote ${path}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`deploy failed: ${decodeChainError(err)}`)
      process.exit(1)
    }
  )
}
