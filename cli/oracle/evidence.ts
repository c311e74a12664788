// Reading and judging a posted result's evidence file for `pov oracle check`: fetched from its
// URI (file:// or http(s)://, or --evidence when it was copied elsewhere), held to the posted
// commitment, every call's signature checked against the registry's bound PeerIds.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { getBytes } from 'ethers'
import type { ChainContext } from '../chain.js'
import type { PostedResult } from '../../chain/oracle.js'
import { readVoucherDomain } from '../../protocol/voucher.js'
import {
  checkOracleEvidence,
  openCommittedEvidence,
  type EvidenceCheck,
  type OracleEvidence
} from '../../router/oracle-evidence.js'

/** The bytes at `uri` (file://, http(s)://, or a path); throws with what failed. */
export async function fetchEvidence(uri: string): Promise<Uint8Array> {
  if (uri === '') throw new Error('no evidence URI was posted')
  if (/^https?:\/\//.test(uri)) {
    const res = await fetch(uri, { signal: AbortSignal.timeout(30_000) })
    if (!res.ok) throw new Error(`${uri} answered HTTP ${res.status}`)
    return new Uint8Array(await res.arrayBuffer())
  }
  const path = uri.startsWith('file://') ? fileURLToPath(uri) : uri
  try {
    return new Uint8Array(await readFile(path))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(
      code === 'ENOENT' ? `${path} does not exist` : `${path}: ${(err as Error).message}`,
      { cause: err }
    )
  }
}

export type PostedEvidence =
  | { ok: true; uri: string; evidence: OracleEvidence; check: EvidenceCheck }
  | { ok: false; uri: string; error: string }

/** Fetches, opens against the commitment and checks the evidence of `posted`. */
export async function judgeEvidence(
  ctx: ChainContext,
  modelId: string,
  posted: PostedResult,
  override?: string
): Promise<PostedEvidence> {
  const uri = override ?? posted.evidenceUri
  let evidence: OracleEvidence
  try {
    evidence = openCommittedEvidence(await fetchEvidence(uri), posted)
  } catch (err) {
    return { ok: false, uri, error: (err as Error).message }
  }
  const registry = ctx.deployment.contracts.registry
  const check = await checkOracleEvidence(evidence, posted, {
    modelId,
    domain: await readVoucherDomain(ctx.contracts.escrow),
    bindingOf: async (operator) => {
      const n = await ctx.contracts.registry.nodeOf(operator)
      if (getBytes(n.peerId).length === 0) return null
      return {
        chainId: BigInt(ctx.chainId),
        registry,
        peerId: n.peerId,
        peerSignature: n.peerSignature
      }
    }
  })
  return { ok: true, uri, evidence, check }
}

/** Lines for the terminal. */
export function describeEvidence(e: PostedEvidence): string[] {
  if (!e.ok) return [`  evidence ${e.uri || '(none)'}: UNUSABLE — ${e.error}`]
  const c = e.check
  const ops = [...c.operators.entries()].map(
    ([op, s]) => `${op} ${s.calls} calls / ${s.rows} rows / ${s.charged} wei`
  )
  const head =
    c.problems.length === 0
      ? `  evidence ${e.uri}: commitment OK, ${c.calls} expert calls — ${c.signed} signed by registered nodes, ${c.local} run by the poster itself${c.payers.length > 0 ? `, paid by ${c.payers.join(', ')}` : ''}`
      : `  evidence ${e.uri}: commitment OK, but ${c.problems.length} problem(s) — first: ${c.problems[0]}`
  return [head, ...(ops.length > 0 ? [`    nodes: ${ops.join('; ')}`] : [])]
}

/** The JSON form (bigints as decimal strings). */
export function evidenceJson(e: PostedEvidence): unknown {
  if (!e.ok) return { ok: false, uri: e.uri, error: e.error }
  return {
    ok: e.check.problems.length === 0,
    uri: e.uri,
    calls: e.check.calls,
    signed: e.check.signed,
    local: e.check.local,
    payers: e.check.payers,
    operators: Object.fromEntries(
      [...e.check.operators].map(([op, s]) => [
        op,
        { calls: s.calls, rows: s.rows, charged: s.charged.toString() }
      ])
    ),
    problems: e.check.problems
  }
}
