import { describe, expect, it } from 'vitest'
import { extractSnippets } from '../src/snippets.js'

const doc = [
  '# Title', // 1
  '', // 2
  '```ts', // 3
  'const a = 1', // 4
  '```', // 5
  '', // 6
  '```sh', // 7
  'npm install', // 8
  '```', // 9
  '- a list item:', // 10
  '', // 11
  '  ```typescript', // 12
  '  const b = 2', // 13
  '    .toString()', // 14
  '  ```', // 15
  '<!-- not-checked: a sketch of an interface, not code -->', // 16
  '', // 17
  '````ts', // 18
  'interface X {}', // 19
  '```', // 20
  '````', // 21
].join('\n')

describe('extractSnippets', () => {
  it('gives the TypeScript blocks with the doc line of their first line of code, list indentation taken off', () => {
    const { snippets } = extractSnippets(doc, 'docs/x.md')
    expect(snippets).toEqual([
      { file: 'docs/x.md', line: 4, code: 'const a = 1' },
      { file: 'docs/x.md', line: 13, code: 'const b = 2\n  .toString()' },
    ])
  })

  it('leaves out a block with a not-checked comment before its fence, with its reason', () => {
    expect(extractSnippets(doc, 'docs/x.md').exempt).toEqual([
      { file: 'docs/x.md', line: 19, reason: 'a sketch of an interface, not code' },
    ])
  })

  it('refuses a not-checked comment without a reason', () => {
    expect(() => extractSnippets('<!-- not-checked: -->\n```ts\nx\n```\n', 'README.md')).toThrow(
      'README.md:2: a not-checked comment needs a reason',
    )
  })
})
