// A node's OK answer to `req` carrying `tensor`, for executor tests that fake the channel.
import { Status, type ExpertRequest, type ExpertResponse } from '../../../protocol/expert.js'

export function okResponse(
  req: Pick<
    ExpertRequest,
    'requestId' | 'modelId' | 'layer' | 'expert' | 'dtype' | 'rows' | 'hidden'
  >,
  tensor: Uint8Array
): ExpertResponse {
  return {
    requestId: req.requestId,
    modelId: req.modelId,
    layer: req.layer,
    expert: req.expert,
    status: Status.OK,
    message: '',
    dtype: req.dtype,
    rows: req.rows,
    hidden: req.hidden,
    tensor,
    signature: new Uint8Array()
  } as unknown as ExpertResponse
}
