// Where this checkout's local development chain listens. `npm run chain` (deploy/chain.ts) writes
// deployments/local-chain.json while it runs, so `npm run deploy:local` and `pov` find a chain it
// started on another port (8545 taken by another project's node) without flags; without that file
// they use 8545, the usual port of a local Ethereum node.
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { defaultDeploymentsDir } from './deployment.js'

export const LOCAL_CHAIN_HOST = '127.0.0.1'
export const LOCAL_CHAIN_PORT = 8545
export const LOCAL_CHAIN_RPC = `http://${LOCAL_CHAIN_HOST}:${LOCAL_CHAIN_PORT}`

export interface LocalChainInfo {
  rpc: string
  port: number
  /** The `hardhat node` process (its parent, deploy/chain.ts, to be exact). */
  pid: number
  startedAt: string
}

/** deployments/local-chain.json; POV_LOCAL_CHAIN_FILE moves it (tests that start their own). */
export function localChainFile(dir?: string): string {
  if (dir == null && process.env.POV_LOCAL_CHAIN_FILE) return process.env.POV_LOCAL_CHAIN_FILE
  return join(dir ?? defaultDeploymentsDir(), 'local-chain.json')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The running local chain `npm run chain` recorded, or null (none, or its process is gone). */
export function readLocalChain(dir?: string): LocalChainInfo | null {
  const file = localChainFile(dir)
  if (!existsSync(file)) return null
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LocalChainInfo
    return typeof info.rpc === 'string' && Number.isSafeInteger(info.pid) && alive(info.pid)
      ? info
      : null
  } catch {
    return null
  }
}

/** The RPC URL to use when none is given: the recorded local chain, else 8545. */
export function defaultLocalRpc(dir?: string): string {
  return readLocalChain(dir)?.rpc ?? LOCAL_CHAIN_RPC
}

export function writeLocalChain(info: LocalChainInfo, dir?: string): string {
  const file = localChainFile(dir)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(info, null, 2) + '\n')
  return file
}

export function removeLocalChain(pid: number, dir?: string): void {
  const file = localChainFile(dir)
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LocalChainInfo
    if (info.pid === pid) rmSync(file, { force: true })
  } catch {}
}
