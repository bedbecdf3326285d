import type { FailNextOptions } from '../fake-openai/types.js'

/** Every value of Vertex's `JobState` enum. */
export type VertexJobState =
  | 'JOB_STATE_UNSPECIFIED'
  | 'JOB_STATE_QUEUED'
  | 'JOB_STATE_PENDING'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLING'
  | 'JOB_STATE_CANCELLED'
  | 'JOB_STATE_PAUSED'
  | 'JOB_STATE_EXPIRED'
  | 'JOB_STATE_UPDATING'
  | 'JOB_STATE_PARTIALLY_SUCCEEDED'

/** A GCS object as the fake stores it. */
export interface FakeGcsObject {
  bucket: string
  name: string
  /** Bytes. */
  size: number
  contentType: string
  /** Microseconds since the epoch, as a string, like GCS. */
  generation: string
  md5Hash: string
  crc32c: string
  timeCreated: string
  updated: string
  /** Custom metadata given at upload. */
  metadata?: Record<string, string>
  /** Absolute path of the bytes inside the fake's data directory. */
  readonly path: string
}

/** A `BatchPredictionJob` resource exactly as the fake serves it (proto3 JSON: absent fields omitted). */
export interface FakeVertexJob {
  name: string
  displayName: string
  model: string
  inputConfig: { instancesFormat: string; gcsSource: { uris: string[] } }
  outputConfig: { predictionsFormat: string; gcsDestination: { outputUriPrefix: string } }
  instanceConfig?: { excludedFields?: string[]; includedFields?: string[]; instanceType?: string; keyField?: string }
  labels?: Record<string, string>
  state: VertexJobState
  /** Set when the job failed, and (`{code: 1, message: 'CANCELED'}`) when it was cancelled. */
  error?: { code: number; message: string }
  /** int64 counters as strings; zero counters omitted, as proto3 JSON does. */
  completionStats?: { successfulCount?: string; failedCount?: string; incompleteCount?: string }
  outputInfo?: { gcsOutputDirectory: string }
  createTime: string
  startTime?: string
  endTime?: string
  updateTime: string
}

/** How the next created job ends (see {@link FakeGcp.nextJob}). */
export interface FakeJobOutcome {
  /**
   * The terminal state. `JOB_STATE_SUCCEEDED` (default) and `JOB_STATE_PARTIALLY_SUCCEEDED` write predictions;
   * `JOB_STATE_FAILED` ends with `error` and no output; `JOB_STATE_EXPIRED` never starts (expires on the first poll).
   */
  state?: 'JOB_STATE_SUCCEEDED' | 'JOB_STATE_PARTIALLY_SUCCEEDED' | 'JOB_STATE_FAILED' | 'JOB_STATE_EXPIRED'
  /**
   * 1-based input lines whose rows get an error `status` instead of a response. Default: none, or `[1]` for
   * `JOB_STATE_PARTIALLY_SUCCEEDED`.
   */
  failLines?: number[]
  /**
   * The job's `error` for `JOB_STATE_FAILED`, or a function of the job's resource name giving it (Vertex's
   * messages may name the job, and with it the project). Default `{code: 13, message: 'Fake internal failure of the job.'}`.
   */
  error?: { code: number; message: string } | ((jobName: string) => { code: number; message: string })
  /**
   * Which prediction files the job leaves under its `prediction-model-…` directory: the final
   * `predictions.jsonl` and the `incremental_predictions/` chunks Vertex exports while a job runs (each row
   * in both), or only one kind. Default `'final-and-incremental'`.
   */
  output?: 'final-and-incremental' | 'final' | 'incremental'
  /** The `finishReason` of the candidates of some 1-based input lines, such as `{ 2: 'MODEL_ARMOR' }`. */
  finishReasons?: Record<number, string>
}

/** Options of {@link startFakeGcp}. */
export interface FakeGcpOptions {
  /** The OAuth access token every request must present as `Authorization: Bearer <token>`. Default `'fake-gcp-token'`. */
  token?: string
  /** Interface to bind; only loopback addresses are accepted. Default `'127.0.0.1'`. */
  host?: string
  /** Port of the GCS server. Default `0` (any free port). */
  gcsPort?: number
  /** Port of the Vertex server. Default `0` (any free port). */
  vertexPort?: number
  /**
   * How jobs advance. `'per-poll'`: one step on every `GET …/batchPredictionJobs/{id}`
   * (PENDING → RUNNING → SUCCEEDED); a number: one step every that many milliseconds. Default `'per-poll'`.
   */
  progress?: 'per-poll' | number
  /** Directory holding the object bytes. Default: a fresh temporary directory removed on `close()`. */
  dataDir?: string
  /** When set, only these buckets exist; others answer 404. Default: every bucket exists. */
  buckets?: string[]
  /** When set, Vertex paths for another project answer 404. */
  project?: string
  /** When set, Vertex paths for another location answer 404. */
  location?: string
  /**
   * Granularity of resumable uploads: a non-final chunk is persisted only up to a multiple of this many bytes
   * (the 308 `Range` says how far), like GCS's 256 KiB. Default 262144.
   */
  resumableChunkBytes?: number
  /**
   * Whether an upload's `x-goog-hash` (`crc32c=…`, `md5=…`, sent with a simple upload or the last chunk of a
   * resumable one) is checked against the bytes received, refusing a mismatch with GCS's 400. Default true;
   * false plays a store that does not check, so the client's own check of the object it gets back is what stands.
   */
  verifyUploadHashes?: boolean
}

/** What {@link FakeGcp.corruptNext} damages: the bytes of the next upload stored, or of the next media download sent. */
export type FakeGcsCorruption = 'upload' | 'download'

/** One request the fake received. */
export interface FakeGcpRequest {
  service: 'gcs' | 'vertex'
  method: string
  /** Path without the query string. */
  path: string
  /** The query string, without `?` (empty when none). */
  query: string
}

/** A running fake of GCS's JSON API and Vertex AI's batch prediction jobs. */
export interface FakeGcp {
  /** Origin of the GCS server, e.g. `http://127.0.0.1:PORT` (paths `/storage/v1/…`, `/upload/storage/v1/…`, `/download/storage/v1/…`). */
  gcsBaseURL: string
  /** Origin of the Vertex server, e.g. `http://127.0.0.1:PORT` (paths `/v1/projects/{p}/locations/{l}/…`). */
  vertexBaseURL: string
  token: string
  /** Live view of the stored objects, keyed `bucket/name`. */
  objects: ReadonlyMap<string, FakeGcsObject>
  /** Live view of the jobs, by job id (the last segment of `name`). */
  jobs: ReadonlyMap<string, FakeVertexJob>
  /** Every request received, in order. */
  requests: FakeGcpRequest[]
  /** The next created job ends as `outcome` says (queued: each call applies to one job). */
  nextJob(outcome: FakeJobOutcome): void
  /** Forces a job into any state (and stamps `updateTime`, plus `endTime` for terminal states); no output is written. */
  setJobState(jobId: string, state: VertexJobState): void
  /** Injects failures with Google's error bodies (before authentication), like the fake OpenAI's `failNext`. */
  failNext(opts: FailNextOptions): void
  /**
   * Flips one byte of the next upload the fake stores (before it checks `x-goog-hash`, as if damaged on the
   * way), or of the next media download it sends (its `x-goog-hash` still that of the stored bytes).
   * Queued: each call applies to one upload or download.
   */
  corruptNext(what: FakeGcsCorruption): void
  /** The bytes of an object (test helper; throws if there is none). */
  readObject(bucket: string, name: string): Promise<Buffer>
  /** Stops both servers and removes the default data directory. */
  close(): Promise<void>
}
