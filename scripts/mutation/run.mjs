// `pnpm mutation [module ...] [--ci] [--force] [--concurrency N]`: runs StrykerJS (stryker.config.mjs) on
// the core's money, data and tenancy modules, then prints each module's score (docs/quality.md).
//
// - With no module names it mutates every module of scripts/mutation/modules.mjs; with names (as that
//   file spells them, or their slugs: `auth`, `events-outbox`, ...) only those.
// - Re-runs are incremental: each selection keeps its own results under .tmp/mutation/<selection>/ and
//   tests again only the mutants whose code or tests changed. `--force` tests every mutant again.
// - `--ci` mutates the modules marked `ci` (or the ones named, which must have `unitTests`) from scratch,
//   against their own test files only, and exits non-zero when one of them kills under the target share of
//   its non-equivalent mutants.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Stryker } from '@stryker-mutator/core'
import { ciTestFiles, MODULES, mutatePatterns, slug } from './modules.mjs'
import { formatTable, moduleScores, TARGET } from './scores.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ci: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    concurrency: { type: 'string' },
  },
})

const selected = values.ci
  ? positionals.length === 0
    ? MODULES.filter((module) => module.ci)
    : pick(positionals)
  : pick(positionals)
if (values.ci && selected.some((module) => !module.unitTests)) {
  const missing = selected.filter((module) => !module.unitTests).map((module) => slug(module.name))
  console.error(`--ci needs the modules' own test files (modules.mjs \`unitTests\`); none for: ${missing.join(', ')}`)
  process.exit(2)
}
const selection = values.ci
  ? ['ci', ...positionals].join('+')
  : positionals.length === 0
    ? 'all'
    : selected.map((module) => slug(module.name)).join('+')
const out = join('.tmp', 'mutation', selection)
mkdirSync(out, { recursive: true })

const results = await new Stryker({
  mutate: mutatePatterns(selected),
  incremental: !values.ci,
  force: values.force,
  incrementalFile: join(out, 'incremental.json'),
  htmlReporter: { fileName: join(out, 'report.html') },
  jsonReporter: { fileName: join(out, 'report.json') },
  ...(values.ci ? { testFiles: ciTestFiles(selected), thresholds: { high: TARGET, low: TARGET, break: TARGET } } : {}),
  ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
}).runMutationTest()

const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))
const scores = moduleScores(report, selected)
const table = formatTable(scores)
writeFileSync(join(out, 'scores.md'), `${table}\n`)
console.log(
  `\n${results.length} mutants; scores per module (also in ${join(out, 'scores.md')}, report in ${join(out, 'report.html')}):\n`,
)
console.log(table)

const under = scores.filter((score) => score.score < TARGET)
if (under.length > 0) {
  console.log(`\nunder ${TARGET}%: ${under.map((score) => `${score.name} (${score.score.toFixed(1)}%)`).join(', ')}`)
  if (values.ci) process.exitCode = 1
}

/** The modules named on the command line, all of them when none is. */
function pick(names) {
  if (names.length === 0) return MODULES
  return names.map((name) => {
    const module = MODULES.find((candidate) => candidate.name === name || slug(candidate.name) === name)
    if (!module) {
      console.error(
        `no module "${name}"; the modules are: ${MODULES.map((candidate) => slug(candidate.name)).join(', ')}`,
      )
      process.exit(2)
    }
    return module
  })
}
