import { describe, expect, it } from 'vitest'
import { CompactStringSet } from '../src/util/compact-string-set.js'

/** A deterministic pseudo-random source, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
    return state / 2 ** 32
  }
}

describe('CompactStringSet', () => {
  it('holds exactly the strings a Set holds, through many additions and table growths', () => {
    const next = random(7)
    const alphabet = ['a', 'b', '0', '-', 'é', '日', '😀', '\ud800', '\udc00', '\u0000']
    const reference = new Set<string>()
    const set = new CompactStringSet()
    for (let i = 0; i < 20_000; i++) {
      // Short strings over a small alphabet, so many repeat.
      const length = Math.floor(next() * 5)
      let value = ''
      for (let c = 0; c < length; c++) value += alphabet[Math.floor(next() * alphabet.length)]
      expect(set.has(value)).toBe(reference.has(value))
      expect(set.add(value)).toBe(!reference.has(value))
      reference.add(value)
      expect(set.size).toBe(reference.size)
    }
    for (const value of reference) expect(set.has(value)).toBe(true)
    // Thousands of strings (the table grew several times), and many added twice.
    expect(reference.size).toBeGreaterThan(3_000)
    expect(reference.size).toBeLessThan(15_000)
  })

  it('keeps a million ids of a generated batch file apart', () => {
    const set = new CompactStringSet()
    let added = 0
    for (let i = 0; i < 1_000_000; i++) if (set.add(`r-${String(i).padStart(9, '0')}`)) added++
    expect(added).toBe(1_000_000)
    expect(set.size).toBe(1_000_000)
    expect(set.has('r-000999999')).toBe(true)
    expect(set.has('r-001000000')).toBe(false)
    expect(set.add('r-000123456')).toBe(false)
  })

  it('tells apart strings whose UTF-8 would be the same or whose bytes would collide', () => {
    const set = new CompactStringSet()
    // Lone surrogates: both become U+FFFD in UTF-8.
    expect(set.add('id-\ud800')).toBe(true)
    expect(set.add('id-\udbff')).toBe(true)
    expect(set.add('id-\ufffd')).toBe(true)
    // 'ab' in one byte per character is the UTF-16LE of U+6261.
    expect(set.add('ab')).toBe(true)
    expect(set.add('\u6261')).toBe(true)
    expect(set.add('')).toBe(true)
    expect(set.size).toBe(6)
    expect(['id-\ud800', 'id-\udbff', 'id-\ufffd', 'ab', '\u6261', ''].every((v) => set.has(v))).toBe(true)
    expect(set.has('id-\udc00')).toBe(false)
  })

  it('holds strings longer than one of its blocks', () => {
    const set = new CompactStringSet()
    const long = 'x'.repeat(3 * 1024 * 1024)
    expect(set.add('before')).toBe(true)
    expect(set.add(long)).toBe(true)
    expect(set.add(`${long}é`)).toBe(true)
    expect(set.add('after')).toBe(true)
    expect(set.add(long)).toBe(false)
    expect(set.has(`${long}y`)).toBe(false)
    expect(['before', long, `${long}é`, 'after'].every((v) => set.has(v))).toBe(true)
  })
})
