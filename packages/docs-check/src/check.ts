import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { type Exemption, extractSnippets, type Snippet } from './snippets.js'

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The repository root: README.md and docs/ are read from here. */
export const REPOSITORY_ROOT = join(PACKAGE_DIR, '..', '..')
/** Where the snippets are written: inside this package, so `@batchkit/*` and the rest resolve from it. */
const OUT_DIR = join(PACKAGE_DIR, '.snippets')
/** What the docs take as given without defining it: the reader's own app, store and settings. */
const CONTEXT_FILE = join(PACKAGE_DIR, 'context', 'globals.d.ts')

/** A compiler error in a doc's snippet, at the doc's own file and line. */
export interface SnippetError {
  /** `docs/storage.md:42`, or the file outside the docs the error is in. */
  readonly where: string
  readonly message: string
}

/** What {@link checkDocSnippets} found. */
export interface SnippetReport {
  readonly checked: Snippet[]
  readonly exempt: Exemption[]
  readonly errors: SnippetError[]
}

/** The README and every Markdown file under docs/, relative to the repository root. */
export function docFiles(root: string = REPOSITORY_ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => join('docs', file))
    .sort()
  return ['README.md', ...docs]
}

/**
 * Type-checks every TypeScript snippet of the README and docs/ against the built packages (their
 * `dist` types, as a user gets them), each snippet as an ES module of its own.
 */
export function checkDocSnippets(root: string = REPOSITORY_ROOT): SnippetReport {
  if (!existsSync(join(root, 'packages', 'core', 'dist', 'index.d.ts'))) {
    throw new Error('The doc snippets are checked against the built packages: run `npx -y pnpm@12.4.2 build` first')
  }
  const checked: Snippet[] = []
  const exempt: Exemption[] = []
  for (const file of docFiles(root)) {
    const found = extractSnippets(readFileSync(join(root, file), 'utf8'), file)
    checked.push(...found.snippets)
    exempt.push(...found.exempt)
  }
  rmSync(OUT_DIR, { recursive: true, force: true })
  mkdirSync(OUT_DIR, { recursive: true })
  const byPath = new Map<string, Snippet>()
  for (const snippet of checked) {
    const path = join(OUT_DIR, `${snippet.file.replace(/[^\w]+/g, '-')}-${snippet.line}.ts`)
    // `export {}` makes each snippet a module: top-level await works, and its names shadow the context's.
    writeFileSync(path, `${snippet.code}\nexport {}\n`)
    byPath.set(ts.sys.resolvePath(path), snippet)
  }
  // One program per doc: a snippet's imports can augment global types (`@koa/bodyparser` gives every
  // IncomingMessage a `body: unknown`), which must not leak into another doc's snippets.
  const host = cachingHost()
  const errors: SnippetError[] = []
  for (const file of new Set(checked.map((snippet) => snippet.file))) {
    const rootNames = [...byPath].filter(([, snippet]) => snippet.file === file).map(([path]) => path)
    const program = ts.createProgram({ rootNames: [CONTEXT_FILE, ...rootNames], options: COMPILER_OPTIONS, host })
    errors.push(...ts.getPreEmitDiagnostics(program).map((diagnostic) => located(diagnostic, byPath, root)))
  }
  return { checked, exempt, errors: unique(errors) }
}

/** A compiler host that parses each file once across the programs. */
function cachingHost(): ts.CompilerHost {
  const host = ts.createCompilerHost(COMPILER_OPTIONS)
  const parsed = new Map<string, ts.SourceFile | undefined>()
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    const key = `${fileName}\0${JSON.stringify(languageVersion)}`
    if (!parsed.has(key)) parsed.set(key, getSourceFile(fileName, languageVersion, ...rest))
    return parsed.get(key)
  }
  return host
}

/** The context file's own errors, if any, come once from every program: keep one of each. */
function unique(errors: SnippetError[]): SnippetError[] {
  return [...new Map(errors.map((e) => [`${e.where}\0${e.message}`, e])).values()]
}

/** What a user's strict ESM project on Node would use; no `@batchkit/source` condition, so `dist` types. */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  strict: true,
  esModuleInterop: true,
  experimentalDecorators: true,
  skipLibCheck: true,
  noEmit: true,
}

function located(diagnostic: ts.Diagnostic, snippets: Map<string, Snippet>, root: string): SnippetError {
  const message = `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`
  if (!diagnostic.file || diagnostic.start === undefined) return { where: '(the compiler)', message }
  const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
  const snippet = snippets.get(ts.sys.resolvePath(diagnostic.file.fileName))
  if (snippet) return { where: `${snippet.file}:${snippet.line + line}`, message }
  return { where: `${relative(root, diagnostic.file.fileName)}:${line + 1}`, message }
}
