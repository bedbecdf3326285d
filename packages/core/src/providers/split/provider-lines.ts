import { ApiError } from '../../errors.js'
import { CompactStringSet } from '../../util/compact-string-set.js'
import { LineSplitter } from '../../util/lines.js'
import type { Provider } from '../types.js'

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
