// @ts-check
// Mutation testing of the core's money, data and tenancy paths (docs/quality.md). Run it with
// `pnpm mutation`; scripts/mutation/run.mjs passes the modules to mutate and the report paths.
import { fileURLToPath } from 'node:url'
import { mutatePatterns } from './scripts/mutation/modules.mjs'

// pnpm keeps the plugins out of @stryker-mutator/core's own directory, where Stryker looks for them.
const plugin = (name) => fileURLToPath(import.meta.resolve(name))

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  plugins: [plugin('@stryker-mutator/vitest-runner'), plugin('@stryker-mutator/typescript-checker')],
  testRunner: 'vitest',
  // `related` would make vitest walk every test file's imports again on each mutant's run; per-test coverage
  // below already picks the tests that reach the mutant.
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  // Each mutant runs only the tests that executed its code in the first (dry) run.
  coverageAnalysis: 'perTest',
  // A mutant reached only while modules load or hooks run (a constant, a table entry) needs a fresh
  // environment and the whole suite, about two minutes each; those are reported as ignored, counted per
  // module in docs/quality.md. Mutants reached by tests as well still run, against those tests.
  ignoreStatic: true,
  checkers: ['typescript'],
  tsconfigFile: 'packages/core/tsconfig.mutation.json',
  mutate: mutatePatterns(),
  // Two cores: one test runner per core; the type checker shares them.
  concurrency: 2,
  // A busy machine runs a mutant's tests slower than the dry run did; a timeout must mean a real hang.
  timeoutMS: 10_000,
  timeoutFactor: 2,
  // The first pass runs every test; on a busy 2-core machine it can take longer than Stryker's 5 minutes.
  dryRunTimeoutMinutes: 20,
  incremental: true,
  incrementalFile: '.tmp/mutation/incremental.json',
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: '.tmp/mutation/report.html' },
  jsonReporter: { fileName: '.tmp/mutation/report.json' },
  clearTextReporter: { allowEmojis: false, reportTests: false, reportMutants: false, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.tmp/stryker',
  // Nothing the tests need lives here; copying it into every sandbox only costs time.
  ignorePatterns: ['.tmp', 'docs', 'examples', '**/dist', 'packages/bench', 'packages/koa', 'packages/nestjs'],
  cleanTempDir: true,
}
