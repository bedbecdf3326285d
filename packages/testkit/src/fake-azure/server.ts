import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BatchRunner } from '../fake-openai/batch-runner.js'
import { fileNotFound, invalidValue } from '../fake-openai/errors.js'
import { Faults } from '../fake-openai/faults.js'
import { deleteFile, downloadFile, type FilesContext, receiveUpload } from '../fake-openai/files.js'
import { integerQuery, paginate, sendJson } from '../fake-openai/http.js'
import { newRequestId } from '../fake-openai/ids.js'
import type { FakeBatch, FakeFile } from '../fake-openai/types.js'
import { assertLoopback, assertProgress, stopper } from '../loopback.js'
import { type AzureSurface, honoursExpiry } from './api-versions.js'
import { createAzureBatch } from './batches.js'
import {
  AzureError,
  azureErrorForStatus,
  invalidKey,
  invalidToken,
  missingApiVersion,
  resourceNotFound,
  sendAzureError,
  toAzureError,
  unsupportedApiVersion,
} from './errors.js'
import { toAzureBatch, toAzureFile } from './objects.js'
import {
  AZURE_API_VERSIONS,
  type AzureApi,
  type AzureDeployment,
  type AzureFileStatus,
  type AzureObjectStyle,
  type FakeAzure,
  type FakeAzureFailNextOptions,
  type FakeAzureOptions,
  type FakeAzureRequest,
} from './types.js'
import { validateAzureInput } from './validate.js'

/** `api-version` values the v1 API tolerates; it needs none. */
const V1_API_VERSIONS: ReadonlySet<string> = new Set(['preview', 'latest', 'v1'])
const HOUR_SECONDS = 60 * 60
const DAY_SECONDS = 24 * HOUR_SECONDS

interface Processing {
  /** `GET /files/{id}` answers left before the file leaves `pending`. */
  pendingPolls: number
  /** Where the file ends: `processed`, or `error` when processing was made to fail. */
  outcome: 'processed' | 'error'
}

interface Call {
  req: IncomingMessage
  res: ServerResponse
  api: AzureApi
  apiVersion: string | null
  /** The path after `/openai` or `/openai/v1`, such as `/files/abc`. */
  route: string
  /** The first path parameter, decoded. */
  id: string
  query: URLSearchParams
  origin: string
}

interface Route {
  method: string
  pattern: RegExp
  handle(call: Call): unknown
}

/**
 * Starts a loopback fake of Azure OpenAI's Files and Batches API, in both URL shapes: the dated API
 * (`/openai/files?api-version=…`, `api-version` required and checked) and the v1 API
 * (`/openai/v1/files`). Requests authenticate with `api-key` or an Entra ID `Authorization: Bearer`
 * token; uploads answer 201 with `Location` on the dated API (200 on v1) and stay `pending` for the
 * first poll; batch lines name a Global-Batch deployment as `body.model`; every finished batch gets
 * an error file, empty when nothing failed; errors carry Azure's body. Batches run on the fake
 * OpenAI's engine, one step per `GET /batches/{id}`.
 *
 * Like Azure, the API version matters: dated versions before `2025-03-01-preview` (the GA `2024-10-21`
 * among them) drop `expires_after` and `output_expires_after` unread, and run only the models released
 * before them (a newer model's batch fails); files that never expire count against a quota of 500
 * (`quotaExceeded` past it), batch output included.
 */
export async function startFakeAzure(options: FakeAzureOptions = {}): Promise<FakeAzure> {
  const apiKey = options.apiKey ?? 'fake-azure-key'
  const tokens = new Set(options.tokens ?? ['fake-entra-token'])
  const apiVersions = new Set<string>(options.apiVersions ?? AZURE_API_VERSIONS)
  const deployments: AzureDeployment[] = (options.deployments ?? ['gpt-4o-mini', 'gpt-4o']).map((entry) =>
    typeof entry === 'string' ? { name: entry, model: entry } : { ...entry },
  )
  const pendingPolls = options.pendingPolls ?? 1
  const maxRequests = options.maxRequestsPerFile ?? 100_000
  const maxFilesWithoutExpiry = options.maxFilesWithoutExpiry ?? 500
  const maxFiles = options.maxFiles ?? 10_000
  const expiryRange = options.expiryRange ?? { min: HOUR_SECONDS, max: 30 * DAY_SECONDS }
  const host = options.host ?? '127.0.0.1'
  const progress = options.progress ?? 'per-poll'
  assertLoopback('startFakeAzure', host)
  if (!Number.isInteger(pendingPolls) || pendingPolls < 0) {
    throw new RangeError(`pendingPolls must be a non-negative integer, got ${pendingPolls}`)
  }
  assertProgress(progress)

  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'fake-azure-')))
  await mkdir(dataDir, { recursive: true })

  const files = new Map<string, FakeFile>()
  const batches = new Map<string, FakeBatch>()
  const processing = new Map<string, Processing>()
  /** The API each batch was created on: it decides which models Global Batch runs for it. */
  const surfaces = new Map<string, AzureSurface>()
  const runner = new BatchRunner({
    files,
    batches,
    dataDir,
    progress,
    validate: (path, endpoint, batch) =>
      validateAzureInput(
        path,
        endpoint,
        deployments,
        maxRequests,
        surfaces.get(batch.id) ?? { api: 'v1', apiVersion: null },
      ),
    alwaysWriteErrorFile: true,
    // Azure keeps batch output without `output_expires_after` until it is deleted.
    defaultOutputExpirySeconds: null,
    enqueuedTokenLimit: options.enqueuedTokenLimit,
    tokenLimitMessage: (deployment, limit) =>
      `The number of enqueued tokens has surpassed the configured limit of ${limit} for the deployment '${deployment}'. Please either increase the limit or try again once the current jobs have finished.`,
  })
  const filesCtx: FilesContext = { files, dataDir }
  const faults = new Faults<FakeAzureFailNextOptions>()
  const requests: FakeAzureRequest[] = []
  const hanging = new Set<ServerResponse>()
  let processingFailures = 0
  let objectStyle: AzureObjectStyle = options.objectStyle ?? 'current'

  /** The file's status; `poll` counts a `GET /files/{id}`, which moves a pending file on. */
  function statusOf(id: string, poll = false): AzureFileStatus | undefined {
    if (!files.has(id)) return undefined
    const state = processing.get(id)
    if (!state) return 'processed'
    if (state.pendingPolls > 0) {
      if (poll) state.pendingPolls--
      return 'pending'
    }
    return state.outcome
  }

  function fileOr404(id: string): FakeFile {
    const file = files.get(id)
    if (!file) throw fileNotFound(id)
    return file
  }

  const fileObject = (file: FakeFile, poll = false) =>
    toAzureFile(file, statusOf(file.id, poll) ?? 'processed', objectStyle)

  /**
   * Azure's file quota, checked once an upload is stored (whether it expires is only known then): a resource
   * keeps `maxFilesWithoutExpiry` files that never expire, batch output included, and `maxFiles` in all.
   */
  async function checkFileQuota(file: FakeFile): Promise<void> {
    const others = [...files.values()].filter((other) => other.id !== file.id)
    const unexpiring = others.filter((other) => other.expires_at === null).length
    let refusal: string | undefined
    if (others.length >= maxFiles) refusal = `The resource already has the maximum of ${maxFiles} files.`
    else if (file.expires_at === null && unexpiring >= maxFilesWithoutExpiry) {
      refusal = `The resource already has the maximum of ${maxFilesWithoutExpiry} files without an expiration date. Set expires_after, or delete files.`
    }
    if (refusal === undefined) return
    files.delete(file.id)
    await rm(file.path, { force: true })
    throw new AzureError(400, 'quotaExceeded', `Quota exceeded. ${refusal}`)
  }

  const ID = '([^/]+)'
  const routes: Route[] = [
    {
      method: 'POST',
      pattern: /^\/files$/,
      async handle({ req, res, api, apiVersion, origin }) {
        const file = await receiveUpload(filesCtx, req, {
          // Azure keeps a file without `expires_after` until it is deleted.
          defaultExpiry: () => null,
          expiryRange: () => expiryRange,
          ignoreExpiresAfter: !honoursExpiry({ api, apiVersion }),
        })
        await checkFileQuota(file)
        const outcome = processingFailures > 0 ? 'error' : 'processed'
        if (outcome === 'error') processingFailures--
        processing.set(file.id, { pendingPolls, outcome })
        const body = toAzureFile(file, pendingPolls > 0 ? 'pending' : outcome, objectStyle)
        if (api === 'v1') return sendJson(res, 200, body)
        // The dated authoring API answers 201 Created with the new file's address.
        res.setHeader('location', `${origin}/openai/files/${encodeURIComponent(file.id)}?api-version=${apiVersion}`)
        sendJson(res, 201, body)
      },
    },
    {
      method: 'GET',
      pattern: /^\/files$/,
      handle({ res, query }) {
        const purpose = query.get('purpose')
        const order = query.get('order') ?? 'desc'
        if (order !== 'asc' && order !== 'desc') throw invalidValue('order', order, ['asc', 'desc'])
        const limit = integerQuery(query, 'limit', 10_000, 1, 10_000)
        let list = [...files.values()]
        if (purpose !== null) list = list.filter((file) => file.purpose === purpose)
        if (order !== 'asc') list.reverse()
        const page = paginate(list, query.get('after') ?? undefined, limit)
        sendJson(res, 200, { ...page, data: page.data.map((file) => fileObject(file)) })
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/files/${ID}$`),
      handle: ({ res, id }) => sendJson(res, 200, fileObject(fileOr404(id), true)),
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/files/${ID}$`),
      async handle({ res, id }) {
        await deleteFile(filesCtx, id, res)
        processing.delete(id)
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/files/${ID}/content$`),
      handle: ({ res, id }) => downloadFile(filesCtx, id, res),
    },
    {
      method: 'POST',
      pattern: /^\/batches$/,
      async handle({ req, res, api, apiVersion }) {
        const surface = { api, apiVersion }
        const batch = await createAzureBatch(
          {
            files,
            runner,
            statusOf: (id) => statusOf(id),
            expiryRange: honoursExpiry(surface) ? expiryRange : null,
          },
          req,
        )
        surfaces.set(batch.id, surface)
        sendJson(res, 200, toAzureBatch(batch, objectStyle))
      },
    },
    {
      method: 'GET',
      pattern: /^\/batches$/,
      async handle({ res, query }) {
        const limit = integerQuery(query, 'limit', 20, 1, 100)
        await runner.settled()
        const page = paginate([...batches.values()].reverse(), query.get('after') ?? undefined, limit)
        sendJson(res, 200, { ...page, data: page.data.map((batch) => toAzureBatch(batch, objectStyle)) })
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/batches/${ID}$`),
      handle: async ({ res, id }) => sendJson(res, 200, toAzureBatch(await runner.poll(id), objectStyle)),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/batches/${ID}/cancel$`),
      handle: async ({ res, id }) => sendJson(res, 200, toAzureBatch(await runner.cancel(id), objectStyle)),
    },
  ]

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const url = new URL(req.url ?? '/', 'http://fake.invalid')
    const query = url.searchParams
    const apiKeyHeader = req.headers['api-key']
    const authorization = req.headers.authorization
    requests.push({
      method,
      path: url.pathname,
      apiVersion: query.get('api-version'),
      query: query.toString(),
      auth: apiKeyHeader !== undefined ? 'api-key' : authorization !== undefined ? 'bearer' : null,
      contentType: req.headers['content-type'] ?? null,
    })
    res.setHeader('x-request-id', newRequestId())
    res.setHeader('apim-request-id', randomUUID())

    const fault = faults.takeOptions(method, url.pathname)
    if (fault?.status === 'hang') {
      hanging.add(res)
      return
    }
    if (fault?.status === 'reset') {
      req.socket.destroy()
      return
    }
    if (fault !== undefined) throw azureErrorForStatus(fault.status as number, fault.code, fault.message)

    // `/openai/v1/…` is the v1 API; `/openai/…` the dated one, where `AzureOpenAI({ deployment })`
    // clients also send batch creates to `/openai/deployments/{deployment}/batches`.
    const shape = /^\/openai(\/v1)?(\/.*)$/.exec(url.pathname)
    if (!shape) throw resourceNotFound()
    const api: AzureApi = shape[1] ? 'v1' : 'dated'
    let route = shape[2] as string
    if (api === 'dated') route = route.replace(/^\/deployments\/[^/]+(?=\/batches$)/, '')

    if (typeof apiKeyHeader === 'string') {
      if (apiKeyHeader !== apiKey) throw invalidKey()
    } else if (typeof authorization === 'string') {
      const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1]
      // The v1 API also takes the resource key as a bearer token, so the plain OpenAI client works.
      const keyAsBearer = api === 'v1' && token === apiKey
      if (token === undefined || !(tokens.has(token) || keyAsBearer)) throw invalidToken()
    } else {
      throw invalidKey()
    }

    const apiVersion = query.get('api-version')
    if (api === 'dated') {
      if (apiVersion === null || apiVersion === '') throw missingApiVersion()
      if (!apiVersions.has(apiVersion)) throw unsupportedApiVersion()
    } else if (apiVersion !== null && !V1_API_VERSIONS.has(apiVersion)) {
      throw unsupportedApiVersion()
    }

    for (const candidate of routes) {
      if (candidate.method !== method) continue
      const match = candidate.pattern.exec(route)
      if (!match) continue
      const origin = `http://${req.headers.host ?? 'localhost'}`
      await candidate.handle({
        req,
        res,
        api,
        apiVersion,
        route,
        id: decodeURIComponent(match[1] ?? ''),
        query,
        origin,
      })
      return
    }
    throw resourceNotFound()
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => sendAzureError(res, toAzureError(error)))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  return {
    endpoint,
    v1BaseURL: `${endpoint}/openai/v1`,
    apiKey,
    token: [...tokens][0] ?? '',
    deployments: deployments.map((deployment) => deployment.name),
    files,
    batches,
    requests,
    get objectStyle() {
      return objectStyle
    },
    set objectStyle(style: AzureObjectStyle) {
      objectStyle = style
    },
    fileStatus: (id) => statusOf(id),
    failNext: (opts) => faults.add(opts),
    failProcessing(times = 1) {
      if (!Number.isInteger(times) || times < 1)
        throw new RangeError(`failProcessing: times must be a positive integer`)
      processingFailures += times
    },
    expire: (batchId) => runner.expire(batchId),
    close: stopper({ runner, hanging, servers: [server], dataDir, ownsDataDir }),
  }
}
