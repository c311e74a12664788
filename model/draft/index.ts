// Which draft a generation uses: the bundle's trained draft when it ships one, else the n-gram
// draft (no training, works for any model).
import type { Draft } from '../draft.js'
import { NgramDraft } from './ngram.js'
import { findDraft, type FindDraftOptions } from './model-draft.js'

export { NgramDraft, type NgramDraftOptions } from './ngram.js'
export {
  DraftError,
  ModelDraft,
  findDraft,
  loadModelDraft,
  type FindDraftOptions
} from './model-draft.js'
export type { Draft, DraftProposal, DraftSampling } from '../draft.js'

/** The draft for the bundle (or model directory) at `dir`: its model draft (`draft/`) when it
 *  carries one, else the n-gram draft. A draft that is there but broken is an error (DraftError),
 *  not a silent fallback. */
export async function openDraft(dir: string, opts: FindDraftOptions = {}): Promise<Draft> {
  return (await findDraft(dir, opts)) ?? new NgramDraft()
}
