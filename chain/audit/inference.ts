// The inference requests of a deployment for `pov audit`: each request, its result, dispute and
// who was paid what (InferenceRequests, docs/contracts.md "Inference requests").
import type { Provider } from 'ethers'
import type { Deployment } from '../deployment.js'
import { inferenceRequestsOf, listRequests, type RequestStatus } from '../oracle.js'

export interface InferenceRow {
  id: number
  status: RequestStatus
  requester: string
  modelId: string
  prompt: string | null
  promptUri: string
  maxTokens: number
  fee: string
  bond: string
  deadline: number
  callback: string
  result: { by: string; tokens: number[]; evidenceHash: string; evidenceUri: string } | null
  dispute: { by: string; tokens: number[]; position: number; outcome: string } | null
  /** Every POV movement out of the contract for this request, in order. */
  payouts: Array<{ to: string; amount: string; why: string }>
  callbackOk: boolean | null
}

export async function collectInference(
  deployment: Deployment,
  provider: Provider,
  fromBlock: number
): Promise<InferenceRow[]> {
  if (deployment.inferenceRequests == null) return []
  const views = await listRequests(inferenceRequestsOf(deployment, provider), fromBlock)
  return views.map((v) => {
    const p = v.params
    const payouts: InferenceRow['payouts'] = []
    const pay = (to: string | undefined, amount: bigint, why: string): void => {
      if (to != null && amount > 0n) payouts.push({ to, amount: amount.toString(), why })
    }
    if (v.resolved != null) {
      pay(v.result?.by, v.resolved.fulfillerPaid, `dispute ${v.dispute?.outcome ?? ''}`)
      pay(v.dispute?.by, v.resolved.challengerPaid, `dispute ${v.dispute?.outcome ?? ''}`)
      if (v.dispute?.outcome === 'BothWrong') pay('treasury', 2n * p.bond, 'both bonds forfeited')
    }
    if (v.finalised != null) {
      pay(v.finalised.paidTo, v.finalised.fee, 'fee')
      pay(v.finalised.paidTo, v.finalised.bond, 'bond returned')
    }
    if (v.cancelled != null) pay(p.requester, v.cancelled.refund, 'fee refunded')
    if (v.status === 'Cancelled' && v.dispute != null && v.dispute.outcome === 'None') {
      pay(v.result?.by, p.bond, 'bond returned (dispute expired)')
      pay(v.dispute.by, p.bond, 'bond returned (dispute expired)')
    }
    return {
      id: v.id,
      status: v.status,
      requester: p.requester,
      modelId: p.modelId,
      prompt: v.prompt,
      promptUri: v.promptUri,
      maxTokens: p.maxTokens,
      fee: p.fee.toString(),
      bond: p.bond.toString(),
      deadline: p.deadline,
      callback: p.callback,
      result:
        v.result == null
          ? null
          : {
              by: v.result.by,
              tokens: v.result.tokens,
              evidenceHash: v.result.evidenceHash,
              evidenceUri: v.result.evidenceUri
            },
      dispute:
        v.dispute == null
          ? null
          : {
              by: v.dispute.by,
              tokens: v.dispute.tokens,
              position: v.dispute.position,
              outcome: v.dispute.outcome
            },
      payouts,
      callbackOk: v.finalised?.callbackOk ?? null
    }
  })
}
