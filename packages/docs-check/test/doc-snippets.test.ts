import { describe, expect, it } from 'vitest'
import { checkDocSnippets } from '../src/check.js'

describe('the TypeScript snippets of the README and docs/', () => {
  it('type-check against the built packages', () => {
    const { checked, exempt, errors } = checkDocSnippets()
    expect(checked.length).toBeGreaterThan(15)
    // Exemptions stay few, each with its reason in the doc.
    expect(exempt.length).toBeLessThanOrEqual(3)
    expect(errors.map((e) => `${e.where}: ${e.message}`).join('\n')).toBe('')
  })
})
