import { type Authenticate, credentialOf } from '../auth/api-keys.js'
import type { BatchService } from '../batches/service.js'
import { ApiError, invalidValue, isApiError } from '../errors.js'
import type { ListPurpose } from '../files/purpose.js'
import type { ErrorReporter, FileService } from '../files/service.js'
import { inSpan } from '../observability/telemetry.js'
import type { ExpiresAfter, FileEstimate, Principal } from '../types.js'
import { CANCEL_BATCH_ARGUMENTS, CREATE_BATCH_ARGUMENTS, refuseUnknownArguments } from './arguments.js'
import { isJsonOrAbsent, readJsonObject } from './json-body.js'
import { parseMultipartUpload } from './multipart.js'
import { requestIdFor } from './request-id.js'
import { matchRoute, type Operation, relativePath } from './routes.js'
import type { HttpRequest, HttpResult } from './types.js'
import { ESTIMATE_HEADER, estimateHeaderValue, toBatchObject, toFileObject, toListObject } from './wire.js'

/** The OpenAI wire format over the core's services. */
export interface HttpHandler {
  /** Whether the API handles this method and URL under `basePath`; when not, the host's next handler should. */
  matches(method: string, url: string, basePath: string): boolean
  /**
   * Answers one request. Never throws: every failure becomes an OpenAI error response. Every answer
   * carries `x-request-id`: the client's own when of a sane shape, else a new one.
   */
  handle(request: HttpRequest): Promise<HttpResult>
}

/** The principal every call shares when no `authenticate` hook is configured. */
export const DEFAULT_PRINCIPAL: Principal = { owner: 'default' }

/** Builds the HTTP handler over the services. */
export function createHttpHandler(deps: {
  files: FileService
  batches: BatchService
  authenticate: Authenticate | undefined
  reportError: ErrorReporter
}): HttpHandler {
  const { files, batches, authenticate, reportError } = deps

  const routeOf = (
    method: string,
    url: string,
    basePath: string,
  ): { operation: Operation; path: string } | undefined => {
    const path = relativePath(url, basePath)
    const operation = path === undefined ? undefined : matchRoute(method.toUpperCase(), path)
    return operation && path !== undefined ? { operation, path } : undefined
  }

  const principalOf = async (request: HttpRequest, path: string): Promise<Principal> => {
    if (!authenticate) return DEFAULT_PRINCIPAL
    const principal = await authenticate({ method: request.method, path, headers: request.headers })
    if (principal && typeof principal.owner === 'string' && principal.owner !== '') return principal
    throw credentialOf(request.headers) === undefined
      ? new ApiError(
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
      : new ApiError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' })
  }

  const run = async (operation: Operation, principal: Principal, request: HttpRequest, query: URLSearchParams) => {
    switch (operation.name) {
      case 'files.create': {
        if (!/^multipart\/form-data\s*;/i.test(request.headers['content-type'] ?? ''))
          throw unsupportedMediaType('multipart/form-data')
        const upload = await parseMultipartUpload(request.body, request.headers)
        // LiteLLM's ways to name the provider: a query parameter, a header, or a form field.
        const header = request.headers['custom-llm-provider']
        const provider = query.get('custom_llm_provider') ?? (typeof header === 'string' ? header : upload.provider)
        const idempotencyKey = headerOf(request, 'idempotency-key')
        const file = await files.create(principal, { ...upload, provider }, { idempotencyKey })
        return withEstimate(json(toFileObject(file)), file.estimate)
      }
      case 'files.list': {
        const purpose = query.get('purpose') ?? undefined
        const order = query.get('order') ?? undefined
        const page = await files.list(principal, {
          purpose: purpose as ListPurpose | undefined,
          after: query.get('after') ?? undefined,
          limit: integerParam(query, 'limit'),
          order: order as 'asc' | 'desc' | undefined,
        })
        return json(toListObject(page, toFileObject))
      }
      case 'files.retrieve':
        return json(toFileObject(await files.retrieve(principal, operation.id)))
      case 'files.delete':
        return json({ ...(await files.delete(principal, operation.id)), object: 'file' })
      case 'files.content': {
        const download = await files.content(principal, operation.id, request.signal)
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
        if (download.bytes !== null) headers['content-length'] = String(download.bytes)
        return { status: 200, headers, body: download.body }
      }
      case 'batches.create': {
        if (!isJsonOrAbsent(request.headers)) throw unsupportedMediaType('application/json')
        const fields = await readJsonObject(request)
        refuseUnknownArguments(fields, CREATE_BATCH_ARGUMENTS)
        // Types are checked by the service; the casts only name the fields.
        const batch = await batches.create(
          principal,
          {
            inputFileId: fields.input_file_id as string,
            endpoint: fields.endpoint as string,
            completionWindow: fields.completion_window as string,
            metadata: fields.metadata as Record<string, string> | null,
            outputExpiresAfter: fields.output_expires_after as ExpiresAfter | null,
          },
          { idempotencyKey: headerOf(request, 'idempotency-key') },
        )
        return withEstimate(json(toBatchObject(batch)), batch.estimate)
      }
      case 'batches.list': {
        const page = await batches.list(principal, {
          after: query.get('after') ?? undefined,
          limit: integerParam(query, 'limit'),
        })
        return json(toListObject(page, toBatchObject))
      }
      case 'batches.retrieve':
        return json(toBatchObject(await batches.retrieve(principal, operation.id)))
      case 'batches.cancel':
        // OpenAI's clients send no body; one that is sent must hold no arguments. A non-JSON body is not read.
        if (isJsonOrAbsent(request.headers))
          refuseUnknownArguments(await readJsonObject(request), CANCEL_BATCH_ARGUMENTS)
        return json(toBatchObject(await batches.cancel(principal, operation.id)))
    }
  }

  return {
    matches: (method, url, basePath) => routeOf(method, url, basePath) !== undefined,

    async handle(request) {
      const requestId = requestIdFor(request.headers)
      const route = routeOf(request.method, request.url, request.basePath)
      let result: HttpResult
      try {
        if (!route) throw new ApiError(404, `Unknown request URL: ${request.method} ${request.url}.`)
        const principal = await principalOf(request, route.path)
        const query = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1 || request.url.length))
        const operation = route.operation
        result = await inSpan(`batchkit ${operation.name}`, { 'batchkit.operation': operation.name }, async (span) => {
          const answer = await run(operation, principal, request, query)
          span.setAttribute('http.response.status_code', answer.status)
          return answer
        })
      } catch (error) {
        result = errorResult(error, request.signal?.aborted ? () => undefined : reportError)
        // A create that timed out upstream may still have happened there: a retry could run it twice.
        const creates = route?.operation.name === 'files.create' || route?.operation.name === 'batches.create'
        if (creates && result.status === 504) result.headers['x-should-retry'] = 'false'
      }
      result.headers['x-request-id'] = requestId
      return result
    },
  }
}

/** Adds the `batchkit-estimate` header when there is an estimate to carry. */
function withEstimate(result: HttpResult, estimate: FileEstimate | null | undefined): HttpResult {
  if (estimate) result.headers[ESTIMATE_HEADER] = estimateHeaderValue(estimate)
  return result
}

function json(value: unknown, status = 200): HttpResult {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) }
}

/**
 * The error response for anything thrown; errors that are not batchkit's own are reported (unless
 * the client is already gone, when they are its doing) and masked.
 */
function errorResult(error: unknown, reportError: ErrorReporter): HttpResult {
  let apiError: ApiError
  if (isApiError(error)) {
    apiError = error
  } else {
    reportError(error, 'handling a request')
    apiError = new ApiError(500, 'The server had an error while processing your request. Sorry about that!')
  }
  const result = json(apiError.toJSON(), apiError.status)
  Object.assign(result.headers, apiError.headers)
  return result
}

function unsupportedMediaType(expected: string): ApiError {
  return new ApiError(415, `Invalid Content-Type header: this endpoint expects ${expected}.`, {
    code: 'unsupported_media_type',
  })
}

function headerOf(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name]
  return typeof value === 'string' ? value : undefined
}

function integerParam(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name)
  if (value === null) return undefined
  if (!/^\d{1,9}$/.test(value)) throw invalidValue(name, `Invalid value for '${name}': '${value}' is not an integer.`)
  return Number(value)
}
