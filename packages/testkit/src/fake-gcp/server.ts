import { mkdtemp, readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Faults } from '../fake-openai/faults.js'
import { assertLoopback, assertProgress, stopper } from '../loopback.js'
import {
  errorForStatus,
  type GcpService,
  GoogleError,
  invalidCredentials,
  missingCredentials,
  sendError,
} from './errors.js'
import { type GcsContext, gcsNeedsAuth, handleGcs } from './gcs.js'
import { JobRunner } from './job-runner.js'
import { GcsStore } from './storage.js'
import type { FakeGcp, FakeGcpOptions, FakeGcpRequest } from './types.js'
import { handleVertex, type VertexContext } from './vertex.js'

const DEFAULT_CHUNK_BYTES = 256 * 1024

/**
 * Starts loopback fakes of Google Cloud Storage's JSON API and Vertex AI's batch prediction jobs, on two ports
 * (so a client that sends a call to the wrong endpoint gets a 404). Bytes live on disk and are streamed.
 *
 * GCS: resumable uploads (`POST /upload/storage/v1/b/{bucket}/o?uploadType=resumable` → `Location`; `PUT`
 * chunks with `Content-Range`, 308 with `Range` until the last one), simple media uploads, object metadata,
 * `?alt=media` downloads (with `x-goog-hash`), list with `prefix`/`delimiter`/paging, delete. An upload's
 * `x-goog-hash` is checked against the bytes received; `corruptNext` damages one upload or download.
 *
 * Vertex: create (the body is checked; a publisher model id with a slash is a 404), get (one step per poll:
 * PENDING → RUNNING → SUCCEEDED), list with a filter subset, `:cancel` (answers `{}`; the job ends CANCELLED
 * with `error` CANCELLED), delete. A finished job writes its rows, in a shuffled order, to
 * `{outputUriPrefix}/prediction-model-<time>/predictions.jsonl` and again to `incremental_predictions/` chunks
 * beside it, as Vertex exports rows while a job runs; answers in multibyte text, usage from
 * {@link fakeGeminiUsage}. Like Gemini, a row fails for what Vertex refuses (see `gemini-rules.ts`:
 * penalties on 2.5+, Gemini 3 function calls sent back without their thought signature, function names,
 * int32 seeds, unsupported schema keywords), and `instanceConfig.excludedFields` applies to custom models only.
 */
export async function startFakeGcp(options: FakeGcpOptions = {}): Promise<FakeGcp> {
  const token = options.token ?? 'fake-gcp-token'
  const host = options.host ?? '127.0.0.1'
  const progress = options.progress ?? 'per-poll'
  const chunkBytes = options.resumableChunkBytes ?? DEFAULT_CHUNK_BYTES
  assertLoopback('startFakeGcp', host)
  assertProgress(progress)
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
    throw new RangeError('resumableChunkBytes must be a positive integer')

  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'fake-gcp-')))
  const urlHost = host.includes(':') ? `[${host}]` : host
  let gcsOrigin = ''
  const store = new GcsStore(dataDir, options.buckets ? new Set(options.buckets) : undefined, () => gcsOrigin)
  await store.init()
  const runner = new JobRunner(store, dataDir, progress)
  const gcs: GcsContext = {
    store,
    origin: () => gcsOrigin,
    chunkBytes,
    sessions: new Map(),
    verifyUploadHashes: options.verifyUploadHashes ?? true,
    corruptions: [],
  }
  const vertex: VertexContext = { runner, project: options.project, location: options.location }
  const faults = new Faults()
  const requests: FakeGcpRequest[] = []
  const hanging = new Set<ServerResponse>()

  async function handle(service: GcpService, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const url = new URL(req.url ?? '/', 'http://fake.invalid')
    requests.push({ service, method, path: url.pathname, query: url.search.slice(1) })

    const fault = faults.take(method, url.pathname)
    if (fault === 'hang') {
      hanging.add(res)
      return
    }
    if (fault === 'reset') {
      req.socket.destroy()
      return
    }
    if (fault !== undefined) throw errorForStatus(fault)

    if (service === 'vertex' || gcsNeedsAuth(method, url)) {
      const authorization = req.headers.authorization
      if (!authorization) throw missingCredentials()
      if (!/^Bearer\s+/i.test(authorization) || authorization.replace(/^Bearer\s+/i, '') !== token) {
        throw invalidCredentials()
      }
    }
    if (service === 'gcs') return handleGcs(gcs, req, res, url)
    return handleVertex(vertex, req, res, url)
  }

  const serverFor = (service: GcpService): Server =>
    createServer((req, res) => {
      handle(service, req, res).catch((error: unknown) => {
        const googleError =
          error instanceof GoogleError
            ? error
            : new GoogleError(
                500,
                `The fake ${service === 'gcs' ? 'GCS' : 'Vertex AI'} server failed: ${(error as Error).message}`,
              )
        // An error answered before the body was read: the connection cannot be reused.
        if (!req.complete) res.setHeader('connection', 'close')
        sendError(res, service, googleError)
      })
    })

  const listen = async (server: Server, port: number): Promise<number> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    return (server.address() as AddressInfo).port
  }

  const gcsServer = serverFor('gcs')
  const vertexServer = serverFor('vertex')
  const gcsPort = await listen(gcsServer, options.gcsPort ?? 0)
  let vertexPort: number
  try {
    vertexPort = await listen(vertexServer, options.vertexPort ?? 0)
  } catch (error) {
    gcsServer.close()
    throw error
  }
  gcsOrigin = `http://${urlHost}:${gcsPort}`

  return {
    gcsBaseURL: gcsOrigin,
    vertexBaseURL: `http://${urlHost}:${vertexPort}`,
    token,
    objects: store.objects,
    jobs: runner.jobs,
    requests,
    nextJob: (outcome) => runner.nextJob(outcome),
    setJobState: (jobId, state) => runner.force(jobId, state),
    failNext: (opts) => faults.add(opts),
    corruptNext: (what) => {
      gcs.corruptions.push(what)
    },
    async readObject(bucket, name) {
      const object = store.get(bucket, name)
      if (!object) throw new Error(`No object gs://${bucket}/${name}`)
      return readFile(object.path)
    },
    close: stopper({ runner, hanging, servers: [gcsServer, vertexServer], dataDir, ownsDataDir }),
  }
}
