// Adaptive k across runs of a one-shot command (`pov generate`, `pov infer`): the measurements of
// the last run, one small JSON file per model and per greedy/sampled under
// `<data-dir>/speculative/` (as `pov serve` keeps one in memory across requests), so that a short
// reply does not start again from the prior. The file is a hint: one that is missing, corrupt or
// written for something else is ignored with a debug line, and a failed write is only logged.
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DraftLength } from '../../model/speculative.js'

/** What the file says it holds; anything else in `format` is another program's file. */
const FORMAT = 'pov-draft-length/1'

export interface DraftLengthKey {
  modelId: string
  /** Greedy and sampled decoding accept at different rates. */
  sampled: boolean
}

interface DraftLengthFile {
  format: typeof FORMAT
  modelId: string
  mode: 'greedy' | 'sampled'
  state: unknown
}

const mode = (k: DraftLengthKey): DraftLengthFile['mode'] => (k.sampled ? 'sampled' : 'greedy')

/** `<dir>/speculative/<model id>-<greedy|sampled>.json`. */
export function draftLengthFile(dataDir: string, key: DraftLengthKey): string {
  return join(dataDir, 'speculative', `${key.modelId.toLowerCase()}-${mode(key)}.json`)
}

/** The measurements saved for `key`, or a new DraftLength (none saved, or not readable). */
export async function loadDraftLength(
  dataDir: string,
  key: DraftLengthKey,
  debug: (line: string) => void = () => {}
): Promise<DraftLength> {
  const file = draftLengthFile(dataDir, key)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      debug(`adaptive k: cannot read ${file} (${(err as Error).message}); starting from the prior`)
    return new DraftLength()
  }
  try {
    const f = JSON.parse(text) as Partial<DraftLengthFile> | null
    if (f?.format !== FORMAT) throw new Error(`format is ${JSON.stringify(f?.format)}`)
    if (typeof f.modelId !== 'string' || f.modelId.toLowerCase() !== key.modelId.toLowerCase())
      throw new Error(`written for model ${String(f.modelId)}`)
    if (f.mode !== mode(key)) throw new Error(`written for ${String(f.mode)} decoding`)
    const length = DraftLength.restore(f.state)
    debug(`adaptive k: going on from ${file} (k ${length.state().current})`)
    return length
  } catch (err) {
    debug(`adaptive k: ignoring ${file}: ${(err as Error).message}; starting from the prior`)
    return new DraftLength()
  }
}

/** Writes `length`'s measurements for `key` (whole or not at all: a temporary file renamed). */
export async function saveDraftLength(
  dataDir: string,
  key: DraftLengthKey,
  length: DraftLength,
  debug: (line: string) => void = () => {}
): Promise<void> {
  const file = draftLengthFile(dataDir, key)
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  const body: DraftLengthFile = {
    format: FORMAT,
    modelId: key.modelId,
    mode: mode(key),
    state: length.state()
  }
  try {
    await mkdir(join(dataDir, 'speculative'), { recursive: true })
    await writeFile(tmp, JSON.stringify(body) + '\n')
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {}) // a directory that is not one: nothing to remove
    debug(`adaptive k: cannot write ${file} (${(err as Error).message})`)
  }
}
