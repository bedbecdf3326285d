import type { Spread } from './stats.js'

/** A Markdown table with a header row; cells are escaped for `|`, rows given as text are kept as they are. */
export function markdownTable(header: string[], rows: (string[] | string)[], align?: ('l' | 'r')[]): string {
  const rule = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'))
  return [
    markdownRow(header),
    `| ${rule.join(' | ')} |`,
    ...rows.map((row) => (typeof row === 'string' ? row : markdownRow(row))),
  ].join('\n')
}

/** One row of a Markdown table; cells are escaped for `|`. */
function markdownRow(cells: string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`
}

/** A number with thousands separators and `digits` decimals. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** `median (min–max)`, each scaled by `scale` and shown with `digits` decimals. */
export function spreadCell(spread: Spread | undefined, digits = 0, scale = 1): string {
  if (!spread || spread.runs === 0) return '–'
  const f = (v: number) => num(v * scale, digits)
  return spread.runs === 1 ? f(spread.median) : `${f(spread.median)} (${f(spread.min)}–${f(spread.max)})`
}

/** Bytes as decimal megabytes. */
export function mb(bytes: number, digits = 0): string {
  return num(bytes / 1e6, digits)
}
