/**
 * chain/ and deploy/: the deployment file, the committed ABIs, error decoding, and the deploy
 * script end to end against a real `hardhat node` on 127.0.0.1.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { Wallet } from 'ethers'
import { createProvider } from '../../chain/provider.js'
import { by, depositFor, load, POV, voucher } from './fixture.js'
import { ABIS, connectContracts, loadContracts } from '../../chain/contracts.js'
import { CONTRACT_SOURCES, loadArtifact, REPO_ROOT } from '../../chain/artifacts.js'
import type { ContractName } from '../../chain/artifacts.js'
import { DeploymentNotFoundError, readDeployment, writeDeployment } from '../../chain/deployment.js'
import { decodeChainError } from '../../chain/errors.js'

const tmp = mkdtempSync(join(tmpdir(), 'pov-chain-'))
after(() => rmSync(tmp, { recursive: true, force: true }))

describe('chain/deployment', () => {
  it('round-trips deployments/<chainId>.json', async () => {
    const env = await load()
    const path = writeDeployment(env.deployment, tmp)
    assert.equal(path, join(tmp, '31337.json'))
    assert.deepEqual(readDeployment(31337, { dir: tmp }), env.deployment)
  })
  it('says what to do when the deployment is missing', () => {
    assert.throws(
      () => readDeployment(31337, { dir: join(tmp, 'nowhere') }),
      (err: Error) =>
        err instanceof DeploymentNotFoundError &&
        /^no deployment for chain 31337 at .*31337\.json — run npm run deploy:local$/.test(
          err.message
        )
    )
  })
})

describe('chain/abi', () => {
  it('the committed ABIs match the compiled contracts (else run npx tsx chain/gen-abi.ts)', () => {
    for (const name of Object.keys(CONTRACT_SOURCES) as ContractName[]) {
      assert.deepEqual(ABIS[name], loadArtifact(name).abi, `chain/abi/${name}.json is stale`)
    }
  })
})

describe('chain/errors', () => {
  it('decodes custom errors of a reverted transaction into one line', async () => {
    const env = await load()
    const { escrow } = env.contracts
    await depositFor(env, env.alice, POV(1))
    const { rv } = await voucher(env, env.alice, env.op1.address, POV(1))
    await by(escrow, env.op1).redeem(rv)
    const err = await by(escrow, env.op1)
      .redeem(rv)
      .then(
        () => null,
        (e: unknown) => e
      )
    assert.equal(
      decodeChainError(err),
      `EscrowStaleVoucher(payer=${env.alice.address}, payee=${env.op1.address}, cumulativeAmount=${POV(1)}, alreadyPaid=${POV(1)})`
    )
    const own = await by(env.contracts.registry, env.attacker)
      .setMinStake(0)
      .then(
        () => null,
        (e: unknown) => e
      )
    assert.equal(
      decodeChainError(own),
      `OwnableUnauthorizedAccount(account=${env.attacker.address})`
    )
    assert.equal(decodeChainError(new Error('boom\nstack')), 'boom')
  })
})

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {}
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) => resolve({ code, out }))
  })
}

describe('deploy/deploy.ts against hardhat node', () => {
  let node: ChildProcess | undefined
  after(() => node?.kill('SIGTERM'))

  it(
    'deploys with --rpc and POV_DEPLOYER_KEY, writes the file, clients work in plain tsx',
    { timeout: 60_000 },
    async () => {
      const port = await freePort()
      const url = `http://127.0.0.1:${port}`
      node = spawn(
        process.execPath,
        [
          join(REPO_ROOT, 'node_modules/hardhat/dist/src/cli.js'),
          'node',
          '--hostname',
          '127.0.0.1',
          '--port',
          String(port)
        ],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe']
        }
      )
      // readiness: the node prints its banner once it listens
      await new Promise<void>((resolve, reject) => {
        let buf = ''
        node!.stdout!.on('data', (d) => {
          buf += d
          if (buf.includes('Started HTTP and WebSocket JSON-RPC server')) resolve()
        })
        node!.on('exit', (code) => reject(new Error(`hardhat node exited with ${code}: ${buf}`)))
      })
      // hardhat node account #1 (well-known test key)
      const key = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
      // the public preset without --distribute leaves the deployer a quorum alone: refused …
      const refused = await run(
        process.execPath,
        ['--import', 'tsx', 'deploy/deploy.ts', '--rpc', url, '--out', tmp],
        { POV_DEPLOYER_KEY: key }
      )
      assert.equal(refused.code, 1, refused.out)
      assert.match(refused.out, /deploy failed: refused: .* --allow-quorum-holder/)
      // … unless explicitly allowed
      const res = await run(
        process.execPath,
        [
          '--import',
          'tsx',
          'deploy/deploy.ts',
          '--rpc',
          url,
          '--out',
          tmp,
          '--allow-quorum-holder'
        ],
        { POV_DEPLOYER_KEY: key }
      )
      assert.equal(res.code, 0, res.out)
      assert.match(res.out, /wrote .*31337\.json/)
      const file = JSON.parse(readFileSync(join(tmp, '31337.json'), 'utf8'))
      const provider = createProvider(url)
      const wallet = new Wallet(key, provider)
      assert.equal(file.deployer, wallet.address)
      const { contracts } = await loadContracts(provider, { dir: tmp })
      assert.equal(
        await contracts.token.balanceOf(wallet.address),
        BigInt(file.params.initialSupply)
      )
      assert.equal(await contracts.registry.owner(), file.contracts.timelock)
      assert.equal(await contracts.escrow.feeBps(), 100n)
      const c = connectContracts(file.contracts, wallet)
      await (await c.token.approve(file.contracts.escrow, 5n)).wait()
      await (await c.escrow.deposit(5n)).wait()
      assert.deepEqual([...(await c.escrow.depositOf(wallet.address))], [5n, 0n])
      const bad = await c.escrow.deposit(0n).then(
        () => null,
        (e: unknown) => e
      )
      assert.equal(decodeChainError(bad), 'EscrowZeroAmount()')
      provider.destroy()
    }
  )

  it('the script refuses an unknown network and a missing key', async () => {
    const res = await run(
      process.execPath,
      ['--import', 'tsx', 'deploy/deploy.ts', '--rpc', 'http://127.0.0.1:9'],
      { POV_DEPLOYER_KEY: '' }
    )
    assert.equal(res.code, 1)
    assert.match(res.out, /deploy failed: set POV_DEPLOYER_KEY/)
  })
})
