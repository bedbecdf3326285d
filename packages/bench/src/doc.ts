import { execFileSync } from 'node:child_process'
import { BENCH_DIR, SERVER_NODE_FLAGS } from './servers.js'
import { num } from './table.js'

/** One bench run, as the figures it wrote say: what ran it, when, at which commit, and how busy the machine was. */
export interface RunInfo {
  /** The command line, as typed. */
  command: string
  date: string
  /** The commit measured, and whether the work tree had changes. */
  commit: string
  mode: 'full' | 'quick'
  runs: number
  /** Cores' worth of CPU that other processes used on average during the run. */
  otherCores: number
  cores: number
  loadAtStart: number
  /** An older checkout measured to compare with: its figures go beside the current ones and judge no target. */
  baseline: boolean
}

/** What a run keeps of the file it rewrites: the figures it did not measure again. */
export interface PreviousDoc {
  /** Each block of figures by id (`control`, `reads`, `reads:baseline`, ...): its provenance line and tables. */
  blocks: Map<string, string>
  /** Rows of the Targets table, by their first cell. */
  targetRows: Map<string, string>
}

/** A file with no figures yet. */
export const EMPTY_DOC: PreviousDoc = { blocks: new Map(), targetRows: new Map() }

/** The line above a block of figures: which command measured them, when, at which commit, and how. */
export function provenance(run: RunInfo): string {
  let line =
    `_Measured by \`${run.command}\` on ${run.date} at commit ${run.commit}: median of ${run.runs} runs, ` +
    `minimum and maximum in brackets; other work on the machine: ${num(run.otherCores, 2)} of its ${run.cores} cores ` +
    `on average, load average ${num(run.loadAtStart, 2)} at the start._`
  if (SERVER_NODE_FLAGS.length > 0) {
    line += ` Every server process ran with \`node ${SERVER_NODE_FLAGS.join(' ')}\` (\`BENCH_NODE_FLAGS\`).`
  }
  if (run.mode === 'quick') line += ' **Quick smoke run**: fewer, shorter runs and smaller files; not the benchmark.'
  if (run.otherCores >= 0.1) {
    line +=
      ' Other work on the machine makes absolute figures lower and noisier than on an idle one; rows measured ' +
      'side by side still compare.'
  }
  return line
}

/** A block of figures between markers, so that a later run can keep it or replace it alone. */
export function markedBlock(id: string, text: string): string {
  return `<!-- bench:${id} -->\n${text}\n<!-- /bench:${id} -->`
}

/** The blocks of figures and the Targets rows of a file the bench wrote. */
export function parseDoc(text: string): PreviousDoc {
  const blocks = new Map<string, string>()
  for (const match of text.matchAll(/<!-- bench:(\S+) -->\n([\s\S]*?)\n<!-- \/bench:\1 -->/g)) {
    blocks.set(match[1] as string, match[2] as string)
  }
  const targetRows = new Map<string, string>()
  const targets = /\n## Targets\n([\s\S]*?)(?=\n## |$)/.exec(text)?.[1] ?? ''
  for (const line of targets
    .split('\n')
    .filter((l) => l.startsWith('| '))
    .slice(2)) {
    targetRows.set(line.slice(2, line.indexOf(' | ')), line)
  }
  return { blocks, targetRows }
}

/**
 * The commit a block of figures was measured at, when it is older than `change` (that is, not
 * `change` itself nor a commit after it); undefined when it is not, or git cannot tell.
 */
export function measuredBefore(block: string, change: string): string | undefined {
  const commit = /at commit (\w+)/.exec(block)?.[1]
  if (!commit) return undefined
  try {
    execFileSync('git', ['merge-base', '--is-ancestor', change, commit], { cwd: BENCH_DIR, stdio: 'ignore' })
    return undefined
  } catch (error) {
    // Status 1: not an ancestor. Anything else (an unknown commit) tells nothing.
    return (error as { status?: number }).status === 1 ? commit : undefined
  }
}
