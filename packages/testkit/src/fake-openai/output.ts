import { once } from 'node:events'
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { finished } from 'node:stream/promises'
import { isRecord } from './http.js'
import { newBatchRequestId, newRequestId } from './ids.js'
import { fakeFailureBody, fakeResponseBody, fakeServerErrorBody, type InputLine } from './responses.js'
import type { BatchUsage } from './types.js'
import { addUsage, emptyBatchUsage, fakeUsage } from './usage.js'

/** Why requests that never ran end up in the error file. */
export interface SkipReason {
  code: 'batch_cancelled' | 'batch_expired'
  message: string
}

export const SKIPPED_BY_CANCEL: SkipReason = {
  code: 'batch_cancelled',
  message: 'This request was not executed because the batch was cancelled.',
}

export const SKIPPED_BY_EXPIRY: SkipReason = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
}

export interface ResultsPlan {
  /** The validated JSONL input. */
  inputPath: string
  /** Where the output file goes; it is created only if at least one request succeeds. */
  outputPath: string
  /** Where the error file goes; it is created only if at least one request fails or is skipped. */
  errorPath: string
  /** How many requests (in input order) ran; the rest are written as skipped. */
  processed: number
  /** Why the requests after `processed` did not run. */
  skipReason: SkipReason
  /** Create the error file even when nothing failed (Azure OpenAI does; OpenAI does not). */
  alwaysWriteErrorFile?: boolean
  /**
   * How many times each `flaky-N-…` request has failed so far, shared by the fake's batches: such a request
   * fails with a 500 its first N runs, as a transient server error would, and then succeeds.
   */
  flakyRuns?: Map<string, number>
}

export interface Results {
  /** Size of the output file, or null when none was written. */
  outputBytes: number | null
  /** Size of the error file, or null when none was written. */
  errorBytes: number | null
  completed: number
  failed: number
  usage: BatchUsage
}

/**
 * Runs the fake endpoint over a batch input file and writes OpenAI's output and error JSONL files, streaming
 * line by line so input of any size stays out of memory.
 */
export async function writeResults(plan: ResultsPlan): Promise<Results> {
  const output = new LazyLineWriter(plan.outputPath)
  const errors = new LazyLineWriter(plan.errorPath)
  const usage = emptyBatchUsage()
  let completed = 0
  let failed = 0
  let index = 0

  const input = createReadStream(plan.inputPath)
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  try {
    for await (const text of lines) {
      if (text.trim() === '') continue
      index++
      const line = parseLine(text)
      if (index > plan.processed) {
        failed++
        await errors.write({
          id: newBatchRequestId(),
          custom_id: line.custom_id,
          response: null,
          error: plan.skipReason,
        })
      } else if (flakyFailsNow(line.custom_id, plan.flakyRuns)) {
        failed++
        await errors.write({
          id: newBatchRequestId(),
          custom_id: line.custom_id,
          response: { status_code: 500, request_id: newRequestId(), body: fakeServerErrorBody() },
          error: null,
        })
      } else if (line.custom_id.startsWith('fail-')) {
        failed++
        await errors.write({
          id: newBatchRequestId(),
          custom_id: line.custom_id,
          response: { status_code: 400, request_id: newRequestId(), body: fakeFailureBody(line) },
          error: null,
        })
      } else {
        completed++
        const lineUsage = fakeUsage(line)
        addUsage(usage, lineUsage)
        await output.write({
          id: newBatchRequestId(),
          custom_id: line.custom_id,
          response: { status_code: 200, request_id: newRequestId(), body: fakeResponseBody(line, lineUsage) },
          error: null,
        })
      }
    }
  } catch (error) {
    output.destroy()
    errors.destroy()
    throw error
  } finally {
    lines.close()
    input.destroy()
  }
  if (plan.alwaysWriteErrorFile) errors.open()
  return { outputBytes: await output.close(), errorBytes: await errors.close(), completed, failed, usage }
}

/** Whether a `flaky-N-…` request fails this run (its first N runs do), counting the run. */
function flakyFailsNow(customId: string, runs: Map<string, number> | undefined): boolean {
  const times = /^flaky-(\d+)-/.exec(customId)?.[1]
  if (times === undefined || runs === undefined) return false
  const failed = runs.get(customId) ?? 0
  if (failed >= Number(times)) return false
  runs.set(customId, failed + 1)
  return true
}

/** Input lines were validated before the batch started, so this only narrows the type. */
function parseLine(text: string): InputLine {
  const value: unknown = JSON.parse(text)
  if (!isRecord(value) || typeof value.custom_id !== 'string' || !isRecord(value.body)) {
    throw new Error('batch input changed after validation')
  }
  return { custom_id: value.custom_id, method: String(value.method), url: String(value.url), body: value.body }
}

/** A JSONL writer that creates its file on the first line and respects backpressure. */
class LazyLineWriter {
  private stream: WriteStream | undefined
  private failure: Error | undefined

  constructor(private readonly path: string) {}

  async write(record: unknown): Promise<void> {
    if (this.failure) throw this.failure
    const stream = this.open()
    if (!stream.write(`${JSON.stringify(record)}\n`)) await once(stream, 'drain')
  }

  /** Creates the file now if no line has yet. */
  open(): WriteStream {
    if (!this.stream) {
      this.stream = createWriteStream(this.path)
      this.stream.on('error', (error) => {
        this.failure = error
      })
    }
    return this.stream
  }

  /** Flushes and closes the file; resolves to its size, or null if nothing was written. */
  async close(): Promise<number | null> {
    if (!this.stream) return null
    this.stream.end()
    await finished(this.stream)
    return this.stream.bytesWritten
  }

  destroy(): void {
    this.stream?.destroy()
  }
}
