import type { IncomingMessage, ServerResponse } from 'node:http'
import { readJsonRequest } from '../loopback.js'
import { GoogleError, invalidArgument, noRoute, sendJson } from './errors.js'
import type { CreateJobParams, JobRunner } from './job-runner.js'
import { parseGsPrefix, parseGsUri } from './storage.js'
import type { FakeVertexJob } from './types.js'

export interface VertexContext {
  runner: JobRunner
  project: string | undefined
  location: string | undefined
}

const COLLECTION = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/batchPredictionJobs$/
const JOB = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/batchPredictionJobs\/([^/:]+)(:cancel)?$/

/** Fields a `BatchPredictionJob` create body may carry (proto3 JSON names). */
const JOB_FIELDS = new Set([
  'displayName',
  'model',
  'modelVersionId',
  'inputConfig',
  'outputConfig',
  'instanceConfig',
  'labels',
  'modelParameters',
  'encryptionSpec',
  'serviceAccount',
  'dedicatedResources',
  'manualBatchTuningParameters',
  'generateExplanation',
  'explanationSpec',
  'disableContainerLogging',
])

const PUBLISHER_MODEL = /^(projects\/[^/]+\/locations\/[^/]+\/)?publishers\/[a-z0-9-]+\/models\/[^/]+$/
const TUNED_MODEL = /^projects\/[^/]+\/locations\/[^/]+\/models\/[^/]+$/
const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u

/** Routes one Vertex AI request. */
export async function handleVertex(
  ctx: VertexContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const method = req.method ?? 'GET'
  const path = url.pathname
  let match = COLLECTION.exec(path)
  if (match) {
    const parent = parentOf(ctx, match[2]!, match[3]!)
    if (method === 'POST') return createJob(ctx, req, res, parent)
    if (method === 'GET') return listJobs(ctx, res, parent, url.searchParams)
  }
  match = JOB.exec(path)
  if (match) {
    const name = `${parentOf(ctx, match[2]!, match[3]!)}/batchPredictionJobs/${match[4]!}`
    const cancel = match[5] !== undefined
    if (cancel && method === 'POST') {
      await readJson(req)
      await ctx.runner.cancel(name)
      return sendJson(res, 200, {})
    }
    if (!cancel && method === 'GET') return sendJson(res, 200, await ctx.runner.poll(name))
    if (!cancel && method === 'DELETE') {
      await ctx.runner.delete(name)
      return sendJson(res, 200, {
        name: `${name}/operations/${Date.now()}`,
        metadata: { '@type': 'type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata' },
        done: true,
        response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
      })
    }
  }
  throw noRoute(method, path)
}

/** `projects/{p}/locations/{l}`, or a 404 when the fake was told to serve another project or location. */
function parentOf(ctx: VertexContext, project: string, location: string): string {
  if (
    (ctx.project !== undefined && project !== ctx.project) ||
    (ctx.location !== undefined && location !== ctx.location)
  ) {
    throw new GoogleError(
      404,
      `Location projects/${project}/locations/${location} is not found or access is unauthorized.`,
    )
  }
  return `projects/${project}/locations/${location}`
}

async function createJob(ctx: VertexContext, req: IncomingMessage, res: ServerResponse, parent: string): Promise<void> {
  const body = await readJson(req)
  sendJson(res, 200, ctx.runner.create(validateJob(body, parent)))
}

/** Checks a create body the way Vertex does for a Gemini batch job from and to Cloud Storage. */
function validateJob(body: unknown, parent: string): CreateJobParams {
  if (!isObject(body))
    throw invalidArgument('Invalid JSON payload received: the body must be a BatchPredictionJob object.')
  for (const key of Object.keys(body)) {
    if (!JOB_FIELDS.has(key)) {
      throw invalidArgument(
        `Invalid JSON payload received. Unknown name "${key}" at 'batch_prediction_job': Cannot find field.`,
      )
    }
  }
  const { displayName, model, inputConfig, outputConfig, instanceConfig, labels } = body
  if (typeof displayName !== 'string' || displayName.trim() === '') {
    throw invalidArgument(
      'List of found errors:\t1.Field: batch_prediction_job.display_name; Message: Required field is not set.',
    )
  }
  if (typeof model === 'string' && /(?:^|\/)publishers\//.test(model) && !PUBLISHER_MODEL.test(model)) {
    // A publisher model name with a slash in the model id, such as publishers/google/models/google/gemini-2.5-flash.
    throw new GoogleError(
      404,
      `Publisher Model \`${parent}/${model.replace(/^projects\/[^/]+\/locations\/[^/]+\//, '')}\` was not found or your project does not have access to it.`,
    )
  }
  if (typeof model !== 'string' || !(PUBLISHER_MODEL.test(model) || TUNED_MODEL.test(model))) {
    throw invalidArgument(
      `Invalid model ${JSON.stringify(model)}: expected publishers/{publisher}/models/{model} or projects/{p}/locations/{l}/models/{id}.`,
    )
  }
  if (!isObject(inputConfig)) throw required('input_config')
  if (inputConfig.instancesFormat !== 'jsonl') {
    throw invalidArgument(
      `The fake supports inputConfig.instancesFormat 'jsonl', not ${JSON.stringify(inputConfig.instancesFormat)}.`,
    )
  }
  const source = inputConfig.gcsSource
  const uris = isObject(source) ? source.uris : undefined
  if (
    !Array.isArray(uris) ||
    uris.length === 0 ||
    !uris.every((uri) => typeof uri === 'string' && parseGsUri(uri)?.name)
  ) {
    throw invalidArgument(
      `Invalid value at 'batch_prediction_job.input_config.gcs_source.uris': expected a non-empty list of gs://bucket/object URIs, got ${JSON.stringify(uris)}.`,
    )
  }
  if (!isObject(outputConfig)) throw required('output_config')
  if (outputConfig.predictionsFormat !== 'jsonl') {
    throw invalidArgument(
      `The fake supports outputConfig.predictionsFormat 'jsonl', not ${JSON.stringify(outputConfig.predictionsFormat)}.`,
    )
  }
  const destination = outputConfig.gcsDestination
  const prefix = isObject(destination) ? destination.outputUriPrefix : undefined
  if (typeof prefix !== 'string' || !parseGsPrefix(prefix)) {
    throw invalidArgument(
      `Invalid value at 'batch_prediction_job.output_config.gcs_destination.output_uri_prefix': expected gs://bucket/prefix, got ${JSON.stringify(prefix)}.`,
    )
  }
  if (instanceConfig !== undefined) {
    if (!isObject(instanceConfig)) throw invalidArgument("Invalid value at 'batch_prediction_job.instance_config'.")
    for (const field of ['excludedFields', 'includedFields'] as const) {
      const value = instanceConfig[field]
      if (value !== undefined && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
        throw invalidArgument(
          `Invalid value at 'batch_prediction_job.instance_config.${field}': expected a list of strings.`,
        )
      }
    }
  }
  if (labels !== undefined) checkLabels(labels)
  return {
    parent,
    displayName,
    model,
    inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: uris as string[] } },
    outputConfig: {
      predictionsFormat: 'jsonl',
      gcsDestination: { outputUriPrefix: prefix },
    },
    ...(instanceConfig !== undefined ? { instanceConfig: instanceConfig as FakeVertexJob['instanceConfig'] } : {}),
    ...(labels !== undefined ? { labels: labels as Record<string, string> } : {}),
  }
}

/** Resource labels: at most 64, keys start with a lowercase letter, both ≤ 63 of lowercase, digits, `_`, `-`. */
function checkLabels(labels: unknown): void {
  if (!isObject(labels)) throw invalidArgument("Invalid value at 'batch_prediction_job.labels': expected a map.")
  const entries = Object.entries(labels)
  if (entries.length > 64) throw invalidArgument('At most 64 labels can be set on a resource.')
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key) || typeof value !== 'string' || !LABEL_VALUE.test(value)) {
      throw invalidArgument(
        `Label ${JSON.stringify(key)}: ${JSON.stringify(value)} is invalid: keys must start with a lowercase letter, and keys and values may only contain lowercase letters, digits, underscores and dashes (at most 63 characters).`,
      )
    }
  }
}

/** `GET …/batchPredictionJobs?filter=&pageSize=&pageToken=`. */
function listJobs(ctx: VertexContext, res: ServerResponse, parent: string, query: URLSearchParams): void {
  const matches = parseFilter(query.get('filter') ?? '')
  const rawSize = query.get('pageSize')
  if (rawSize !== null && !/^\d+$/.test(rawSize)) throw invalidArgument(`Invalid pageSize: ${rawSize}`)
  const pageSize = rawSize === null || rawSize === '0' ? 100 : Math.min(Number(rawSize), 1000)
  const token = query.get('pageToken')
  const start = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) : 0
  if (!Number.isInteger(start) || start < 0) throw invalidArgument('Invalid pageToken.')
  const jobs = ctx.runner.list(parent).filter(matches)
  const page = jobs.slice(start, start + pageSize)
  const next = start + pageSize < jobs.length ? Buffer.from(String(start + pageSize)).toString('base64url') : undefined
  sendJson(res, 200, {
    ...(page.length > 0 ? { batchPredictionJobs: page } : {}),
    ...(next ? { nextPageToken: next } : {}),
  })
}

/**
 * A subset of Vertex's list filter: clauses joined by `AND`, each `state`, `display_name`/`displayName` or
 * `labels.<key>` compared with `=` or `!=`, or `labels.<key>:*` (the label is set).
 */
function parseFilter(filter: string): (job: FakeVertexJob) => boolean {
  if (filter.trim() === '') return () => true
  const tests = filter.split(/\s+AND\s+/).map((clause) => {
    const match =
      /^\s*(state|display_name|displayName|labels\.[\p{Ll}\p{Lo}\p{N}_-]+)\s*(=|!=|:)\s*("[^"]*"|[^\s"]+)\s*$/u.exec(
        clause,
      )
    if (!match) throw invalidArgument(`Unsupported filter: ${clause}`)
    const [, field, operator, raw] = match
    const value = raw!.startsWith('"') ? raw!.slice(1, -1) : raw!
    const read = (job: FakeVertexJob): string | undefined =>
      field === 'state' ? job.state : field!.startsWith('labels.') ? job.labels?.[field!.slice(7)] : job.displayName
    if (operator === ':') {
      if (value !== '*' || !field!.startsWith('labels.')) throw invalidArgument(`Unsupported filter: ${clause}`)
      return (job: FakeVertexJob) => read(job) !== undefined
    }
    return operator === '=' ? (job: FakeVertexJob) => read(job) === value : (job: FakeVertexJob) => read(job) !== value
  })
  return (job) => tests.every((test) => test(job))
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return readJsonRequest(req, {
    tooLarge: () => new GoogleError(413, 'Request payload size exceeds the limit.'),
    unparseable: () => invalidArgument('Invalid JSON payload received.'),
  })
}

function required(field: string): GoogleError {
  return invalidArgument(
    `List of found errors:\t1.Field: batch_prediction_job.${field}; Message: Required field is not set.`,
  )
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
