// The node's durable voucher journal: money it has earned but not yet redeemed. Every accepted
// voucher is appended to a JSON-lines file and fdatasync'ed before the call it pays for runs, so
// a crash never loses earned POV. Concurrent appends share one sync (group commit).
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { checksummed, type SignedVoucher } from '../../protocol/voucher.js'
import { lockDir, type DirLock } from './dir-lock.js'

export type { SignedVoucher }

export const JOURNAL_FILE = 'vouchers.jsonl'

interface Line {
  payer: string
  payee: string
  cumulativeAmount: string
  signature: string
  at: number
}

export class VoucherStore {
  private readonly latest = new Map<string, SignedVoucher>()
  private fh: FileHandle | null = null
  private pending: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = []
  private flushing: Promise<void> | null = null
  private lock: DirLock | null = null

  private constructor(readonly path: string) {}

  /**
   * Opens (creating) the journal in `dir` and replays it: the highest voucher per payer wins.
   * One writer per journal: a second node on the same directory is refused (DirLockedError).
   */
  static async open(dir: string): Promise<VoucherStore> {
    await mkdir(dir, { recursive: true })
    const lock = lockDir(dir, 'the voucher journal in')
    try {
      const store = await VoucherStore.replay(dir)
      await store.compact()
      store.fh = await open(store.path, 'a')
      store.lock = lock
      return store
    } catch (err) {
      lock.release()
      throw err
    }
  }

  /**
   * Reads the journal without taking it over (no compaction, no writes): safe while the node that
   * owns it is running, e.g. for `pov node claim` and `pov node status`.
   */
  static async readOnly(dir: string): Promise<SignedVoucher[]> {
    return (await VoucherStore.replay(dir)).all()
  }

  private static async replay(dir: string): Promise<VoucherStore> {
    const store = new VoucherStore(join(dir, JOURNAL_FILE))
    let text = ''
    try {
      text = await readFile(store.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue
      let l: Line
      try {
        l = JSON.parse(raw)
      } catch {
        continue
      } // a torn last line from a crash mid-write
      store.remember({
        payer: l.payer,
        payee: l.payee,
        cumulativeAmount: BigInt(l.cumulativeAmount),
        signature: l.signature
      })
    }
    return store
  }

  private remember(v: SignedVoucher): void {
    const key = checksummed(v.payer)
    const cur = this.latest.get(key)
    if (cur == null || v.cumulativeAmount > cur.cumulativeAmount)
      this.latest.set(key, { ...v, payer: key, payee: checksummed(v.payee) })
  }

  /** Rewrites the journal with one line per payer (atomic rename). */
  private async compact(): Promise<void> {
    const tmp = this.path + '.tmp'
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile([...this.latest.values()].map((v) => toLine(v) + '\n').join(''))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.path)
    const d = await open(dirname(this.path), 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  }

  /** The highest voucher held from `payer`, if any. */
  get(payer: string): SignedVoucher | undefined {
    return this.latest.get(checksummed(payer))
  }

  /** Every payer's highest voucher. */
  all(): SignedVoucher[] {
    return [...this.latest.values()]
  }

  /** Records `v` durably; resolves once it is on disk. */
  async put(v: SignedVoucher): Promise<void> {
    this.remember(v)
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ line: toLine(v) + '\n', resolve, reject })
      this.flushing ??= this.flush()
    })
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending
        this.pending = []
        try {
          if (this.fh == null) throw new Error('voucher store is closed')
          await this.fh.write(batch.map((b) => b.line).join(''))
          await this.fh.datasync()
          for (const b of batch) b.resolve()
        } catch (err) {
          for (const b of batch) b.reject(err)
        }
      }
    } finally {
      this.flushing = null
    }
  }

  async close(): Promise<void> {
    await this.flushing
    await this.fh?.close()
    this.fh = null
    this.lock?.release()
    this.lock = null
  }
}

function toLine(v: SignedVoucher): string {
  const l: Line = {
    payer: checksummed(v.payer),
    payee: checksummed(v.payee),
    cumulativeAmount: v.cumulativeAmount.toString(),
    signature: v.signature,
    at: Date.now()
  }
  return JSON.stringify(l)
}
