// `npm run chain [-- --port N]`: a Hardhat node for local development on 127.0.0.1. Without
// --port it takes 8545, or a free port when 8545 is taken (another project's chain, say: that one
// is left alone), and says which. While it runs, deployments/local-chain.json records its URL so
// that `npm run deploy:local` and `pov` use it without flags.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import {
  LOCAL_CHAIN_HOST,
  LOCAL_CHAIN_PORT,
  removeLocalChain,
  writeLocalChain
} from '../chain/local-chain.js'
import { REPO_ROOT as REPO } from '../chain/artifacts.js'

/** Binds `port` (0: any) on the loopback host; resolves the bound port, or null when taken. */
async function tryPort(port: number): Promise<number | null> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(null)
      else reject(err)
    })
    s.listen(port, LOCAL_CHAIN_HOST, () => {
      const p = (s.address() as { port: number }).port
      s.close(() => {
        resolve(p)
      })
    })
  })
}

function parsePort(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a TCP port from 0 (any free one) to 65535')
  return n
}

async function main(): Promise<void> {
  const o = new Command('npm run chain --')
    .description('a Hardhat node on 127.0.0.1 for local development')
    .option(
      '--port <n>',
      `TCP port (0: any free one; default ${LOCAL_CHAIN_PORT}, or a free one when that is taken)`,
      parsePort
    )
    .parse(process.argv)
    .opts<{ port?: number }>()
  let port: number
  if (o.port != null) {
    const got = await tryPort(o.port)
    if (got == null) {
      process.stderr.write(
        `chain: port ${o.port} is taken — stop what listens there, or run \`npm run chain -- --port 0\` for a free one\n`
      )
      process.exit(1)
    }
    port = got
  } else {
    const got = await tryPort(LOCAL_CHAIN_PORT)
    if (got == null) {
      port = (await tryPort(0))!
      process.stderr.write(
        `chain: port ${LOCAL_CHAIN_PORT} is taken (another chain?) and is left alone: this one listens on ${port}\n`
      )
    } else port = got
  }
  const rpc = `http://${LOCAL_CHAIN_HOST}:${port}`
  const child = spawn(
    process.execPath,
    [
      join(REPO, 'node_modules', 'hardhat', 'dist', 'src', 'cli.js'),
      'node',
      '--hostname',
      LOCAL_CHAIN_HOST,
      '--port',
      String(port)
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] }
  )
  let announced = false
  child.stdout.on('data', (d: Buffer) => {
    process.stdout.write(d)
    if (!announced && /Started HTTP/.test(d.toString())) {
      announced = true
      const file = writeLocalChain({
        rpc,
        port,
        pid: process.pid,
        startedAt: new Date().toISOString()
      })
      // after hardhat's account list, where it is seen
      setTimeout(() => {
        process.stdout.write(
          `\nchain: ${rpc} (recorded in ${file}: \`npm run deploy:local\` and \`pov\` in this checkout use it; elsewhere pass --rpc ${rpc} or export POV_RPC=${rpc})\n`
        )
      }, 200)
    }
  })
  const stop = (signal: NodeJS.Signals): void => {
    child.kill(signal)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const code = await new Promise<number>((resolve) =>
    child.once('exit', (c, s) => resolve(c ?? (s != null ? 0 : 1)))
  )
  removeLocalChain(process.pid)
  process.exit(code)
}

await main()
