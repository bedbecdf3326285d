import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Crc32c } from '../src/util/crc32c.js'

/** The bit-at-a-time definition, to compare the table-driven one with. */
function reference(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0x82f63b78 ^ (crc >>> 1) : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

describe('Crc32c', () => {
  it("gives CRC-32C's check value and GCS's base64 of known objects", () => {
    expect(new Crc32c().update(Buffer.from('123456789')).value()).toBe(0xe3069283)
    expect(new Crc32c().base64()).toBe('AAAAAA==')
    expect(new Crc32c().update(Buffer.from('hello world')).value()).toBe(0xc99465aa)
  })

  it('is the same however the bytes are cut into pieces', () => {
    const bytes = randomBytes(10_007)
    const whole = new Crc32c().update(bytes).value()
    expect(whole).toBe(reference(bytes))
    const pieces = new Crc32c()
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + (at % 13)
      pieces.update(bytes.subarray(at, at + size))
      at += size
    }
    expect(pieces.value()).toBe(whole)
  })
})
