import type { Dispatcher } from 'undici'
import { ApiError } from '../../errors.js'
import { type BatchErrorEntry, TERMINAL_STATUSES } from '../../types.js'
import { providerLimits } from '../limits.js'
import { searchIncomplete, type TagSearchBounds, type TagSearchOptions, tagSearchBounds } from '../tag-search.js'
import type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderLimits,
  ProviderUpload,
} from '../types.js'
import { tokenSource } from './auth.js'
import { GCS_CHUNK_GRANULE, GcsClient, type GcsObject } from './gcs.js'
import { asObject, type ErrorMapper, GoogleHttp, NO_RETRY, PROVIDER } from './http.js'
import { batchStatusOf, jobErrorsOf, jobTimestamps, requestCountsOf, rfc3339ToSeconds } from './job-state.js'
import { batchFileId, type FileRef, Layout, parseFileId } from './layout.js'
import { modelResource } from './models.js'
import { convertJobOutputs, type OutputManifest } from './outputs.js'
import { BATCH_LABEL_KEY, batchLabelFilter, batchLabelValue } from './tags.js'
import type { VertexBatchJob } from './types.js'
import { FILENAME_METADATA_KEY, MODEL_METADATA_KEY, TAG_METADATA_KEY, uploadInput } from './upload.js'

/** Options of the {@link vertex} provider. */
export interface VertexProviderOptions {
  /** The Google Cloud project that runs the batch prediction jobs. */
  project: string
  /** The Vertex AI location of the jobs, such as `us-central1`, or `global`. */
  location: string
  /** The Cloud Storage bucket for inputs and outputs; best in the jobs' region, readable and writable by the Vertex AI service agent. */
  bucket: string
  /** The folder in the bucket under which everything goes. @default 'batchkit' */
  prefix?: string
  /**
   * An OAuth 2 access token (scope cloud-platform), or a function returning the current one; it is asked
   * before every request, so it should cache. Without it, google-auth-library (an optional peer dependency)
   * supplies tokens from `credentialsFile` or Application Default Credentials. Never shown anywhere.
   */
  accessToken?: string | (() => Promise<string>)
  /** A service-account (or any google-auth-library credentials) JSON file; used when `accessToken` is not given. */
  credentialsFile?: string
  /**
   * The Vertex AI base URL, without `/v1`, for every Vertex call (a private endpoint, a proxy, a fake).
   * @default `https://aiplatform.googleapis.com` for `global`, else `https://{location}-aiplatform.googleapis.com`
   */
  vertexEndpoint?: string
  /** The Cloud Storage JSON API base URL for every storage call. @default 'https://storage.googleapis.com' */
  gcsEndpoint?: string
  /** How long a control call (everything but uploads and downloads) may wait for an answer. @default 60000 */
  timeoutMs?: number
  /** How long an upload or download may sit without moving a byte. @default 300000 */
  idleTimeoutMs?: number
  /** Bytes per resumable-upload chunk, a multiple of 256 KiB; each upload holds one chunk. @default 8 MiB */
  uploadChunkBytes?: number
  /** The undici dispatcher to send requests through. @default a keep-alive Agent of its own */
  dispatcher?: Dispatcher
  /** How far `findBatch` looks through the jobs with the batch's label (`findFile` needs one lookup). */
  search?: TagSearchOptions
  /** What one batch takes, in place of the service's published limits ({@link VERTEX_LIMITS}). */
  limits?: ProviderLimits
}

/** Vertex AI's limits where they differ from OpenAI's: 200,000 requests and 1 GB of input per batch job. */
export const VERTEX_LIMITS = { maxBatchRequests: 200_000, maxBatchFileBytes: 1000 * 1000 * 1000 } as const

/** The only endpoint a Vertex batch runs. */
const CHAT_COMPLETIONS = '/v1/chat/completions'

/** A queued Vertex job expires after 72 hours; a running one is cut off 24 hours after it started. */
const QUEUE_SECONDS = 72 * 60 * 60
const RUN_SECONDS = 24 * 60 * 60

const JOB_NAME = /^projects\/([^/]+)\/locations\/([a-z0-9-]+)\/batchPredictionJobs\/([^/:]+)$/
const SEGMENT = /^[A-Za-z0-9._:-]+$/

/**
 * A provider for Vertex AI batch prediction (Gemini models) with Cloud Storage for the files. Uploads are
 * stored as they came and, for batch files, converted to Gemini batch lines on the way; batches are
 * `batchPredictionJobs` of the model the requests name; their predictions are converted back into OpenAI
 * output and error files, once, when the job ends. See `layout.ts` for where things go in the bucket.
 */
export function vertex(options: VertexProviderOptions): Provider {
  return new VertexProvider(options)
}

class VertexProvider implements Provider {
  readonly kind = 'vertex'
  readonly limits: ProviderLimits
  private readonly project: string
  private readonly location: string
  private readonly layout: Layout
  private readonly http: GoogleHttp
  private readonly gcs: GcsClient
  private readonly vertexEndpoint: string | undefined
  private readonly search: TagSearchBounds
  /** Conversions running in this process, by job name, so concurrent refreshes share one. */
  private readonly converting = new Map<string, Promise<OutputManifest>>()

  constructor(options: VertexProviderOptions) {
    for (const key of ['project', 'location', 'bucket'] as const) {
      if (typeof options[key] !== 'string' || options[key] === '') throw new TypeError(`vertex(): ${key} is required`)
    }
    if (!SEGMENT.test(options.project)) throw new TypeError('vertex(): project is not a valid project id')
    if (!/^[a-z0-9-]+$/.test(options.location)) throw new TypeError('vertex(): location is not a valid location')
    if (/[/\s]/.test(options.bucket)) throw new TypeError('vertex(): bucket is a bucket name, without gs:// or /')
    this.project = options.project
    this.location = options.location
    this.layout = new Layout(options.bucket, options.prefix ?? 'batchkit')
    this.search = tagSearchBounds(options.search, 'vertex')
    this.limits = providerLimits(options.limits, VERTEX_LIMITS, 'vertex')
    this.vertexEndpoint = options.vertexEndpoint ? baseUrl(options.vertexEndpoint, 'vertexEndpoint') : undefined
    this.http = new GoogleHttp({
      token: tokenSource(options),
      timeoutMs: options.timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      dispatcher: options.dispatcher,
    })
    this.gcs = new GcsClient(
      this.http,
      baseUrl(options.gcsEndpoint ?? 'https://storage.googleapis.com', 'gcsEndpoint'),
      options.uploadChunkBytes ?? 32 * GCS_CHUNK_GRANULE,
    )
  }

  /** Stores the upload under the id its tag names (see {@link Layout.inputIdForTag}), with the tag in its metadata. */
  uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    return uploadInput(this.gcs, this.layout, Layout.inputIdForTag(upload.tag), upload)
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    const ref = this.ref(id)
    const { bucket, name } = this.objectOf(ref)
    const object = await this.gcs.stat(bucket, name)
    if (!object) throw gone()
    return this.fileOf(id, ref, object)
  }

  /** One `stat` of the object the tag names; it counts when its metadata carries the tag and it is new enough. */
  async findFile(tag: string, since: number): Promise<ProviderFile | undefined> {
    const id = Layout.inputIdForTag(tag)
    const ref = this.ref(id)
    const object = await this.gcs.stat(this.layout.bucket, this.objectOf(ref).name)
    if (!object || object.metadata[TAG_METADATA_KEY] !== tag) return undefined
    const createdAt = rfc3339ToSeconds(object.timeCreated)
    if (createdAt !== null && createdAt < since) return undefined
    return this.fileOf(id, ref, object)
  }

  private fileOf(id: string, ref: FileRef, object: GcsObject): ProviderFile {
    return {
      id,
      bytes: object.size,
      createdAt: rfc3339ToSeconds(object.timeCreated) ?? Math.floor(Date.now() / 1000),
      expiresAt: null,
      filename: ref.kind === 'input' ? (object.metadata[FILENAME_METADATA_KEY] ?? 'file.jsonl') : `${ref.kind}.jsonl`,
    }
  }

  async downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    const { bucket, name } = this.objectOf(this.ref(id))
    return this.gcs.download(bucket, name, signal)
  }

  async deleteFile(id: string): Promise<void> {
    const ref = this.ref(id)
    const names = [this.objectOf(ref).name]
    if (ref.kind === 'input') names.push(this.layout.converted(ref.id))
    const deleted = await Promise.all(names.map((name) => this.gcs.delete(this.layout.bucket, name)))
    if (!deleted.some(Boolean)) throw gone()
  }

  async createBatch(request: ProviderBatchRequest): Promise<ProviderBatch> {
    if (request.endpoint !== CHAT_COMPLETIONS) {
      throw new ApiError(
        400,
        `The Vertex AI provider runs only '${CHAT_COMPLETIONS}' batches, not '${request.endpoint}'.`,
        { param: 'endpoint', code: 'unsupported_for_provider' },
      )
    }
    const ref = parseFileId(request.inputFileId)
    if (ref?.kind !== 'input') {
      throw new ApiError(400, 'The input file is not a batch input file of the Vertex AI provider.', {
        param: 'input_file_id',
        code: 'invalid_value',
      })
    }
    const converted = await this.gcs.stat(this.layout.bucket, this.layout.converted(ref.id))
    if (!converted) throw gone()
    const model = converted.metadata[MODEL_METADATA_KEY]
    if (!model) {
      throw new ApiError(400, "The input file's requests name no model; Vertex AI needs one per batch.", {
        param: 'input_file_id',
        code: 'invalid_value',
      })
    }
    const batchKey = Layout.newBatchKey()
    const body = {
      displayName: `batchkit ${batchKey} ${ref.id} ${model}`.slice(0, 128),
      model: modelResource(model),
      inputConfig: {
        instancesFormat: 'jsonl',
        gcsSource: { uris: [GcsClient.uri(this.layout.bucket, this.layout.converted(ref.id))] },
      },
      outputConfig: {
        predictionsFormat: 'jsonl',
        gcsDestination: { outputUriPrefix: this.layout.outputUriPrefix(batchKey) },
      },
      labels: { [BATCH_LABEL_KEY]: batchLabelValue(request.tag) },
    }
    const job = toJob(
      await this.http.json('POST', this.collectionUrl(), body, { mapError: createErrors(model, this.location) }),
    )
    return this.toBatch(job)
  }

  async retrieveBatch(id: string): Promise<ProviderBatch> {
    return this.toBatch(toJob(await this.http.json('GET', this.jobUrl(id))))
  }

  async cancelBatch(id: string): Promise<ProviderBatch> {
    const response = await this.http.send('POST', `${this.jobUrl(id)}:cancel`, {
      body: '{}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      mapError: cancelErrors,
    })
    // Vertex answers `{}`: the batch is read back whole.
    await response.body.dump()
    return this.retrieveBatch(id)
  }

  /**
   * Lists the jobs of the configured location with the tag's label (`filter=labels.batchkit_batch="…"`),
   * page by page up to the search bound; the newest created at or after `since` is the batch.
   */
  async findBatch(tag: string, since: number): Promise<ProviderBatch | undefined> {
    const filter = batchLabelFilter(tag)
    let newest: { job: VertexBatchJob; createdAt: number } | undefined
    let pageToken: string | undefined
    for (let page = 0; page < this.search.maxPages; page++) {
      const query = new URLSearchParams({ filter, pageSize: String(this.search.pageSize) })
      if (pageToken) query.set('pageToken', pageToken)
      const list = asObject(await this.http.json('GET', `${this.collectionUrl()}?${query}`))
      const jobs = Array.isArray(list.batchPredictionJobs) ? list.batchPredictionJobs.map(toJob) : []
      for (const job of jobs) {
        const createdAt = rfc3339ToSeconds(job.createTime) ?? since
        if (createdAt >= since && (!newest || createdAt > newest.createdAt)) newest = { job, createdAt }
      }
      pageToken = typeof list.nextPageToken === 'string' && list.nextPageToken !== '' ? list.nextPageToken : undefined
      if (!pageToken) return newest && this.toBatch(newest.job)
    }
    throw searchIncomplete(PROVIDER, 'batch', this.search.maxPages)
  }

  close(): Promise<void> {
    return this.http.close()
  }

  /** The job as a batch; an ended job with predictions gets its output and error files (converted once). */
  private async toBatch(job: VertexBatchJob): Promise<ProviderBatch> {
    const status = batchStatusOf(job.state)
    const times = jobTimestamps(job)
    let requestCounts = requestCountsOf(job.completionStats)
    let errors = jobErrorsOf(job)
    let usage: ProviderBatch['usage'] = null
    let outputFileId: string | null = null
    let errorFileId: string | null = null

    if (TERMINAL_STATUSES.has(status) && job.outputInfo?.gcsOutputDirectory) {
      const batchKey = this.layout.batchKeyOf(job.outputConfig?.gcsDestination?.outputUriPrefix)
      if (!batchKey) {
        throw new ApiError(502, `The ${PROVIDER} provider's job writes outside the configured bucket and prefix.`, {
          code: 'upstream_error',
          headers: NO_RETRY,
        })
      }
      const manifest = await this.outputsOf(job, batchKey)
      if (manifest.succeeded > 0) outputFileId = batchFileId('output', batchKey)
      if (manifest.failed > 0) errorFileId = batchFileId('error', batchKey)
      usage = manifest.usage
      // The files are the truth: rows that could not be attributed count as failed, and are reported.
      const failed = manifest.failed + manifest.unattributed
      requestCounts = {
        completed: manifest.succeeded,
        failed,
        total: Math.max(requestCounts.total, manifest.succeeded + failed),
      }
      if (manifest.unattributed > 0) errors = [...(errors ?? []), unattributedEntry(manifest.unattributed)]
    }

    const startedAt = times.inProgressAt
    return {
      id: job.name,
      status,
      inProgressAt: times.inProgressAt,
      expiresAt:
        startedAt !== null
          ? startedAt + RUN_SECONDS
          : times.createdAt !== null
            ? times.createdAt + QUEUE_SECONDS
            : null,
      finalizingAt: null,
      completedAt: times.completedAt,
      failedAt: times.failedAt,
      expiredAt: times.expiredAt,
      cancellingAt: times.cancellingAt,
      cancelledAt: times.cancelledAt,
      requestCounts,
      errors,
      usage,
      outputFileId,
      errorFileId,
    }
  }

  private outputsOf(job: VertexBatchJob, batchKey: string): Promise<OutputManifest> {
    let running = this.converting.get(job.name)
    if (!running) {
      running = convertJobOutputs(this.gcs, this.layout, batchKey, job).finally(() => this.converting.delete(job.name))
      this.converting.set(job.name, running)
    }
    return running
  }

  private ref(id: string): FileRef {
    const ref = parseFileId(id)
    if (!ref) throw gone()
    return ref
  }

  private objectOf(ref: FileRef): { bucket: string; name: string } {
    const name =
      ref.kind === 'input'
        ? this.layout.original(ref.id)
        : ref.kind === 'output'
          ? this.layout.output(ref.batchKey)
          : this.layout.error(ref.batchKey)
    return { bucket: this.layout.bucket, name }
  }

  /** `…/v1/projects/{p}/locations/{l}/batchPredictionJobs`. */
  private collectionUrl(): string {
    return `${this.vertexBase(this.location)}/v1/projects/${this.project}/locations/${this.location}/batchPredictionJobs`
  }

  /** The URL of a job by its name (or bare id, in the configured project and location), in the job's own location. */
  private jobUrl(id: string): string {
    const name = /^[0-9]+$/.test(id)
      ? `projects/${this.project}/locations/${this.location}/batchPredictionJobs/${id}`
      : id
    const match = JOB_NAME.exec(name)
    if (!match || !SEGMENT.test(match[1]!) || !SEGMENT.test(match[3]!)) throw gone()
    return `${this.vertexBase(match[2]!)}/v1/${name}`
  }

  private vertexBase(location: string): string {
    if (this.vertexEndpoint) return this.vertexEndpoint
    return location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${location}-aiplatform.googleapis.com`
  }
}

function toJob(value: unknown): VertexBatchJob {
  const job = asObject(value)
  if (typeof job.name !== 'string' || !JOB_NAME.test(job.name)) {
    throw new ApiError(502, `The ${PROVIDER} provider answered with an object batchkit does not recognise.`, {
      code: 'upstream_error',
    })
  }
  return job as unknown as VertexBatchJob
}

function baseUrl(value: string, option: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`vertex(): ${option} must be an absolute http(s) URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`vertex(): ${option} must be an absolute http(s) URL`)
  }
  return value.replace(/\/+$/, '')
}

/** The shared "no longer has this object" of {@link upstreamError}, for objects found missing without an error answer. */
function gone(): ApiError {
  return new ApiError(502, `The ${PROVIDER} provider no longer has this object.`, {
    code: 'upstream_not_found',
    headers: NO_RETRY,
  })
}

function unattributedEntry(rows: number): BatchErrorEntry {
  return {
    code: 'unattributed_rows',
    message: `Vertex AI wrote ${rows} prediction row${rows === 1 ? '' : 's'} that carr${rows === 1 ? 'ies' : 'y'} no custom_id batchkit can read (or that could not be parsed); ${rows === 1 ? 'it is' : 'they are'} in neither the output nor the error file, and counted as failed.`,
    param: null,
    line: null,
  }
}

/**
 * A create refused with 404 means the project, the location or the model is not there (or not visible to
 * these credentials): said plainly, without Google's text.
 */
function createErrors(model: string, location: string): ErrorMapper {
  return (error) => {
    if (error.statusCode === 404) {
      if (/\bmodel\b/i.test(error.message)) {
        return new ApiError(
          502,
          `Vertex AI has no model '${model}' in the ${PROVIDER} provider's location '${location}' (or batchkit's credentials cannot use it); check the model name and the provider's location.`,
          { code: 'upstream_model_not_found', headers: NO_RETRY },
        )
      }
      return new ApiError(
        502,
        `Vertex AI answered 404 to creating the batch job: the ${PROVIDER} provider's project or location '${location}' is wrong, Vertex AI is not enabled in that project, or batchkit's credentials cannot see it. Check the provider's project and location.`,
        { code: 'upstream_location_not_found', headers: NO_RETRY },
      )
    }
    if (error.statusCode === 400) {
      return new ApiError(
        502,
        `Vertex AI refused to create the batch job${error.rpcStatus ? ` (${error.rpcStatus.toLowerCase()})` : ''}; check that model '${model}' runs batch prediction in location '${location}' and that the provider's bucket is usable from there.`,
        { code: 'upstream_invalid_request', headers: NO_RETRY },
      )
    }
    return undefined
  }
}

/** Vertex refuses to cancel a job that has ended with a 400 FAILED_PRECONDITION: that is a conflict of states. */
const cancelErrors: ErrorMapper = (error) =>
  error.statusCode === 400 || error.statusCode === 409
    ? new ApiError(409, `The ${PROVIDER} provider refused the change in the object's current state.`, {
        code: 'upstream_conflict',
        headers: NO_RETRY,
      })
    : undefined
