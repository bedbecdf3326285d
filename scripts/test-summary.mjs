// Prints the test run's counts as one plain line ("tests: N passed, N failed, N skipped") and exits
// non-zero unless the run succeeded: CI reads that line, and vitest's own summary is not in its form.
import { readFileSync, rmSync } from 'node:fs'

const path = process.argv[2] ?? '.tmp/vitest-report.json'
let report
try {
  report = JSON.parse(readFileSync(path, 'utf8'))
  // Gone once read, so a run that crashes before writing one can never pass on a stale report.
  rmSync(path)
} catch (error) {
  console.error(`no test report at ${path}: ${error.message}`)
  process.exit(1)
}
const { numPassedTests: passed, numFailedTests: failed, numPendingTests: pending, numTodoTests: todo } = report
console.log(`tests: ${passed} passed, ${failed} failed, ${pending + (todo ?? 0)} skipped`)
process.exit(report.success && failed === 0 && passed > 0 ? 0 : 1)
