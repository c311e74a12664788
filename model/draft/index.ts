// Which draft a generation uses: the bundle's trained draft when it ships one, else the n-gram
// draft (no training, works for any model).
import type { Draft } from '../draft.js'
import { NgramDraft } from './ngram.js'

export { NgramDraft, type NgramDraftOptions } from './ngram.js'
export type { Draft, DraftProposal, DraftSampling } from '../draft.js'

/** The draft for the bundle (or model directory) at `dir`. */
export async function openDraft(_dir: string): Promise<Draft> {
  return new NgramDraft()
}
