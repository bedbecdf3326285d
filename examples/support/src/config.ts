/** The example's settings, all from the environment. */
export interface ExampleConfig {
  /** `PORT`: where the app listens. @default 4000 */
  port: number
  /** `BATCHKIT_API_KEYS`: comma-separated `key` or `key:owner`; unset means no auth (one shared owner). */
  apiKeys: string | undefined
  /** `OPENAI_API_KEY`: batchkit's key upstream; unset means the demo fake upstream is started on loopback. */
  openaiApiKey: string | undefined
  /** `OPENAI_BASE_URL`: the upstream's base URL, `/v1` included. @default OpenAI's */
  openaiBaseURL: string | undefined
  /** `BATCHKIT_STORE`: a Keyv connection URI (`redis://…`, `postgresql://…`, `sqlite://…`); unset means in memory. */
  store: string | undefined
  /** `BATCHKIT_POLL_INTERVAL_MS`: how soon the tracker first polls a new batch; later polls slow to a minute (or this, if longer). @default batchkit's (5000, growing to 5 minutes) */
  pollIntervalMs: number | undefined
  /** `BATCHKIT_FRESHNESS_MS`: how old a batch read from the store may be before a read refreshes it. @default batchkit's (5000) */
  freshnessMs: number | undefined
  /**
   * `BATCHKIT_MAX_BATCH_REQUESTS` and `BATCHKIT_MAX_BATCH_FILE_BYTES`: the largest batch input file taken;
   * one above a provider's limits runs as several provider batches. @default 1,000,000 requests and 2 GB
   */
  limits: { maxBatchRequests: number; maxBatchFileBytes: number }
  /** Azure OpenAI, when `AZURE_OPENAI_ENDPOINT` is set (with `AZURE_OPENAI_API_KEY`, `AZURE_OPENAI_API_VERSION`). */
  azure: { endpoint: string; apiKey: string | undefined; apiVersion: string | undefined } | undefined
  /**
   * Vertex AI, when `VERTEX_PROJECT` is set (with `VERTEX_LOCATION`, `VERTEX_BUCKET`, and
   * `VERTEX_ACCESS_TOKEN` or `GOOGLE_APPLICATION_CREDENTIALS`; `VERTEX_API_ENDPOINT` and
   * `GCS_API_ENDPOINT` point it at emulators or private endpoints).
   */
  vertex:
    | {
        project: string
        location: string
        bucket: string
        accessToken: string | undefined
        credentialsFile: string | undefined
        vertexEndpoint: string | undefined
        gcsEndpoint: string | undefined
      }
    | undefined
  /** `BATCHKIT_MODELS`: the model list as JSON, or the path of a JSON file holding it. */
  models: string | undefined
  /** `BATCHKIT_BUDGETS`: monthly spending limits as JSON, `{"owner": usd}`; unset means none. */
  budgets: Record<string, number> | undefined
  /**
   * `BATCHKIT_REQUEST_RETRIES`: how many follow-up rounds run again the requests that failed for a
   * transient reason (a rate limit, a provider's server error). @default 0 (none)
   */
  requestRetries: number
  /**
   * One webhook endpoint for every owner, when `BATCHKIT_WEBHOOK_URL` is set, signed with
   * `BATCHKIT_WEBHOOK_SECRET` (`whsec_…`; several space-separated while rotating).
   */
  webhook: { url: string; secrets: string[] } | undefined
}

/** Reads {@link ExampleConfig} from `env`. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ExampleConfig {
  const port = Number(env.PORT ?? 4000)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not '${env.PORT}'`)
  return {
    port,
    apiKeys: nonEmpty(env.BATCHKIT_API_KEYS),
    openaiApiKey: nonEmpty(env.OPENAI_API_KEY),
    openaiBaseURL: nonEmpty(env.OPENAI_BASE_URL),
    store: nonEmpty(env.BATCHKIT_STORE),
    pollIntervalMs: positiveInteger('BATCHKIT_POLL_INTERVAL_MS', env.BATCHKIT_POLL_INTERVAL_MS),
    freshnessMs: positiveInteger('BATCHKIT_FRESHNESS_MS', env.BATCHKIT_FRESHNESS_MS),
    limits: {
      maxBatchRequests: positiveInteger('BATCHKIT_MAX_BATCH_REQUESTS', env.BATCHKIT_MAX_BATCH_REQUESTS) ?? 1_000_000,
      maxBatchFileBytes:
        positiveInteger('BATCHKIT_MAX_BATCH_FILE_BYTES', env.BATCHKIT_MAX_BATCH_FILE_BYTES) ?? 2_000_000_000,
    },
    azure: azureFromEnv(env),
    vertex: vertexFromEnv(env),
    models: nonEmpty(env.BATCHKIT_MODELS),
    budgets: budgetsFromEnv(env.BATCHKIT_BUDGETS),
    requestRetries: wholeNumber('BATCHKIT_REQUEST_RETRIES', env.BATCHKIT_REQUEST_RETRIES) ?? 0,
    webhook: webhookFromEnv(env),
  }
}

function webhookFromEnv(env: NodeJS.ProcessEnv): ExampleConfig['webhook'] {
  const url = nonEmpty(env.BATCHKIT_WEBHOOK_URL)
  if (url === undefined) return undefined
  const secrets = nonEmpty(env.BATCHKIT_WEBHOOK_SECRET)?.split(/\s+/) ?? []
  // The secret itself is never echoed.
  if (secrets.length === 0 || secrets.some((secret) => !secret.startsWith('whsec_')))
    throw new Error('BATCHKIT_WEBHOOK_SECRET is required with BATCHKIT_WEBHOOK_URL: one or more whsec_… secrets')
  return { url, secrets }
}

/** `BATCHKIT_BUDGETS`: `{"owner": usd}`, each a limit per calendar month (UTC). */
function budgetsFromEnv(value: string | undefined): Record<string, number> | undefined {
  if (nonEmpty(value) === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value as string)
  } catch {
    throw new Error(`BATCHKIT_BUDGETS must be JSON such as {"alice": 25}, not '${value}'`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`BATCHKIT_BUDGETS must be a JSON object of owner to USD, such as {"alice": 25}`)
  }
  for (const [owner, usd] of Object.entries(parsed)) {
    if (typeof usd !== 'number' || !Number.isFinite(usd) || usd < 0)
      throw new Error(
        `BATCHKIT_BUDGETS: the limit of '${owner}' must be a number of USD ≥ 0, not ${JSON.stringify(usd)}`,
      )
  }
  return parsed as Record<string, number>
}

function azureFromEnv(env: NodeJS.ProcessEnv): ExampleConfig['azure'] {
  const endpoint = nonEmpty(env.AZURE_OPENAI_ENDPOINT)
  if (endpoint === undefined) return undefined
  return { endpoint, apiKey: nonEmpty(env.AZURE_OPENAI_API_KEY), apiVersion: nonEmpty(env.AZURE_OPENAI_API_VERSION) }
}

function vertexFromEnv(env: NodeJS.ProcessEnv): ExampleConfig['vertex'] {
  const project = nonEmpty(env.VERTEX_PROJECT)
  if (project === undefined) return undefined
  const bucket = nonEmpty(env.VERTEX_BUCKET)
  if (bucket === undefined)
    throw new Error('VERTEX_BUCKET is required with VERTEX_PROJECT: Vertex batches read and write GCS')
  return {
    project,
    location: nonEmpty(env.VERTEX_LOCATION) ?? 'us-central1',
    bucket,
    accessToken: nonEmpty(env.VERTEX_ACCESS_TOKEN),
    credentialsFile: nonEmpty(env.GOOGLE_APPLICATION_CREDENTIALS),
    vertexEndpoint: nonEmpty(env.VERTEX_API_ENDPOINT),
    gcsEndpoint: nonEmpty(env.GCS_API_ENDPOINT),
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function wholeNumber(name: string, value: string | undefined): number | undefined {
  if (nonEmpty(value) === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, 0 or more, not '${value}'`)
  return n
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (nonEmpty(value) === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} must be a positive whole number of milliseconds, not '${value}'`)
  return n
}
