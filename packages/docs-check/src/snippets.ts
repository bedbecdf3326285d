/** A TypeScript code block of a Markdown file. */
export interface Snippet {
  /** The Markdown file, as given to {@link extractSnippets}. */
  readonly file: string
  /** The 1-based line, in the Markdown file, of the block's first line of code. */
  readonly line: number
  readonly code: string
}

/** A TypeScript block left unchecked by `<!-- not-checked: reason -->` on the line before its fence. */
export interface Exemption {
  readonly file: string
  readonly line: number
  readonly reason: string
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/
const EXEMPT = /^\s*<!--\s*not-checked:(.*?)-->\s*$/
const TYPESCRIPT = new Set(['ts', 'typescript'])

/**
 * The ```ts and ```typescript blocks of a Markdown file, and those exempted from checking. A fence
 * indented in a list item has that indentation taken off its code.
 */
export function extractSnippets(markdown: string, file: string): { snippets: Snippet[]; exempt: Exemption[] } {
  const lines = markdown.split('\n')
  const snippets: Snippet[] = []
  const exempt: Exemption[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? '')
    if (!open) continue
    const [, indent = '', fence = '', language = ''] = open
    const body: string[] = []
    let end = i + 1
    while (end < lines.length && !closes(lines[end] ?? '', fence)) body.push(unindent(lines[end++] ?? '', indent))
    if (TYPESCRIPT.has(language.toLowerCase())) {
      const reason = exemptionBefore(lines, i)
      if (reason === '') throw new Error(`${file}:${i + 1}: a not-checked comment needs a reason`)
      if (reason === undefined) snippets.push({ file, line: i + 2, code: body.join('\n') })
      else exempt.push({ file, line: i + 2, reason })
    }
    i = end
  }
  return { snippets, exempt }
}

function closes(line: string, fence: string): boolean {
  const trimmed = line.trim()
  return trimmed.startsWith(fence) && /^[`~]+$/.test(trimmed) && trimmed[0] === fence[0]
}

function unindent(line: string, indent: string): string {
  return line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()
}

/** The reason of a `not-checked` comment on the last non-blank line before the fence, if there is one. */
function exemptionBefore(lines: string[], fenceIndex: number): string | undefined {
  let i = fenceIndex - 1
  while (i >= 0 && (lines[i] ?? '').trim() === '') i--
  const match = EXEMPT.exec(lines[i] ?? '')
  return match ? (match[1] ?? '').trim() : undefined
}
