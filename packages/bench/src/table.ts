import type { Spread } from './stats.js'

/** A Markdown table with a header row; cells are escaped for `|`. */
export function markdownTable(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const escapeCell = (cell: string) => cell.replaceAll('|', '\\|')
  const line = (cells: string[]) => `| ${cells.map(escapeCell).join(' | ')} |`
  const rule = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'))
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)].join('\n')
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
