/**
 * CRC-32C (Castagnoli), the checksum GCS keeps of every object (`crc32c`, `x-goog-hash: crc32c=…`).
 * Node's zlib has only the IEEE CRC-32, so this is the table-driven form Google's own client uses,
 * eight bytes a step (slicing-by-8).
 */
const TABLES = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  const first = tables[0]!
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    first[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) {
      const previous = tables[t - 1]![n]!
      tables[t]![n] = (first[previous & 0xff]! ^ (previous >>> 8)) >>> 0
    }
  }
  return tables as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ]
})()

/** A running CRC-32C: feed bytes with {@link update}, read GCS's form with {@link base64}. */
export class Crc32c {
  private crc = 0xffffffff

  update(bytes: Uint8Array): this {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES
    let crc = this.crc
    let i = 0
    const fast = bytes.length - (bytes.length % 8)
    for (; i < fast; i += 8) {
      const low = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0
      crc =
        t7[low & 0xff]! ^
        t6[(low >>> 8) & 0xff]! ^
        t5[(low >>> 16) & 0xff]! ^
        t4[low >>> 24]! ^
        t3[bytes[i + 4]!]! ^
        t2[bytes[i + 5]!]! ^
        t1[bytes[i + 6]!]! ^
        t0[bytes[i + 7]!]!
    }
    for (; i < bytes.length; i++) crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
    this.crc = crc >>> 0
    return this
  }

  /** The checksum as an unsigned integer. */
  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0
  }

  /** The checksum as GCS writes it: 4 big-endian bytes in base64. */
  base64(): string {
    const bytes = Buffer.alloc(4)
    bytes.writeUInt32BE(this.value())
    return bytes.toString('base64')
  }
}
