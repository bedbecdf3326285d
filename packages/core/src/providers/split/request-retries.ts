import { ApiError } from '../../errors.js'
import { CompactStringSet } from '../../util/compact-string-set.js'
import { LineSplitter } from '../../util/lines.js'
import type { Provider } from '../types.js'

/**
 * Automatic retries of the requests of a batch that failed for a transient reason (a rate limit, a
 * server error or timeout of the provider's, as its error file reports them): once every provider
 * batch of the batch has ended, the requests whose error line says so are run again as a follow-up
 * provider batch of the same batchkit batch, up to `attempts` times. Off by default. Requests that
 * failed for any other reason (a 400: the request itself is wrong) are never run again, nor are the
 * requests of a batch that was cancelled or expired.
 */
export interface RequestRetryOptions {
  /** How many follow-up rounds at most; 0 turns retries off. @default 0 */
  attempts?: number
}

/** HTTP statuses of a request's result that another run may not meet: timeouts, rate limits, server errors. */
function transientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** Error codes of a request that never got a response, for the same reasons. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'rate_limit_exceeded',
  'server_error',
  'internal_error',
  'service_unavailable',
  'timeout',
])

/** The `custom_id` of an error-file line that failed for a transient reason, else undefined. */
export function transientFailureOf(line: Buffer): string | undefined {
  const value = parseLine(line) as {
    custom_id?: unknown
    response?: { status_code?: unknown } | null
    error?: { code?: unknown } | null
  }
  if (typeof value?.custom_id !== 'string') return undefined
  const status = value.response?.status_code
  if (typeof status === 'number') return transientStatus(status) ? value.custom_id : undefined
  const code = value.error?.code
  return typeof code === 'string' && TRANSIENT_CODES.has(code) ? value.custom_id : undefined
}

/** The `custom_id`s that `pick` takes from the lines of the provider's files, read in order. */
export async function customIdsIn(
  provider: Provider,
  fileIds: readonly string[],
  pick: (line: Buffer) => string | undefined,
): Promise<CompactStringSet> {
  const ids = new CompactStringSet()
  for await (const line of linesOf(provider, fileIds)) {
    const id = pick(line)
    if (id !== undefined) ids.add(id)
  }
  return ids
}

/**
 * The lines of the provider's files, in order, each without its newline; only the line being read is
 * held. `signal` aborts the downloads.
 */
export async function* linesOf(
  provider: Provider,
  fileIds: readonly string[],
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  for (const fileId of fileIds) {
    const splitter = new LineSplitter(MAX_LINE_BYTES, lineTooLong)
    const lines: Buffer[] = []
    const collect = (line: Buffer) => {
      if (line.length > 0) lines.push(line)
    }
    const { body } = await provider.downloadFile(fileId, signal)
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      splitter.push(chunk, collect)
      yield* lines.splice(0)
    }
    splitter.end(collect)
    yield* lines.splice(0)
  }
}

/** Lines longer than this in a provider's output, error or input file are a provider fault. */
const MAX_LINE_BYTES = 64 * 1024 * 1024

function lineTooLong(line: number, max: number): ApiError {
  return new ApiError(502, `Line ${line} of a file the provider holds is longer than ${max} bytes.`, {
    code: 'upstream_error',
  })
}

function parseLine(line: Buffer): unknown {
  try {
    return JSON.parse(line.toString('utf8'))
  } catch {
    return undefined
  }
}
