// A memory cgroup for benches and tests that cap a process's memory (needs root). cgroup v2
// (memory.max, memory.peak, memory.events) where the memory controller is on the unified
// hierarchy, else v1 (memory.limit_in_bytes, max_usage_in_bytes, failcnt, oom_control).
// A machine with neither, or a non-root user, gets a reason to print instead.
import { existsSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const V2_ROOT = '/sys/fs/cgroup'
const V1_ROOT = '/sys/fs/cgroup/memory'

export interface MemoryCgroup {
  path: string
  version: 1 | 2
  limitBytes: number
  /** File to write a pid into to move that process into the group. */
  procsFile: string
  /** Charged bytes now (anonymous memory and page cache alike). */
  currentBytes: () => Promise<number>
  /** Highest charge seen (null where the kernel does not keep it: v2 before Linux 5.19). */
  peakBytes: () => Promise<number | null>
  /** Times the charge hit the limit (v2 memory.events max, v1 failcnt), and OOM kills. */
  limitEvents: () => Promise<{ hitLimit: number; oomKills: number }>
  /** Removes the group (its processes must have exited). */
  remove: () => Promise<void>
}

async function num(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8')).trim())
}

async function keyed(file: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k !== undefined && k !== '' && v !== undefined) out[k] = Number(v)
  }
  return out
}

/** A new memory cgroup `name` (make it unique: prefix + pid) capped at `limitBytes`, no swap. */
export async function createMemoryCgroup(
  name: string,
  limitBytes: number
): Promise<MemoryCgroup | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: 'not root: memory cgroups need root' }
  let v2 = false
  try {
    v2 = (await readFile(join(V2_ROOT, 'cgroup.controllers'), 'utf8'))
      .split(/\s+/)
      .includes('memory')
  } catch {}
  if (v2) {
    const path = join(V2_ROOT, name)
    try {
      const sub = await readFile(join(V2_ROOT, 'cgroup.subtree_control'), 'utf8')
      if (!sub.split(/\s+/).includes('memory'))
        await writeFile(join(V2_ROOT, 'cgroup.subtree_control'), '+memory')
      await mkdir(path)
      await writeFile(join(path, 'memory.max'), String(limitBytes))
      if (existsSync(join(path, 'memory.swap.max')))
        await writeFile(join(path, 'memory.swap.max'), '0')
    } catch (err) {
      return { skip: `cannot create a cgroup v2 memory group: ${(err as Error).message}` }
    }
    return {
      path,
      version: 2,
      limitBytes,
      procsFile: join(path, 'cgroup.procs'),
      currentBytes: async () => await num(join(path, 'memory.current')),
      peakBytes: async () =>
        existsSync(join(path, 'memory.peak')) ? await num(join(path, 'memory.peak')) : null,
      limitEvents: async () => {
        const e = await keyed(join(path, 'memory.events'))
        return { hitLimit: e.max ?? 0, oomKills: e.oom_kill ?? 0 }
      },
      remove: async () => {
        await rmdir(path)
      }
    }
  }
  if (!existsSync(join(V1_ROOT, 'memory.limit_in_bytes')))
    return { skip: 'no memory cgroup controller (neither cgroup v2 nor v1) on this machine' }
  const path = join(V1_ROOT, name)
  try {
    await mkdir(path)
    await writeFile(join(path, 'memory.limit_in_bytes'), String(limitBytes))
    // with swap accounting on, cap memory + swap too, so that nothing is swapped out to fit
    if (existsSync(join(path, 'memory.memsw.limit_in_bytes')))
      await writeFile(join(path, 'memory.memsw.limit_in_bytes'), String(limitBytes))
  } catch (err) {
    return { skip: `cannot create a cgroup v1 memory group: ${(err as Error).message}` }
  }
  return {
    path,
    version: 1,
    limitBytes,
    procsFile: join(path, 'cgroup.procs'),
    currentBytes: async () => await num(join(path, 'memory.usage_in_bytes')),
    peakBytes: async () => await num(join(path, 'memory.max_usage_in_bytes')),
    limitEvents: async () => ({
      hitLimit: await num(join(path, 'memory.failcnt')),
      oomKills: (await keyed(join(path, 'memory.oom_control'))).oom_kill ?? 0
    }),
    remove: async () => {
      await rmdir(path)
    }
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, bytes; null once it has exited. */
export async function processRss(pid: number): Promise<{ rss: number; hwm: number } | null> {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
  } catch {
    return null
  }
}
