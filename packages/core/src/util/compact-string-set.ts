/** Bytes in one block of stored strings; a longer string gets a block of its own. */
const BLOCK_BYTES = 1024 * 1024
/** Stored strings start on 4-byte words; a string's place counts words: its block's index × this + its word in the block. */
const BLOCK_WORDS = BLOCK_BYTES / 4
/** Places fit in a slot (a 32-bit word, 0 for empty): at most this many blocks, 16 GiB of strings. */
const MAX_BLOCKS = Math.floor((2 ** 32 - 1) / BLOCK_WORDS)
const INITIAL_SLOTS = 1024
const MAX_LOAD = 0.75

/**
 * An exact set of strings kept off the V8 heap: each string's code units in byte blocks, and an
 * open-addressing table (linear probing) of where each one starts and its hash. A million short ids
 * take about 33 MB here, against about 60 MB of heap in a `Set` (and a heap that grows by that much
 * lets as much garbage again pile up before it is collected). Strings are compared by their exact code
 * units, so strings that differ only in lone surrogates stay apart.
 */
export class CompactStringSet {
  private readonly blocks: Buffer[] = []
  private blockUsed = 0
  /** 0 for an empty slot, else 1 + the string's place (see BLOCK_WORDS). */
  private slots = new Uint32Array(INITIAL_SLOTS)
  /** Each slot's string's hash, so a probe compares bytes only with a string of the same hash. */
  private hashes = new Uint32Array(INITIAL_SLOTS)
  private count = 0
  /** The string being looked up, encoded: [`key`, `key` + `keyBytes`). */
  private key = Buffer.allocUnsafe(256)
  private keyBytes = 0
  /** Its header: byte length × 2, + 1 when stored as UTF-16LE rather than one byte per (ASCII) code unit. */
  private keyHeader = 0
  private keyHash = 0

  /** How many strings the set holds. */
  get size(): number {
    return this.count
  }

  /** Whether the set holds `value`. */
  has(value: string): boolean {
    this.encode(value)
    return this.slots[this.probe()] !== 0
  }

  /** Adds `value`; returns false when the set already held it. */
  add(value: string): boolean {
    this.encode(value)
    let slot = this.probe()
    if (this.slots[slot] !== 0) return false
    if ((this.count + 1) / this.slots.length > MAX_LOAD) {
      this.grow()
      slot = this.probe()
    }
    this.slots[slot] = 1 + this.store()
    this.hashes[slot] = this.keyHash
    this.count++
    return true
  }

  /** Encodes `value` into `key`: ASCII as one byte per character, anything else as UTF-16LE (exact for any string). */
  private encode(value: string): void {
    const length = value.length
    if (this.key.length < length * 2) this.key = Buffer.allocUnsafe(Math.max(length * 2, this.key.length * 2))
    const key = this.key
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i)
      if (code >= 0x80) {
        this.keyBytes = key.write(value, 0, length * 2, 'utf16le')
        this.keyHeader = this.keyBytes * 2 + 1
        this.keyHash = hashOf(key, this.keyBytes, this.keyHeader)
        return
      }
      key[i] = code
    }
    this.keyBytes = length
    this.keyHeader = length * 2
    this.keyHash = hashOf(key, length, this.keyHeader)
  }

  /** The slot holding the encoded key, or the empty slot where it would go. */
  private probe(): number {
    const mask = this.slots.length - 1
    let slot = this.keyHash & mask
    for (;;) {
      const held = this.slots[slot] as number
      if (held === 0 || (this.hashes[slot] === this.keyHash && this.holdsKey(held - 1))) return slot
      slot = (slot + 1) & mask
    }
  }

  private holdsKey(place: number): boolean {
    const block = this.blocks[Math.floor(place / BLOCK_WORDS)] as Buffer
    const at = (place % BLOCK_WORDS) * 4
    if (block.readUInt32LE(at) !== this.keyHeader) return false
    const key = this.key
    for (let i = 0; i < this.keyBytes; i++) if (block[at + 4 + i] !== key[i]) return false
    return true
  }

  /** Copies the encoded key into the blocks, after its header; returns its place. */
  private store(): number {
    // Whole words, so that every string starts on one.
    const need = (4 + this.keyBytes + 3) & ~3
    let block = this.blocks.at(-1)
    if (!block || this.blockUsed + need > block.length) {
      if (this.blocks.length >= MAX_BLOCKS) throw new RangeError('A CompactStringSet holds at most 16 GiB of strings.')
      block = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, need))
      this.blocks.push(block)
      this.blockUsed = 0
    }
    const at = this.blockUsed
    block.writeUInt32LE(this.keyHeader, at)
    this.key.copy(block, at + 4, 0, this.keyBytes)
    this.blockUsed += need
    return (this.blocks.length - 1) * BLOCK_WORDS + at / 4
  }

  /** Doubles the table, placing every stored string again by its hash. */
  private grow(): void {
    const [oldSlots, oldHashes] = [this.slots, this.hashes]
    this.slots = new Uint32Array(oldSlots.length * 2)
    this.hashes = new Uint32Array(oldSlots.length * 2)
    const mask = this.slots.length - 1
    for (let old = 0; old < oldSlots.length; old++) {
      const held = oldSlots[old] as number
      if (held === 0) continue
      const hash = oldHashes[old] as number
      let slot = hash & mask
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask
      this.slots[slot] = held
      this.hashes[slot] = hash
    }
  }
}

/** FNV-1a over the header and the first `length` bytes of `bytes`, as an unsigned 32-bit integer. */
function hashOf(bytes: Buffer, length: number, header: number): number {
  let hash = Math.imul(0x811c9dc5 ^ header, 0x01000193)
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193)
  return hash >>> 0
}
