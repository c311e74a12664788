#!/usr/bin/env node
// The `pov` command (package.json#bin): runs the CLI compiled into dist/ by cli/build.mjs, and
// rebuilds it first when a source file is newer, so an edited checkout never runs stale code.
// Under a Node older than the project needs (the system's, say), it runs itself again with the
// Node 22 that `npm ci` installed.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ENTRY = join(ROOT, 'dist', 'bin.js')
const SOURCES = ['cli', 'model', 'node', 'router', 'protocol', 'chain', 'deploy']

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 13)) {
  const local = join(ROOT, 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(local)) {
    process.stderr.write(
      `pov: needs Node.js 22.13 or newer (this is ${process.version}); run npm ci\n`
    )
    process.exit(1)
  }
  const r = spawnSync(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit'
  })
  process.exit(r.status ?? 1)
}

/** Newest modification time under `dir` (source files only). */
function newest(dir) {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) t = Math.max(t, newest(p))
    else if (/\.(ts|mjs|json|html|css|js)$/.test(e.name)) t = Math.max(t, statSync(p).mtimeMs)
  }
  return t
}

function stale() {
  if (!existsSync(ENTRY)) return true
  const built = statSync(ENTRY).mtimeMs
  if (statSync(join(ROOT, 'package.json')).mtimeMs > built) return true
  return SOURCES.some((d) => existsSync(join(ROOT, d)) && newest(join(ROOT, d)) > built)
}

if (stale()) await (await import('./build.mjs')).buildCli()
await import(pathToFileURL(ENTRY).href)
