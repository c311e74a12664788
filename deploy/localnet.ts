// A whole pov network on this machine, driven through the real `pov` CLI: a `hardhat node` chain,
// the contracts, a governance round that approves the model, operators that init / register /
// start nodes, a client that deposits and runs `pov infer`, claims and the audit. Used by
// `npm run demo` and the paid end-to-end tests. Every child process is killed on close().
import type { ModelApprovalArgs } from '../chain/gov-actions.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { JsonRpcProvider } from 'ethers'
import { parseEther, type Signer } from 'ethers'
import { deployAll } from './deploy.js'
import { writeDeployment, type Deployment } from '../chain/deployment.js'
import { createProvider } from '../chain/provider.js'
import type { PovContracts } from '../chain/contracts.js'
import { devChainClock, governanceRound, type RoundResult } from '../chain/governance.js'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const HARDHAT_CLI = join(REPO, 'node_modules', 'hardhat', 'dist', 'src', 'cli.js')
const POV_CLI = join(REPO, 'cli', 'bin.ts')
/** Throw-away keys of a local network: a cheap KDF keeps start-up fast (real keys use 2^17). */
export const DEMO_SCRYPT_N = 1 << 12

/** The demo network's operators: every shard of an 8-shard model on two nodes. */
export const DEMO_OPERATORS = [
  { shards: [0, 1, 2, 3], price: '0.0001' },
  { shards: [4, 5, 6, 7], price: '0.0001' },
  { shards: [0, 1, 2, 3], price: '0.00015' },
  { shards: [4, 5, 6, 7], price: '0.00012' }
] as const

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => {
        resolve(p)
      })
    })
  })
}

export interface OperatorHandle {
  name: string
  dir: string
  keystore: string
  address: string
  peerId: string
  port: number
  shards: number[]
  proc?: ChildProcess
  /** What the running node wrote to stderr (its log lines). */
  log?: string
}

export interface ClientHandle {
  name: string
  /** Its data directory (`--data-dir`: lanes, vouchers). */
  dir: string
  keystore: string
  address: string
  /** Gas of its deposit, when addClient made one. */
  depositGasUsed?: bigint
}

export class LocalNet {
  readonly procs = new Set<ChildProcess>()
  provider!: JsonRpcProvider
  deployment!: Deployment
  contracts!: PovContracts
  deploymentFile!: string
  rpc!: string
  readonly passwordFile: string
  private closed = false

  constructor(
    readonly dir: string,
    readonly log: (line: string) => void = () => {}
  ) {
    this.passwordFile = join(dir, 'passphrase')
  }

  /** Starts `hardhat node` on `port` (default: a free one) and deploys the contracts. */
  async start(
    opts: {
      port?: number
      /** Address the chain binds (a test network's public address). @default 127.0.0.1 */
      hostname?: string
      deploy?: Parameters<typeof deployAll>[1]
    } = {}
  ): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await writeFile(this.passwordFile, `pov-demo-${Math.random().toString(36).slice(2)}\n`, {
      mode: 0o600
    })
    const port = opts.port ?? (await freePort())
    const host = opts.hostname ?? '127.0.0.1'
    this.rpc = `http://${host}:${port}`
    const chain = this.spawn(process.execPath, [
      HARDHAT_CLI,
      'node',
      '--hostname',
      host,
      '--port',
      String(port)
    ])
    const t0 = Date.now()
    for (;;) {
      // readiness: the RPC answers (plain fetch, so ethers never sees a dead endpoint)
      if (chain.exitCode != null) throw new Error(`hardhat node exited with ${chain.exitCode}`)
      try {
        const r = await fetch(this.rpc, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        })
        if (r.ok) break
      } catch {}
      if (Date.now() - t0 > 60_000) throw new Error('hardhat node did not answer within 60 s')
      await new Promise((r) => setTimeout(r, 200))
    }
    this.provider = createProvider(this.rpc)
    this.provider.pollingInterval = 100
    const deployer = await this.provider.getSigner(0)
    const { deployment, contracts } = await deployAll(deployer, { preset: 'local', ...opts.deploy })
    this.deployment = deployment
    this.contracts = contracts
    this.deploymentFile = writeDeployment(deployment, this.dir)
    this.log(
      `chain ${this.rpc} (chain id ${deployment.chainId}), contracts deployed: ${Object.entries(
        deployment.contracts
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`
    )
  }

  async signer(i: number): Promise<Signer> {
    return await this.provider.getSigner(i)
  }

  /** Approves `modelId` through a full Governor round (propose, vote, queue, execute). */
  async approveModel(model: ModelApprovalArgs): Promise<RoundResult> {
    const voter = await this.signer(0) // the treasury holds (and has delegated) the supply
    const data = this.contracts.models.interface.encodeFunctionData('approveModel', [
      model.modelId,
      {
        name: model.name,
        layers: model.layers,
        experts: model.experts,
        shardCount: model.shardCount,
        uri: model.uri
      }
    ])
    return await governanceRound({
      contracts: this.contracts,
      proposer: voter,
      voters: [voter],
      actions: [{ target: this.deployment.contracts.models, data }],
      description: `Approve model ${model.name} (${model.modelId})`,
      clock: devChainClock(this.provider),
      log: (l) => {
        this.log(`  governance: ${l}`)
      }
    })
  }

  /** Sends POV from the treasury (account 0) and ETH for gas to `to`. */
  async fund(to: string, pov: bigint, eth = parseEther('10')): Promise<void> {
    const treasury = await this.signer(0)
    await (await treasury.sendTransaction({ to, value: eth })).wait()
    await (
      await (this.contracts.token.connect(treasury) as typeof this.contracts.token).transfer(
        to,
        pov
      )
    ).wait()
  }

  /** Common flags every chain command gets. */
  chainFlags(keystore?: string, dataDir?: string): string[] {
    const f = [
      '--rpc',
      this.rpc,
      '--deployment',
      this.deploymentFile,
      '--password-file',
      this.passwordFile
    ]
    if (keystore != null) f.push('--keystore', keystore)
    if (dataDir != null) f.push('--data-dir', dataDir)
    return f
  }

  /** Runs `pov ARGS` to completion. */
  async pov(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
    const child = this.spawn(process.execPath, ['--import', 'tsx', POV_CLI, ...args], true)
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    const code = await new Promise<number | null>((resolve) =>
      child.once('exit', (c) => {
        resolve(c)
      })
    )
    clearTimeout(timer)
    return { code, stdout, stderr }
  }

  /** Runs `pov ARGS --json` and parses its stdout; throws with stderr when it fails. */
  async povJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
    const r = await this.pov([...args, '--json'])
    if (r.code !== 0)
      throw new Error(`pov ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
    return JSON.parse(r.stdout) as T
  }

  /**
   * The demo's four operators (npm run demo, bench:gateway): shards 0–3 and 4–7 each on two nodes,
   * at prices that differ so that the router has a choice to make; 1000 POV staked each.
   */
  async addDemoOperators(modelId: string): Promise<OperatorHandle[]> {
    return await Promise.all(
      DEMO_OPERATORS.map(
        async ({ shards, price }, i) =>
          await this.addOperator(`node${i + 1}`, {
            modelId,
            shards: [...shards],
            stake: '1000',
            price,
            fundPov: parseEther('2000')
          })
      )
    )
  }

  /**
   * A paying client: `pov key new`, funding (POV and ETH for gas) and, when `deposit` is given,
   * `pov deposit` of that many POV into escrow. Its keystore and data live under `<dir>/<name>`.
   */
  async addClient(
    name: string,
    o: {
      /** POV sent from the treasury. @default 100 POV */
      fundPov?: bigint
      /** POV to deposit into escrow (a decimal string). @default no deposit */
      deposit?: string
    } = {}
  ): Promise<ClientHandle> {
    const dir = join(this.dir, name)
    const keystore = join(dir, 'keystore')
    const { address } = await this.povJson<{ address: string }>([
      'key',
      'new',
      '--keystore',
      keystore,
      '--password-file',
      this.passwordFile,
      '--scrypt-n',
      String(DEMO_SCRYPT_N)
    ])
    await this.fund(address, o.fundPov ?? parseEther('100'))
    const client: ClientHandle = { name, dir, keystore, address }
    if (o.deposit != null) {
      const dep = await this.povJson<{ gasUsed: string }>([
        'deposit',
        o.deposit,
        ...this.chainFlags(keystore, dir)
      ])
      client.depositGasUsed = BigInt(dep.gasUsed)
    }
    return client
  }

  /** `pov node init` + funding + `pov node register`. */
  async addOperator(
    name: string,
    o: {
      modelId: string
      shards: number[]
      stake: string
      price: string
      fundPov: bigint
      /** Port the node will listen on. @default a free one */
      port?: number
      /** Port to announce on-chain when it differs from the listen port (a proxy or NAT in front). */
      announcePort?: number
      /** Addresses to announce instead (a relayed address, a NAT's public side). */
      announce?: string[]
    }
  ): Promise<OperatorHandle> {
    const dir = join(this.dir, name)
    const keystore = join(dir, 'keystore')
    const init = await this.povJson<{ address: string; peerId: string }>([
      'node',
      'init',
      '--keystore',
      keystore,
      '--password-file',
      this.passwordFile,
      '--scrypt-n',
      String(DEMO_SCRYPT_N)
    ])
    await this.fund(init.address, o.fundPov)
    const port = o.port ?? (await freePort())
    await this.povJson([
      'node',
      'register',
      ...this.chainFlags(keystore, dir),
      '--model',
      o.modelId,
      '--shards',
      o.shards.join(','),
      '--stake',
      o.stake,
      '--price',
      o.price,
      '--announce',
      ...(o.announce ?? [`/ip4/127.0.0.1/tcp/${o.announcePort ?? port}`])
    ])
    return {
      name,
      dir,
      keystore,
      address: init.address,
      peerId: init.peerId,
      port,
      shards: o.shards
    }
  }

  /** `pov node start` with the operator's keystore; resolves when the node prints its ready event. */
  async startNode(
    op: OperatorHandle,
    bundleDir: string,
    opts: {
      metricsPort?: number
      args?: string[]
      readyTimeoutMs?: number
      /** Listen addresses. @default /ip4/127.0.0.1/tcp/<op.port> */
      listen?: string[]
      /** A command the node runs under, e.g. `ip netns exec <ns>` (tests/sim/nat-lab.ts). */
      wrap?: string[]
      /** Every JSON event the node prints on stdout (ready, reachability, …). */
      onEvent?: (event: Record<string, unknown>) => void
    } = {}
  ): Promise<void> {
    const metrics =
      opts.metricsPort != null ? ['--metrics', '--metrics-port', String(opts.metricsPort)] : []
    const wrap = opts.wrap ?? []
    const child = this.spawn(
      wrap[0] ?? process.execPath,
      [
        ...(wrap.length > 0 ? [...wrap.slice(1), process.execPath] : []),
        '--import',
        'tsx',
        POV_CLI,
        'node',
        'start',
        '--model',
        bundleDir,
        '--listen',
        ...(opts.listen ?? [`/ip4/127.0.0.1/tcp/${op.port}`]),
        ...this.chainFlags(op.keystore, op.dir),
        ...metrics,
        ...(opts.args ?? []),
        '--json',
        '--log-format',
        'json',
        '--log-level',
        'warn',
        ...(opts.args ?? [])
      ],
      true
    )
    op.proc = child
    const ready = opts.readyTimeoutMs ?? 60_000
    let stderr = ''
    op.log = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
      op.log += d.toString()
    })
    await new Promise<void>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! })
      const timer = setTimeout(() => {
        reject(new Error(`node ${op.name} not ready in ${ready / 1000} s: ${stderr}`))
      }, ready)
      rl.on('line', (line) => {
        try {
          const event = JSON.parse(line)
          opts.onEvent?.(event)
          if (event.event === 'ready') {
            clearTimeout(timer)
            resolve()
          }
        } catch {}
      })
      child.once('exit', (c) => {
        clearTimeout(timer)
        reject(
          new Error(
            `node ${op.name} exited with ${c}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`
          )
        )
      })
    })
  }

  async stopNode(op: OperatorHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = op.proc
    if (p == null || p.exitCode != null || p.signalCode != null) return
    await new Promise<void>((resolve) => {
      p.once('exit', () => {
        resolve()
      })
      p.kill(signal)
    })
  }

  private spawn(cmd: string, args: string[], piped = false): ChildProcess {
    const child = spawn(cmd, args, {
      cwd: REPO,
      stdio: piped ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' }
    })
    this.procs.add(child)
    child.once('exit', () => {
      this.procs.delete(child)
    })
    if (!piped) child.stderr?.on('data', () => {})
    return child
  }

  /** Kills every process this network started. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.provider?.destroy()
    const waits = [...this.procs].map(
      async (p) =>
        await new Promise<void>((resolve) => {
          if (p.exitCode != null || p.signalCode != null) {
            resolve()
            return
          }
          const t = setTimeout(() => {
            p.kill('SIGKILL')
          }, 3000)
          p.once('exit', () => {
            clearTimeout(t)
            resolve()
          })
          p.kill('SIGTERM')
        })
    )
    await Promise.all(waits)
  }

  /** Synchronous last resort (process 'exit' handlers cannot await). */
  killAll(): void {
    for (const p of this.procs) p.kill('SIGKILL')
  }
}

export { pathToFileURL }
