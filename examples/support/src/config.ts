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
  /** `BATCHKIT_STORE`: a Keyv connection URI (`redis://…`, `postgresql://…`); unset means in memory. */
  store: string | undefined
  /** `BATCHKIT_POLL_INTERVAL_MS`: how soon the tracker first polls a new batch, and its step. @default batchkit's (5000) */
  pollIntervalMs: number | undefined
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
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (nonEmpty(value) === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} must be a positive whole number of milliseconds, not '${value}'`)
  return n
}
