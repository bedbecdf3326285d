/** CRC-32C (Castagnoli), as GCS reports it in `crc32c` (big-endian, base64). */
const TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** A running CRC-32C: feed chunks with {@link update}, read the GCS form with {@link base64}. */
export class Crc32c {
  private crc = 0xffffffff

  update(chunk: Uint8Array): this {
    let crc = this.crc
    for (const byte of chunk) crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
    this.crc = crc >>> 0
    return this
  }

  /** The checksum as an unsigned integer. */
  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0
  }

  /** The checksum as GCS encodes it: 4 big-endian bytes in base64. */
  base64(): string {
    const bytes = Buffer.alloc(4)
    bytes.writeUInt32BE(this.value())
    return bytes.toString('base64')
  }
}
