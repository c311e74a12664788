// `pov audit verify-fault` (offline: re-run the expert from the approved bundle, say which
// signer was wrong) and `pov audit report-fault` (a bonded on-chain report). docs/auditor.md.
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { parseEther } from 'ethers'
import { loadBundle } from '../../model/bundle/load.js'
import { loadExpertRuntime } from '../../model/runtime/expert.js'
import {
  EvidenceError,
  evidenceHash,
  parseEvidence,
  verifyFaultEvidence,
  type FaultEvidence,
  type FaultVerdict
} from '../../router/evidence.js'
import { DEFAULT_VERIFY_TOLERANCE } from '../../router/tolerance.js'
import { faultReportsOf, reportFault } from '../../chain/faults.js'
import { addCommonOptions, addJsonOption } from '../options.js'
import { formatPov, loadSigner, parseAddress, withChain } from '../chain.js'
import { toJson } from '../output.js'
import { UserError } from '../errors.js'
import type { CommonCliOptions } from '../options.js'
import { describeChainError } from '../error-format.js'

/** Exit code when the evidence is valid but proves nobody wrong (like `pov audit`'s failed checks). */
export const NO_FAULT_EXIT = 3

async function readEvidence(file: string): Promise<{ bytes: Uint8Array; e: FaultEvidence }> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return { bytes, e: parseEvidence(new TextDecoder().decode(bytes)) }
  } catch (err) {
    if (err instanceof EvidenceError) throw new UserError(`${file}: ${err.message}`)
    throw err
  }
}

/** Re-executes the evidence's call with the bundle's expert and judges every signer. */
export async function verifyFaultFile(
  file: string,
  bundleDir: string,
  tolerance = DEFAULT_VERIFY_TOLERANCE
): Promise<FaultVerdict & { evidenceHash: string }> {
  const { bytes, e } = await readEvidence(file)
  const bundle = await loadBundle(bundleDir, { verify: 'lazy' })
  const shard = bundle.manifest.shards.find((s) =>
    s.experts.some(([l, x]) => l === e.layer && x === e.expert)
  )
  if (shard == null)
    throw new UserError(
      `bundle ${bundle.modelId} has no expert ${e.expert} of layer ${e.layer} — is it the model the evidence names (${e.modelId})?`
    )
  if (bundle.modelId.toLowerCase() !== e.modelId.toLowerCase())
    throw new UserError(
      `the evidence is about model ${e.modelId}, the bundle at ${bundleDir} is ${bundle.modelId} — pass the approved bundle the evidence names`
    )
  const rt = await loadExpertRuntime(bundle, [shard.id], {
    only: (l, x) => l === e.layer && x === e.expert,
    intraOpNumThreads: 1
  })
  try {
    const verdict = await verifyFaultEvidence(
      e,
      bundle.modelId,
      async (x, rows) => await rt.runExpert(e.layer, e.expert, x, rows),
      tolerance
    )
    return { ...verdict, evidenceHash: evidenceHash(bytes) }
  } catch (err) {
    if (err instanceof EvidenceError) throw new UserError(`${file}: ${err.message}`)
    throw err
  } finally {
    await rt.close()
  }
}

export function renderVerdict(v: FaultVerdict & { evidenceHash: string }): string {
  const out = [
    `fault evidence ${v.evidenceHash}: model ${v.modelId}, layer ${v.layer}, expert ${v.expert}, ${v.rows} row(s); tolerance ${v.tolerance}`
  ]
  for (const s of v.signers)
    out.push(
      `  ${s.wrong ? 'WRONG  ' : 'correct'} ${s.peerId}${s.operator != null ? ` operator ${s.operator}` : ''}: distance ${s.distance.toExponential(2)}, signature ${s.signatureOk ? 'valid' : 'INVALID'}, binding ${s.bindingOk == null ? 'not in file' : s.bindingOk ? 'valid' : 'INVALID'}`
    )
  for (const s of v.signers)
    if (s.refund != null)
      out.push(
        `  refund due: ${s.refund.charge ?? '(charge not recorded)'} POV wei paid by ${s.refund.payer} to ${s.refund.payee} for this wrong answer (voucher up to ${s.refund.cumulativeAmount})`
      )
  for (const p of v.problems) out.push(`  problem: ${p}`)
  out.push(
    v.wrong.length > 0
      ? `verdict: ${v.wrong.map((s) => s.operator ?? s.peerId).join(', ')} signed a wrong output`
      : 'verdict: no signer is proven wrong'
  )
  return out.join('\n') + '\n'
}

export function registerFaultCommands(audit: Command): void {
  addJsonOption(
    audit
      .command('verify-fault')
      .argument(
        '<evidence>',
        'fault evidence file (written by a router that caught a wrong answer)'
      )
      .description(
        're-run the expert of a fault evidence file from the approved bundle and say which signer was wrong (exit 3 when nobody is)'
      )
      .requiredOption('--model <bundle>', 'the approved model bundle directory')
      .option(
        '--tolerance <t>',
        `largest worst-row relative L2 distance still counted as the same answer (default ${DEFAULT_VERIFY_TOLERANCE})`
      )
  ).action(async (file: string, _o: unknown, cmd: Command) => {
    // `pov audit`'s own --json / --rpc / --deployment take those flags wherever they appear
    const o = cmd.optsWithGlobals<{ model: string; tolerance?: string; json?: boolean }>()
    const tol = o.tolerance == null ? DEFAULT_VERIFY_TOLERANCE : Number(o.tolerance)
    if (!(tol > 0 && tol < 1))
      throw new UserError(`invalid --tolerance "${o.tolerance}": expected a number in (0, 1)`)
    const v = await verifyFaultFile(file, o.model, tol)
    process.stdout.write(o.json === true ? toJson(v) + '\n' : renderVerdict(v))
    if (v.wrong.length === 0) process.exitCode = NO_FAULT_EXIT
  })

  addCommonOptions(
    audit
      .command('report-fault')
      .argument('<evidence>', 'fault evidence file')
      .description(
        "file a bonded on-chain fault report: freezes the operator's stake withdrawal until governance decides"
      )
      .requiredOption('--uri <uri>', 'where auditors can fetch the evidence file')
      .option(
        '--operator <address>',
        'the accused operator (default: the binding of the signer the router convicted)'
      )
      .option(
        '--refund <pov>',
        "the price paid for the convicted call(s), repaid out of the slash when upheld (default: the charges the evidence records for the accused operator's wrong answers)"
      )
  ).action(async (file: string, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<
      CommonCliOptions & { uri: string; operator?: string; refund?: string }
    >()
    let refund: bigint | null = null
    if (o.refund != null) {
      try {
        refund = parseEther(o.refund)
      } catch {
        throw new UserError(`invalid --refund "${o.refund}": expected a POV amount`)
      }
      if (refund < 0n) throw new UserError(`invalid --refund "${o.refund}": negative`)
    }
    const { bytes, e } = await readEvidence(file)
    let operator = o.operator
    if (operator == null) {
      const convicted = e.answers.find(
        (a) => a.peerId != null && e.router.convicted.includes(a.peerId) && a.binding != null
      )
      if (convicted == null)
        throw new UserError(
          'the evidence names no convicted signer with an on-chain binding — pass --operator ADDRESS'
        )
      operator = convicted.binding!.operator
    }
    operator = parseAddress(operator, '--operator')
    const claimed = refund ?? claimedRefund(e, operator)
    const hash = evidenceHash(bytes)
    await withChain(o, async (ctx) => {
      // a deployment without FaultReports: one line, through withChain's asUserError
      const fr = faultReportsOf(ctx.deployment, ctx.provider)
      const wallet = await loadSigner(o, ctx)
      let r
      try {
        r = await reportFault(ctx.contracts, fr, wallet, {
          operator: operator!,
          evidenceHash: hash,
          uri: o.uri,
          refund: claimed
        })
      } catch (err) {
        throw new UserError(`reportFault failed: ${describeChainError(err)}`)
      }
      const report = await fr.reportOf(r.id)
      process.stdout.write(
        o.json === true
          ? toJson({
              reportId: r.id,
              operator,
              evidenceHash: hash,
              deadline: report.deadline,
              refund: claimed.toString(),
              tx: r.tx
            }) + '\n'
          : `fault report #${r.id} against ${operator} filed (evidence ${hash}, refund claimed ${formatPov(claimed)}, tx ${r.tx}); its withdrawal is frozen until governance decides — propose: pov gov propose uphold-fault ${r.id} --amount POV\n`
      )
    })
  })
}

/**
 * The refund a report claims by default: the charges the evidence records (router/evidence.ts
 * `payment.charge`) for the answers of `operator`'s convicted signer — what the payer paid for
 * the proven-wrong answers, repaid out of the slash when governance upholds the report.
 */
export function claimedRefund(e: FaultEvidence, operator: string): bigint {
  return e.answers
    .filter(
      (a) =>
        a.peerId != null &&
        e.router.convicted.includes(a.peerId) &&
        a.binding?.operator.toLowerCase() === operator.toLowerCase()
    )
    .reduce((sum, a) => sum + BigInt(a.payment?.charge ?? '0'), 0n)
}
