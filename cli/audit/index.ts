import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { formatUnits } from 'ethers'
import { addChainOptions, addJsonOption, type ChainCliOptions } from '../options.js'
import { formatChainTime, withChain } from '../chain.js'
import { toJson } from '../output.js'
import { UserError } from '../errors.js'
import {
  buildAuditReport,
  settlementsCsv,
  votesCsv,
  type AuditReport,
  type NodeDialer
} from '../../chain/audit/report.js'
import { dialNodeInfo } from './dial.js'
import { registerFaultCommands } from './faults.js'

/** Registers `pov audit`: governance, approvals, registry history, settlements, node checks. */
export function register(program: Command): void {
  const audit = program.command('audit')
  registerFaultCommands(audit)
  addJsonOption(
    addChainOptions(
      audit.description(
        'read the on-chain governance, registry and settlement history and check the served models'
      )
    )
  )
    .option('--from-block <n>', 'first block to read (default: the deployment block)')
    .option('--dial', 'dial every active node and check it reports the approved manifest hash')
    .option('--votes-csv <file>', 'write votes as voter,weight,support,reason,block,tx')
    .option('--settlements-csv <file>', 'write settlements as payer,payee,amount,fee,block,tx')
    .action(
      async (
        opts: ChainCliOptions & {
          json?: boolean
          fromBlock?: string
          dial?: boolean
          votesCsv?: string
          settlementsCsv?: string
        }
      ) => {
        const fromBlock = opts.fromBlock == null ? undefined : Number(opts.fromBlock)
        if (fromBlock != null && (!Number.isInteger(fromBlock) || fromBlock < 0))
          throw new UserError(`invalid --from-block "${opts.fromBlock}"`)
        await withChain(opts, async (ctx) => {
          let dial: NodeDialer | undefined
          let closeDialer = async (): Promise<void> => {}
          if (opts.dial === true) ({ dial, close: closeDialer } = await dialNodeInfo())
          let report: AuditReport
          try {
            report = await buildAuditReport(ctx.provider, ctx.deployment, { fromBlock, dial })
          } finally {
            await closeDialer()
          }
          if (opts.votesCsv != null) await writeFile(opts.votesCsv, votesCsv(report))
          if (opts.settlementsCsv != null)
            await writeFile(opts.settlementsCsv, settlementsCsv(report))
          process.stdout.write(opts.json === true ? toJson(report) + '\n' : renderReport(report))
          if (report.checks.some((c) => !c.ok)) process.exitCode = 3
        })
      }
    )
}

const pov = (wei: string): string => `${formatUnits(BigInt(wei), 18).replace(/\.0$/, '')} POV`
const short = (s: string): string => (s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s)

export function renderReport(r: AuditReport): string {
  const out: string[] = []
  out.push(`pov audit — chain ${r.chainId}, blocks ${r.fromBlock}…${r.toBlock}`, '')
  out.push(`Governance proposals (${r.proposals.length})`)
  for (const p of r.proposals) {
    out.push(`  ${short(p.id)}  ${p.state.padEnd(9)} by ${p.proposer}  "${p.description}"`)
    out.push(
      `    votes for ${pov(p.votes.for)}, against ${pov(p.votes.against)}, abstain ${pov(p.votes.abstain)} (quorum ${p.quorum === 'n/a' ? 'n/a' : pov(p.quorum)}); snapshot ${p.snapshot}, deadline ${p.deadline}${p.eta != null ? `, eta ${formatChainTime(p.eta)}` : ''}`
    )
    for (const c of p.calls)
      out.push(`    call ${c.targetName}.${c.function} ${JSON.stringify(c.args)}`)
    for (const v of p.voters)
      out.push(
        `    vote ${v.voter} ${v.support} ${pov(v.weight)}${v.reason !== '' ? ` "${v.reason}"` : ''} (block ${v.block})`
      )
    out.push(`    timeline ${p.timeline.map((t) => `${t.event}@${t.block}`).join(' → ')}`)
  }
  out.push(
    '',
    `Approved models (${r.models.filter((m) => m.approved).length} of ${r.models.length} ever approved)`
  )
  for (const m of r.models)
    out.push(
      `  ${m.modelId} ${m.approved ? 'approved' : 'REVOKED '} ${m.name} — ${m.layers} layers, ${m.experts} experts, ${m.shardCount} shards, ${m.uri}`
    )
  out.push('', `Registry history (${r.registry.length} events)`)
  for (const e of r.registry) {
    const a = e.args
    const detail =
      e.event === 'NodeRegistered'
        ? `shards ${String(a.shards)} stake ${pov(String(a.stake))} price ${pov(String(a.price))}`
        : e.event === 'Slashed'
          ? `${pov(String(a.amount))} "${String(a.reason)}"`
          : e.event === 'StakeAdded'
            ? `+${pov(String(a.amount))} → ${pov(String(a.stake))}`
            : ''
    out.push(
      `  block ${String(e.block).padStart(5)}  ${e.event.padEnd(17)} ${e.operator} ${detail}`
    )
  }
  const s = r.settlements
  out.push(
    '',
    `Settlements (${s.vouchers.length} vouchers, ${pov(s.total.amount)} redeemed, ${pov(s.total.fee)} protocol fee; ${s.withdrawals.length} earnings withdrawal(s))`
  )
  for (const [node, t] of Object.entries(s.perNode))
    out.push(
      `  node  ${node}  ${pov(t.amount)} gross, ${pov(t.net)} net, ${t.vouchers} voucher(s), ${pov(s.withdrawnPerNode[node] ?? '0')} withdrawn`
    )
  for (const [payer, t] of Object.entries(s.perPayer))
    out.push(`  payer ${payer}  ${pov(t.amount)} paid, ${t.vouchers} voucher(s)`)
  out.push('', `Fault reports (${r.faults.length})`)
  for (const f of r.faults)
    out.push(
      `  #${f.id} ${f.status.padEnd(8)} operator ${f.operator} reported by ${f.reporter}, evidence ${f.evidenceHash} ${f.uri}; bond ${pov(f.bond)}, refund claimed ${pov(f.refund)}${f.status === 'Upheld' ? `, slashed ${pov(f.slashed)}, reporter paid ${pov(f.reward)}` : f.status === 'Pending' ? `, decide by ${formatChainTime(BigInt(f.deadline))}` : ''}`,
      `    timeline ${f.timeline.map((t) => `${t.event}@${t.block}`).join(' → ')}`
    )
  out.push('', `Inference requests (${r.inference.length})`)
  for (const q of r.inference) {
    out.push(
      `  #${q.id} ${q.status.padEnd(9)} asked by ${q.requester}, fee ${pov(q.fee)}, bond ${pov(q.bond)}, ≤ ${q.maxTokens} tokens, ${q.prompt != null ? JSON.stringify(q.prompt) : q.promptUri}`
    )
    if (q.result != null)
      out.push(
        `    result by ${q.result.by}: [${q.result.tokens.join(',')}] evidence ${q.result.evidenceHash}${q.result.evidenceUri !== '' ? ` ${q.result.evidenceUri}` : ''}`
      )
    if (q.dispute != null)
      out.push(
        `    challenged by ${q.dispute.by} at token ${q.dispute.position}: [${q.dispute.tokens.join(',')}], outcome ${q.dispute.outcome}`
      )
    for (const p of q.payouts) out.push(`    paid ${pov(p.amount)} to ${p.to} (${p.why})`)
    if (q.callbackOk != null)
      out.push(
        `    callback ${q.callback} ${q.callbackOk ? 'ran' : 'FAILED (fee and result final)'}`
      )
  }
  out.push('', `Checks (${r.checks.filter((c) => c.ok).length}/${r.checks.length} ok)`)
  for (const c of r.checks)
    out.push(
      `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.operator} ${c.active ? 'active' : 'inactive'}: ${c.detail}${c.dial != null ? `; ${c.dial.detail}` : ''}`
    )
  return out.join('\n') + '\n'
}
