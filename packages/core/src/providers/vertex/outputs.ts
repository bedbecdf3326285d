import { PassThrough } from 'node:stream'
import { ApiError } from '../../errors.js'
import type { BatchUsage } from '../../types.js'
import { concatJsonlSources } from '../../util/lines.js'
import { type GcsClient, type GcsObject, isNotFound, parseGsUri } from './gcs.js'
import { PROVIDER } from './http.js'
import type { Layout } from './layout.js'
import { modelIdOf } from './models.js'
import { routeVertexOutput } from './output-transform.js'
import type { VertexBatchJob } from './types.js'

/** What converting a job's predictions produced; stored as `manifest.json` once both files are in place. */
export interface OutputManifest {
  version: 1
  /** Rows in `output.jsonl`. */
  succeeded: number
  /** Rows in `error.jsonl`. */
  failed: number
  /** Rows in neither: unreadable, or without a custom_id. */
  unattributed: number
  /** The summed usage of the output rows. */
  usage: BatchUsage
}

const noop = (): void => undefined

/** A manifest is a few hundred bytes; anything much larger is not one. */
const MAX_MANIFEST_BYTES = 64 * 1024

/**
 * Converts the predictions of an ended job into `output.jsonl` and `error.jsonl` beside them, once: the
 * manifest, written last, says it is done. The prediction files ({@link predictionFiles} of
 * `outputInfo.gcsOutputDirectory`) are read one after another in name order and routed row by row into two
 * resumable uploads at once, with backpressure; a `custom_id` seen before is skipped. The derived ids are
 * seeded by the job's name and the files are read in a fixed order, so instances converting the same job at
 * once write identical bytes; with `ifGenerationMatch=0` the later writer keeps the earlier object.
 */
export async function convertJobOutputs(
  gcs: GcsClient,
  layout: Layout,
  batchKey: string,
  job: VertexBatchJob,
): Promise<OutputManifest> {
  const existing = await readManifest(gcs, layout, batchKey)
  if (existing) return existing

  const directory = parseGsUri(job.outputInfo?.gcsOutputDirectory ?? '')
  if (!directory) {
    throw new ApiError(502, `The ${PROVIDER} provider reported an output directory batchkit cannot read.`, {
      code: 'upstream_error',
    })
  }
  const prefix = directory.name === '' ? '' : directory.name.replace(/\/*$/, '/')
  const listed: GcsObject[] = []
  for await (const object of gcs.list(directory.bucket, prefix)) listed.push(object)
  const predictions = predictionFiles(listed, prefix)

  const abort = new AbortController()
  const sinks = { output: new PassThrough(), error: new PassThrough() }
  let failure: unknown
  const fail = (error: unknown): void => {
    if (failure !== undefined) return
    failure = error
    abort.abort(error)
    sinks.output.destroy(error as Error)
    sinks.error.destroy(error as Error)
  }
  sinks.output.on('error', noop)
  sinks.error.on('error', noop)
  const uploads = (['output', 'error'] as const).map((kind) =>
    gcs.upload(layout.bucket, kind === 'output' ? layout.output(batchKey) : layout.error(batchKey), sinks[kind], {
      contentType: 'application/jsonl',
      lazy: true,
      ifAbsent: true,
      signal: abort.signal,
    }),
  )
  for (const upload of uploads) upload.catch(fail)

  try {
    const source = concatJsonlSources(
      predictions.map((object) => async () => (await gcs.download(object.bucket, object.name, abort.signal)).body),
    )
    const counts = await routeVertexOutput(source, sinks, {
      model: job.model ? modelIdOf(job.model) : undefined,
      idSeed: job.name,
    })
    sinks.output.end()
    sinks.error.end()
    await Promise.all(uploads)
    const manifest: OutputManifest = {
      version: 1,
      succeeded: counts.succeeded,
      failed: counts.failed,
      unattributed: counts.unattributed,
      usage: counts.usage,
    }
    await gcs.put(layout.bucket, layout.manifest(batchKey), Buffer.from(JSON.stringify(manifest)), {
      contentType: 'application/json',
      ifAbsent: true,
    })
    return manifest
  } catch (error) {
    fail(error)
    await Promise.allSettled(uploads)
    throw failure
  }
}

/** The manifest of a conversion that finished, or null. */
export async function readManifest(gcs: GcsClient, layout: Layout, batchKey: string): Promise<OutputManifest | null> {
  let text = ''
  try {
    const download = await gcs.download(layout.bucket, layout.manifest(batchKey))
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of download.body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_MANIFEST_BYTES) {
        download.body.on('error', noop)
        download.body.destroy()
        return null
      }
      chunks.push(chunk)
    }
    text = Buffer.concat(chunks).toString('utf8')
  } catch (error) {
    if (isNotFound(error)) return null
    throw error
  }
  try {
    const value = JSON.parse(text) as Partial<OutputManifest>
    if (
      value.version === 1 &&
      isCount(value.succeeded) &&
      isCount(value.failed) &&
      isCount(value.unattributed) &&
      typeof value.usage === 'object' &&
      value.usage !== null
    ) {
      return value as OutputManifest
    }
  } catch {
    // Falls through: a manifest batchkit did not write is converted again.
  }
  return null
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/**
 * The prediction files of a job's output directory (`prefix`), in name order. Vertex writes the final
 * `predictions.jsonl` when a job ends and, while it runs, exports finished rows in chunks under
 * `incremental_predictions`: the same rows again. So the final files (every `.jsonl` outside
 * `incremental_predictions`) are read, and the incremental chunks only when there are no final ones.
 */
export function predictionFiles<T extends { name: string }>(objects: readonly T[], prefix: string): T[] {
  const jsonl = objects
    .filter((object) => object.name.endsWith('.jsonl'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const incremental = (object: T): boolean =>
    object.name
      .slice(prefix.length)
      .split('/')
      .some((segment) => segment.startsWith('incremental_predictions'))
  const final = jsonl.filter((object) => !incremental(object))
  return final.length > 0 ? final : jsonl
}
