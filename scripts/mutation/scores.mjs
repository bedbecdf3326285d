// Scores per module from a Stryker JSON report, leaving out the surviving mutants judged equivalent
// (equivalent-mutants.json: each with the reason no test can tell it from the original).
// `node scripts/mutation/scores.mjs <report.json> ...` prints the table for the modules in those reports
// (several reports of different selections are merged, the later one winning for a file in both).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { MODULES } from './modules.mjs'

/** The share of non-equivalent mutants each module must kill, in percent. */
export const TARGET = 90

/**
 * An equivalent mutant, found by its file, mutator, the code it replaces and its replacement; `line` only where
 * that code occurs more than once in the file.
 * @typedef {{ file: string, line?: number, mutator: string, original: string, replacement: string, reason: string }} Equivalent
 * @typedef {{ name: string, killed: number, timeout: number, survived: number, noCoverage: number,
 *   equivalent: number, compileErrors: number, ignored: number, score: number }} ModuleScore
 */

/** @type {Equivalent[]} */
export const EQUIVALENTS = JSON.parse(readFileSync(new URL('./equivalent-mutants.json', import.meta.url), 'utf8'))

/**
 * Each module's counts, and its score: killed and timed-out mutants over every mutant a test could kill
 * (killed, timed out, survived and not covered, less the survivors listed as equivalent).
 * @returns {ModuleScore[]}
 */
export function moduleScores(report, modules) {
  return modules.map((module) => {
    const matchers = module.files.map(globToRegExp)
    const score = {
      name: module.name,
      killed: 0,
      timeout: 0,
      survived: 0,
      noCoverage: 0,
      equivalent: 0,
      compileErrors: 0,
      ignored: 0,
    }
    for (const [file, result] of Object.entries(report.files)) {
      if (!matchers.some((matcher) => matcher.test(file))) continue
      for (const mutant of result.mutants) {
        if (mutant.status === 'Killed') score.killed++
        else if (mutant.status === 'Timeout') score.timeout++
        else if (mutant.status === 'CompileError') score.compileErrors++
        else if (mutant.status === 'Ignored') score.ignored++
        else if (mutant.status === 'Survived' || mutant.status === 'NoCoverage') {
          if (findEquivalent(file, result.source, mutant)) score.equivalent++
          else if (mutant.status === 'Survived') score.survived++
          else score.noCoverage++
        }
      }
    }
    const killable = score.killed + score.timeout + score.survived + score.noCoverage
    return { ...score, score: killable === 0 ? 100 : (100 * (score.killed + score.timeout)) / killable }
  })
}

/** The modules of `modules` that `report` has mutants of. */
export function modulesIn(report, modules) {
  return modules.filter((module) => {
    const matchers = module.files.map(globToRegExp)
    return Object.keys(report.files).some((file) => matchers.some((matcher) => matcher.test(file)))
  })
}

/** The entry of equivalent-mutants.json that describes this surviving mutant, if one does. */
export function findEquivalent(file, source, mutant) {
  const original = originalText(source, mutant.location)
  return EQUIVALENTS.find(
    (entry) =>
      entry.file === file &&
      (entry.line === undefined || entry.line === mutant.location.start.line) &&
      entry.mutator === mutant.mutatorName &&
      entry.original === original &&
      entry.replacement === mutant.replacement,
  )
}

/** The source a mutant replaces (its location is 1-based lines, 1-based columns, end exclusive). */
export function originalText(source, location) {
  const lines = source.split('\n')
  const { start, end } = location
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1)
  return [
    lines[start.line - 1].slice(start.column - 1),
    ...lines.slice(start.line, end.line - 1),
    lines[end.line - 1].slice(0, end.column - 1),
  ].join('\n')
}

/** A Markdown table of the scores, as docs/quality.md shows them. */
export function formatTable(scores) {
  const rows = scores.map((s) =>
    [s.name, s.killed, s.timeout, s.survived, s.noCoverage, s.equivalent, s.ignored, `${s.score.toFixed(1)}%`].join(
      ' | ',
    ),
  )
  return [
    'module | killed | timeout | survived | no coverage | equivalent | static (ignored) | score',
    '--- | ---: | ---: | ---: | ---: | ---: | ---: | ---:',
    ...rows,
  ]
    .map((row) => `| ${row} |`)
    .join('\n')
}

/** `packages/core/src/store/*-index.ts` as a regular expression over report paths. */
function globToRegExp(glob) {
  const pattern = glob
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${pattern}$`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = {}
  for (const path of process.argv.slice(2)) Object.assign(files, JSON.parse(readFileSync(path, 'utf8')).files)
  const report = { files }
  console.log(formatTable(moduleScores(report, modulesIn(report, MODULES))))
}
