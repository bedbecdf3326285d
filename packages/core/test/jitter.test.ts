import { describe, expect, it } from 'vitest'
import { jitter } from '../src/util/jitter.js'

describe('jitter', () => {
  it('spreads a delay by up to 20% either way, so retries that failed together come back apart', () => {
    const delays = Array.from({ length: 2000 }, () => jitter(1000))
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(800)
    expect(Math.max(...delays)).toBeLessThanOrEqual(1200)
    // Spread over the whole range, not bunched: both outer tenths are hit.
    expect(delays.some((d) => d < 840)).toBe(true)
    expect(delays.some((d) => d > 1160)).toBe(true)
    expect(new Set(delays).size).toBeGreaterThan(200)
  })
})
