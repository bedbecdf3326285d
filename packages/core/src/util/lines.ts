const NEWLINE = 0x0a
const CR = 0x0d

/**
 * Cuts a byte stream into lines at `\n` bytes. A `\n` byte never occurs inside a multi-byte UTF-8 sequence,
 * so a character split across chunks is rejoined before any decoding. Holds at most one line (bounded by
 * `maxLineBytes`); a trailing `\r` is dropped; the last line needs no newline.
 */
export class LineSplitter {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private lineNumber = 0

  constructor(
    private readonly maxLineBytes: number,
    /** The error to throw when line `line` (1-based) outgrows `maxLineBytes`. */
    private readonly tooLong: (line: number, maxLineBytes: number) => Error,
  ) {}

  /** Calls `onLine` for every line completed by `chunk`, with its 1-based number. */
  push(chunk: Uint8Array, onLine: (line: Buffer, lineNumber: number) => void): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let start = 0
    for (;;) {
      const newline = bytes.indexOf(NEWLINE, start)
      if (newline === -1) {
        if (start < bytes.length) this.hold(bytes.subarray(start))
        return
      }
      const piece = bytes.subarray(start, newline)
      if (this.pendingBytes + piece.length > this.maxLineBytes)
        throw this.tooLong(this.lineNumber + 1, this.maxLineBytes)
      const line = this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]) : piece
      this.pending = []
      this.pendingBytes = 0
      onLine(stripCr(line), ++this.lineNumber)
      start = newline + 1
    }
  }

  /** Emits the last line when the stream did not end with a newline. */
  end(onLine: (line: Buffer, lineNumber: number) => void): void {
    if (this.pendingBytes === 0) return
    const line = Buffer.concat(this.pending)
    this.pending = []
    this.pendingBytes = 0
    onLine(stripCr(line), ++this.lineNumber)
  }

  private hold(piece: Buffer): void {
    if (this.pendingBytes + piece.length > this.maxLineBytes) throw this.tooLong(this.lineNumber + 1, this.maxLineBytes)
    // Copy: the caller may reuse the chunk's memory once push() returns.
    this.pending.push(Buffer.from(piece))
    this.pendingBytes += piece.length
  }
}

function stripCr(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The line as a string, or undefined when it is not valid UTF-8. */
export function decodeUtf8(line: Uint8Array): string | undefined {
  try {
    return decoder.decode(line)
  } catch {
    return undefined
  }
}

/** Normalises a chunk of a source that may yield strings or bytes. */
export function toBytes(chunk: Uint8Array | string): Uint8Array {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
}

/**
 * Several JSONL sources read one after another as one stream, each opened only when the previous one is done,
 * with a newline inserted where a source does not end with one (so two files never glue their edge lines).
 * Vertex may spread one job's predictions over several files.
 */
export async function* concatJsonlSources(
  sources: Iterable<() => Promise<AsyncIterable<Uint8Array | string>>>,
): AsyncGenerator<Uint8Array> {
  for (const open of sources) {
    let last: number | undefined
    for await (const chunk of await open()) {
      const bytes = toBytes(chunk)
      if (bytes.length === 0) continue
      last = bytes[bytes.length - 1]
      yield bytes
    }
    if (last !== undefined && last !== NEWLINE) yield Buffer.from('\n')
  }
}

/** A JSONL line's value, or undefined when it is not JSON. */
export function parseJsonLine(line: Buffer): unknown {
  try {
    return JSON.parse(line.toString('utf8'))
  } catch {
    return undefined
  }
}

/** A JSONL line's `custom_id`, if it is a JSON object that has a string one. */
export function customIdOf(line: Buffer): string | undefined {
  const value = parseJsonLine(line) as { custom_id?: unknown } | null | undefined
  return typeof value?.custom_id === 'string' ? value.custom_id : undefined
}
