import { Transform, type TransformCallback } from 'node:stream'

const NEWLINE = 0x0a

/**
 * Renames the model of every request line on its way to a provider (`gpt-4o-mini` → an Azure
 * deployment), and back again when the file is read. Only the value of the `"model"` key is
 * replaced, in place, so every other byte stays as the client wrote it and the reverse rename
 * gives the client's bytes back. A line where that is not possible (the key twice, the model
 * written with escapes) is re-serialised instead, and `exact` turns false.
 */
export class ModelRewrite extends Transform {
  /** Whether renaming back restores every line byte for byte. */
  exact = true
  private pending: Buffer[] = []
  private readonly pattern: RegExp
  private readonly replacement: string

  constructor(
    private readonly from: string,
    private readonly to: string,
  ) {
    super()
    this.pattern = modelPattern(from)
    this.replacement = JSON.stringify(to)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let start = 0
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start)
      if (newline === -1) break
      const piece = chunk.subarray(start, newline + 1)
      const line = this.pending.length > 0 ? Buffer.concat([...this.pending, piece]) : piece
      this.pending = []
      this.push(this.rewrite(line))
      start = newline + 1
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start))
    callback()
  }

  override _flush(callback: TransformCallback): void {
    if (this.pending.length > 0) this.push(this.rewrite(Buffer.concat(this.pending)))
    callback()
  }

  private rewrite(line: Buffer): Buffer {
    const text = line.toString('utf8')
    const matches = text.match(this.pattern)?.length ?? 0
    if (matches === 0 && !text.includes(`"model"`)) return line
    if (matches === 1) {
      const out = text.replace(
        this.pattern,
        (_all, before: string, after: string) => `"model"${before}:${after}${this.replacement}`,
      )
      if ((out.match(modelPattern(this.to))?.length ?? 0) !== 1) this.exact = false
      return Buffer.from(out, 'utf8')
    }
    return this.reserialise(line, text)
  }

  private reserialise(line: Buffer, text: string): Buffer {
    try {
      const request = JSON.parse(text) as { body?: { model?: unknown } }
      if (request.body?.model !== this.from) return line
      this.exact = false
      const ending = text.endsWith('\r\n') ? '\r\n' : text.endsWith('\n') ? '\n' : ''
      return Buffer.from(
        `${JSON.stringify({ ...request, body: { ...request.body, model: this.to } })}${ending}`,
        'utf8',
      )
    } catch {
      return line
    }
  }
}

function modelPattern(model: string): RegExp {
  return new RegExp(`"model"(\\s*):(\\s*)${JSON.stringify(model).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'g')
}
