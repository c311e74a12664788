// One running node per data directory and per keystore: two nodes sharing a voucher journal
// would each count the other's vouchers as their own (and compact it under each other), and two
// nodes with one identity split its calls between them. A lock file holds the owner's pid; a lock
// left by a process that is gone (a crash, SIGKILL) is taken over.
import { openSync, closeSync, writeSync, readFileSync, unlinkSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export const LOCK_FILE = 'pov-node.lock'

export class DirLockedError extends Error {
  override name = 'DirLockedError'
  constructor(
    readonly dir: string,
    readonly pid: number,
    what: string
  ) {
    super(
      `another pov node (pid ${pid}) is running on ${what} ${dir} — stop it first, or give this one its own --data-dir and keystore`
    )
  }
}

export interface DirLock {
  readonly path: string
  release: () => void
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes `dir`'s lock (creating `dir`), or throws DirLockedError naming the running owner. */
export function lockDir(dir: string, what = 'the data directory'): DirLock {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let pid = NaN
      try {
        pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
      } catch {}
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new DirLockedError(dir, pid, what)
      // stale (its process is gone), unreadable, or this process's own (a test reopening a
      // journal it did not close, as after a crash): take it over
      try {
        unlinkSync(path)
      } catch {}
      continue
    }
    writeSync(fd, `${process.pid}\n`)
    closeSync(fd)
    let held = true
    const release = (): void => {
      if (!held) return
      held = false
      process.off('exit', release)
      try {
        if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path)
      } catch {}
    }
    process.on('exit', release)
    return { path, release }
  }
  throw new Error(`cannot take the lock ${path}: it keeps reappearing`)
}
