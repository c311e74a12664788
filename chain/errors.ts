/**
 * Turns a failed call or transaction into one readable line, decoding the POV contracts' custom
 * errors (and OpenZeppelin's, which their ABIs include), `Error(string)` and `Panic(uint256)`.
 *
 *   decodeChainError(err) → "EscrowStaleVoucher(payer=0xab…, payee=0xcd…, cumulativeAmount=5, alreadyPaid=10)"
 */
import { isHexString } from 'ethers'
import type { ErrorDescription, Interface } from 'ethers'
import { combinedInterface } from './contracts.js'

let iface: Interface | undefined

const PANIC_REASONS: Record<string, string> = {
  '1': 'assertion failed',
  '17': 'arithmetic overflow or underflow',
  '18': 'division by zero',
  '33': 'invalid enum value',
  '50': 'array index out of bounds',
  '65': 'out of memory'
}

/** Finds revert data (0x…) anywhere in an ethers / JSON-RPC / hardhat error object. */
export function findRevertData(err: unknown, depth = 0): string | undefined {
  if (depth > 6 || err === null || typeof err !== 'object') return undefined
  const e = err as Record<string, unknown>
  for (const key of ['data', 'revertData']) {
    const v = e[key]
    if (typeof v === 'string' && isHexString(v) && v.length >= 10) return v
    if (v && typeof v === 'object') {
      const inner = findRevertData(v, depth + 1)
      if (inner) return inner
    }
  }
  for (const key of ['error', 'info', 'cause', 'receipt']) {
    const inner = findRevertData(e[key], depth + 1)
    if (inner) return inner
  }
  return undefined
}

function formatValue(v: unknown): string {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`
  return String(v)
}

/** A decoded custom error: its name and each parameter's name, Solidity type and value. */
export interface DecodedRevert {
  name: string
  params: Array<{ name: string; type: string; value: unknown }>
}

function parseRevert(data: string): ErrorDescription | null {
  iface ??= combinedInterface()
  try {
    return iface.parseError(data)
  } catch {
    return null
  }
}

/** The custom error (or Error(string) / Panic) behind a failed call, structured; undefined when none. */
export function decodeRevert(err: unknown): DecodedRevert | undefined {
  const data = findRevertData(err)
  const desc = data != null ? parseRevert(data) : null
  if (desc == null) return undefined
  return {
    name: desc.name,
    params: desc.fragment.inputs.map((p, i) => ({
      name: p.name || String(i),
      type: p.type,
      value: desc.args[i] as unknown
    }))
  }
}

/** Decodes revert data against the POV ABIs; undefined when unknown. */
export function decodeRevertData(data: string): string | undefined {
  const desc = parseRevert(data)
  if (!desc) return undefined
  if (desc.name === 'Error') return `reverted: ${String(desc.args[0])}`
  if (desc.name === 'Panic') {
    const code = (desc.args[0] as bigint).toString()
    return `panic: ${PANIC_REASONS[code] ?? `code ${code}`}`
  }
  const args = desc.fragment.inputs.map((p, i) => `${p.name || i}=${formatValue(desc!.args[i])}`)
  return `${desc.name}(${args.join(', ')})`
}

/** One line describing `err`: the decoded custom error when there is one, else the message. */
export function decodeChainError(err: unknown): string {
  const data = findRevertData(err)
  if (data) {
    const decoded = decodeRevertData(data)
    if (decoded) return decoded
    return `reverted with unknown error data ${data.slice(0, 10)}`
  }
  const e = err as { shortMessage?: string; message?: string } | undefined
  const msg = e?.shortMessage ?? e?.message ?? String(err)
  return msg.split('\n')[0]
}
