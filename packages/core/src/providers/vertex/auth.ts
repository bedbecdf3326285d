import { ApiError, isApiError } from '../../errors.js'
import { NO_RETRY, PROVIDER } from './http.js'

/** Returns the OAuth 2 access token of the next request; asked before every request, so it should cache. */
export type TokenSource = () => Promise<string>

/** The OAuth scope that covers both Vertex AI and Cloud Storage. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform'

/** The part of google-auth-library's `GoogleAuth` batchkit uses (typed here so the package stays optional). */
interface GoogleAuthLike {
  getAccessToken(): Promise<string | null | undefined>
}

type GoogleAuthConstructor = new (options: Record<string, unknown>) => GoogleAuthLike

/** How the provider authenticates. */
export interface AuthOptions {
  accessToken?: string | (() => Promise<string>) | undefined
  credentialsFile?: string | undefined
}

/**
 * The token source of the options: a fixed token, a token function, or else google-auth-library's
 * `GoogleAuth` (cloud-platform scope, with `credentialsFile` or Application Default Credentials), imported
 * the first time a token is needed. Failures are {@link ApiError}s that name no token and no credential.
 */
export function tokenSource(options: AuthOptions): TokenSource {
  const { accessToken, credentialsFile } = options
  if (typeof accessToken === 'string') {
    if (accessToken === '') throw new TypeError('vertex(): accessToken must not be empty')
    return async () => accessToken
  }
  if (typeof accessToken === 'function') {
    return async () => checked(await callSafely(accessToken))
  }
  if (accessToken !== undefined) throw new TypeError('vertex(): accessToken must be a string or a function')
  let auth: Promise<GoogleAuthLike> | undefined
  return async () => {
    auth ??= loadGoogleAuth(credentialsFile)
    const client = await auth
    return checked(await callSafely(() => client.getAccessToken()))
  }
}

async function loadGoogleAuth(credentialsFile: string | undefined): Promise<GoogleAuthLike> {
  type Module = { GoogleAuth?: GoogleAuthConstructor; default?: { GoogleAuth?: GoogleAuthConstructor } }
  let GoogleAuth: GoogleAuthConstructor | undefined
  try {
    const module = (await import('google-auth-library')) as unknown as Module
    // A CommonJS package: its exports are named in ESM, and the whole object is the default export.
    GoogleAuth = module.GoogleAuth ?? module.default?.GoogleAuth
    if (typeof GoogleAuth !== 'function') throw new TypeError('google-auth-library has no GoogleAuth export')
  } catch (error) {
    throw withCause(
      new ApiError(
        502,
        `The ${PROVIDER} provider needs the optional package 'google-auth-library' to use ${credentialsFile ? 'a credentialsFile' : 'Application Default Credentials'}; install it next to @batchkit/core, or configure accessToken.`,
        { code: 'provider_misconfigured', headers: NO_RETRY },
      ),
      error,
    )
  }
  return new GoogleAuth({
    scopes: [CLOUD_PLATFORM_SCOPE],
    ...(credentialsFile ? { keyFilename: credentialsFile } : {}),
  })
}

async function callSafely(get: () => Promise<string | null | undefined>): Promise<string | null | undefined> {
  try {
    return await get()
  } catch (error) {
    if (isApiError(error)) throw error
    throw withCause(noToken(), error)
  }
}

function checked(token: string | null | undefined): string {
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw noToken()
  return token
}

function noToken(): ApiError {
  return new ApiError(
    502,
    `The ${PROVIDER} provider could not get a Google access token; check its credentials (accessToken, credentialsFile or Application Default Credentials).`,
    { code: 'upstream_auth_failed', headers: NO_RETRY },
  )
}

/** Keeps the underlying failure for the operator's logs, out of the wire body (ApiError serialises its own fields). */
function withCause(error: ApiError, cause: unknown): ApiError {
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false, configurable: true })
  return error
}
