import { createHash, randomBytes } from 'node:crypto'

/**
 * Where the Vertex provider keeps things in its bucket, and its provider file ids.
 *
 * ```
 * gs://{bucket}/{prefix}/files/input-{hex}/original       an upload, byte for byte          id input-{hex}
 * gs://{bucket}/{prefix}/files/input-{hex}/vertex.jsonl   its requests as Gemini lines (batch files only)
 * gs://{bucket}/{prefix}/batches/{hex}/                   a job's outputUriPrefix; Vertex writes prediction-model-…/ in it
 * gs://{bucket}/{prefix}/batches/{hex}/output.jsonl       the OpenAI output file                  id output-{hex}
 * gs://{bucket}/{prefix}/batches/{hex}/error.jsonl        the OpenAI error file                   id error-{hex}
 * gs://{bucket}/{prefix}/batches/{hex}/manifest.json      written last: the conversion is done, with its counts
 * ```
 *
 * Every id names its objects, so no state is needed to find them. An upload's `{hex}` is derived from its
 * tag (batchkit's own file id), so the tag alone finds it; a batch's `{hex}` is 32 random hex digits.
 */
export class Layout {
  /** `{prefix}/` or '' when the prefix is empty. */
  private readonly root: string

  constructor(
    readonly bucket: string,
    prefix: string,
  ) {
    const trimmed = prefix.replace(/^\/+|\/+$/g, '')
    this.root = trimmed === '' ? '' : `${trimmed}/`
  }

  /**
   * The id of the upload tagged `tag`: 32 hex digits of the tag's SHA-256, so that the tag names the
   * upload's objects and one `stat` finds them.
   */
  static inputIdForTag(tag: string): string {
    return `input-${createHash('sha256').update(tag, 'utf8').digest('hex').slice(0, 32)}`
  }

  /** A new batch's key (its output directory). */
  static newBatchKey(): string {
    return randomBytes(16).toString('hex')
  }

  original(inputId: string): string {
    return `${this.root}files/${inputId}/original`
  }

  converted(inputId: string): string {
    return `${this.root}files/${inputId}/vertex.jsonl`
  }

  /** `gs://…/batches/{key}/`: the `outputUriPrefix` of a job. */
  outputUriPrefix(batchKey: string): string {
    return `gs://${this.bucket}/${this.root}batches/${batchKey}/`
  }

  /** The batch key of a job's `outputUriPrefix`, when it is one of this layout's. */
  batchKeyOf(outputUriPrefix: unknown): string | undefined {
    if (typeof outputUriPrefix !== 'string') return undefined
    const head = `gs://${this.bucket}/${this.root}batches/`
    if (!outputUriPrefix.startsWith(head)) return undefined
    const key = outputUriPrefix.slice(head.length).replace(/\/$/, '')
    return /^[0-9a-f]{32}$/.test(key) ? key : undefined
  }

  output(batchKey: string): string {
    return `${this.root}batches/${batchKey}/output.jsonl`
  }

  error(batchKey: string): string {
    return `${this.root}batches/${batchKey}/error.jsonl`
  }

  manifest(batchKey: string): string {
    return `${this.root}batches/${batchKey}/manifest.json`
  }
}

/** A provider file id taken apart. */
export type FileRef = { kind: 'input'; id: string } | { kind: 'output' | 'error'; id: string; batchKey: string }

/** The id of a batch's output or error file. */
export function batchFileId(kind: 'output' | 'error', batchKey: string): string {
  return `${kind}-${batchKey}`
}

/** The parts of a provider file id, or undefined for an id this provider never gave out. */
export function parseFileId(id: string): FileRef | undefined {
  const match = /^(input|output|error)-([0-9a-f]{32})$/.exec(id)
  if (!match) return undefined
  if (match[1] === 'input') return { kind: 'input', id }
  return { kind: match[1] as 'output' | 'error', id, batchKey: match[2]! }
}
