import type { BatchKit } from '@batchkit/core'

/** How the suite asks a host to mount the API. */
export interface HostOptions {
  kit: BatchKit
  /** The API's path from the server root, such as `/v1` or `/api/v1`: the OpenAI client's `baseURL` path. */
  mountPath: string
  /** Put the host's own JSON body parser in front of the API, as apps commonly do. */
  jsonBodyParser: boolean
}

/** A host the suite can talk to. */
export interface StartedHost {
  /** `http://127.0.0.1:<port>`, without a path. */
  origin: string
  close(): Promise<void>
}

/**
 * What an adapter's test gives the suite: a way to boot its host on 127.0.0.1, port 0. Besides the
 * API, the host must answer `GET /host-route` itself with status 200 and the text `host`, and
 * answer paths it does not know with its own 404.
 */
export interface HostHarness {
  /** The host's name, for test titles (`Express 5`, `Koa 3`). */
  name: string
  start(options: HostOptions): Promise<StartedHost>
}
