// `node scripts/mutation/survivors.mjs [report.json]`: the mutants of a Stryker JSON report that no test
// killed (survived or not covered), each as file:line, mutator, original and replacement, and whether
// equivalent-mutants.json lists it as equivalent. The starting point for a test or an equivalence entry.
import { readFileSync } from 'node:fs'
import { findEquivalent, originalText } from './scores.mjs'

const path = process.argv[2] ?? '.tmp/mutation/all/report.json'
const report = JSON.parse(readFileSync(path, 'utf8'))
for (const [file, result] of Object.entries(report.files)) {
  for (const mutant of result.mutants) {
    if (mutant.status !== 'Survived' && mutant.status !== 'NoCoverage') continue
    const original = originalText(result.source, mutant.location)
    const equivalent = findEquivalent(file, result.source, mutant)
    console.log(
      `${file}:${mutant.location.start.line}:${mutant.location.start.column} ${mutant.status} ${mutant.mutatorName}` +
        `${equivalent ? ' (equivalent)' : ''}\n  - ${JSON.stringify(original)}\n  + ${JSON.stringify(mutant.replacement)}`,
    )
  }
}
