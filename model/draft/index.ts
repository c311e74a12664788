// Which draft a generation uses: the bundle's trained draft when it ships one (combined with the
// n-gram draft at temperature 0, combined.ts), else the n-gram draft (no training, any model).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Draft } from '../draft.js'
import { NgramDraft } from './ngram.js'
import { CombinedDraft } from './combined.js'
import { findDraft, type FindDraftOptions } from './model-draft.js'

export { NgramDraft, type NgramDraftOptions } from './ngram.js'
export { CombinedDraft } from './combined.js'
export {
  DraftError,
  ModelDraft,
  findDraft,
  loadModelDraft,
  type FindDraftOptions
} from './model-draft.js'
export type { Draft, DraftProposal, DraftSampling } from '../draft.js'

/** The draft for the bundle (or model directory) at `dir`: its model draft (`draft/`) when it
 *  carries one (with the n-gram draft at temperature 0: CombinedDraft), else the n-gram draft.
 *  A draft that is there but broken is an error (DraftError), not a silent fallback. */
export async function openDraft(dir: string, opts: FindDraftOptions = {}): Promise<Draft> {
  const vocabSize = opts.vocabSize ?? (await targetVocabSize(dir))
  const model = await findDraft(dir, { ...opts, vocabSize })
  return model != null ? new CombinedDraft(model) : new NgramDraft()
}

/** vocab_size of the bundle's (or model directory's) own config.json, when it has one: a model
 *  draft must share it. */
async function targetVocabSize(dir: string): Promise<number | undefined> {
  try {
    const v = (
      JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    ).vocab_size
    return typeof v === 'number' ? v : undefined
  } catch {
    return undefined
  }
}
