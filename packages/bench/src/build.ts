import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'

/** Where the children's bundles go (ignored by git: `.tmp/`). */
export const CHILDREN_OUT_DIR = fileURLToPath(new URL('../.tmp/children/', import.meta.url))

/** The child entry points, by name: `<name>.ts` in `src/children/` becomes `<name>.mjs` in {@link CHILDREN_OUT_DIR}. */
export const CHILD_ENTRIES = [
  'aggregate',
  'batchkit',
  'delay-proxy',
  'host-alone',
  'reference-gateway',
  'upstream',
] as const

/** A child built by {@link buildChildren}. */
export type ChildName = (typeof CHILD_ENTRIES)[number]

/**
 * Bundles the server children with esbuild, from the workspace's TypeScript source (the
 * `@batchkit/source` condition), into plain ES modules that `node` runs with no TypeScript loader.
 * A loader such as tsx keeps a second V8 isolate alive for its hooks (about 20 MB here), which is no
 * part of a server in production and would blur the memory figures. Third-party packages are not
 * bundled: each stays an import of the exact file Node would load for the package that uses it.
 */
export async function buildChildren(): Promise<void> {
  await rm(CHILDREN_OUT_DIR, { recursive: true, force: true })
  await build({
    entryPoints: CHILD_ENTRIES.map((name) => fileURLToPath(new URL(`./children/${name}.ts`, import.meta.url))),
    outdir: CHILDREN_OUT_DIR,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Each host's adapter in a chunk of its own, loaded only by that host: a bundle would otherwise
    // hoist every framework's imports (Nest's among them) into every host's process.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    target: 'node20',
    conditions: ['@batchkit/source'],
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [thirdPartyExternal],
  })
}

/** Leaves every package but the workspace's own out of the bundle, pinned to the file it resolves to. */
const thirdPartyExternal: Plugin = {
  name: 'third-party-external',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === 'resolving' || args.path.startsWith('@batchkit/') || args.path.startsWith('node:')) {
        return undefined
      }
      const resolved = await pluginBuild.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: 'resolving',
      })
      if (resolved.errors.length > 0) return { errors: resolved.errors }
      return resolved.external ? resolved : { path: resolved.path, external: true }
    })
  },
}

/** Node arguments to run a built child. */
export function builtChild(name: ChildName): string[] {
  return [`${CHILDREN_OUT_DIR}${name}.mjs`]
}
