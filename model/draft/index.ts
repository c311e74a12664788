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

/**
 * The drafts of one bundle for a process that runs many generations (the gateway): the directory
 * is found, read and checked once (openDraft's rules), and each generation borrows a draft of its
 * own — a model draft's KV cache belongs to one generation at a time — and gives it back when it
 * ends. A draft given back is lent again as it was: its cache keeps the last context, and the next
 * generation recomputes only past the prefix they share (a chat template's opening, a repeated
 * prompt), the roll-back every proposal already does.
 */
export class DraftPool {
  private readonly idle: Draft[] = []
  private closed = false

  private constructor(
    /** The drafts' name (e.g. 'tiny-en-draft+ngram', 'ngram'). */
    readonly name: string,
    private readonly make: () => Draft
  ) {}

  /** The pool of the bundle (or model directory) at `dir`; throws DraftError as openDraft. */
  static async open(dir: string, opts: FindDraftOptions = {}): Promise<DraftPool> {
    const vocabSize = opts.vocabSize ?? (await targetVocabSize(dir))
    const model = await findDraft(dir, { ...opts, vocabSize })
    if (model == null) return new DraftPool('ngram', () => new NgramDraft())
    const first = new CombinedDraft(model)
    const pool = new DraftPool(first.name, () => new CombinedDraft(model.fork()))
    pool.idle.push(first)
    return pool
  }

  /** A draft for one generation, until `release`. */
  acquire(): Draft {
    if (this.closed) throw new Error('the draft pool is closed')
    return this.idle.pop() ?? this.make()
  }

  /** Gives back a draft `acquire` lent, once its generation is over. */
  release(draft: Draft): void {
    if (this.closed) void draft.close?.()
    else this.idle.push(draft)
  }

  /** Frees the idle drafts; drafts still lent are freed when given back. */
  async close(): Promise<void> {
    this.closed = true
    const idle = this.idle.splice(0)
    await Promise.all(idle.map(async (d) => await d.close?.()))
  }
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
