import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  // Maps without the sources: stack traces (node --enable-source-maps) name src/*.ts lines, but the
  // tarball does not carry a second copy of the code. See docs/releasing.md.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false
  },
  clean: true,
  target: 'node20',
})
