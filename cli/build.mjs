// Compiles the `pov` CLI to JavaScript in dist/ (npm's `prepare` runs it on `npm ci` and
// `npm install`; cli/pov.mjs runs it again when a source file is newer than the build). Code
// splitting keeps every dynamically imported command module in its own chunk, so a command
// loads only what it uses; npm packages stay external and load from node_modules.
import { cp, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DIST = join(ROOT, 'dist')
/** The compiled entry point (what cli/pov.mjs imports). */
export const ENTRY = join(DIST, 'bin.js')

/** Builds dist/ from the TypeScript sources. */
export async function buildCli() {
  const { build } = await import('esbuild')
  await rm(DIST, { recursive: true, force: true })
  await build({
    absWorkingDir: ROOT,
    entryPoints: {
      bin: 'cli/bin.ts',
      // threaded.ts starts it as new URL('./expert-worker.js', import.meta.url)
      'expert-worker': 'model/runtime/expert-worker.ts'
    },
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning'
  })
  // the gateway serves its page from new URL('./page/', import.meta.url)
  await cp(join(ROOT, 'router/gateway/page'), join(DIST, 'page'), { recursive: true })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildCli()
