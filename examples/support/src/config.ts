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
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}
