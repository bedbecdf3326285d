import type { IncomingHttpHeaders } from 'node:http'
import { finished, type Readable } from 'node:stream'
import busboy from 'busboy'
import { ApiError, invalidValue, missingParameter, unrecognizedArgument } from '../errors.js'
import type { ExpiresAfter, UploadPurpose } from '../types.js'

/** A multipart upload as it starts: the file part's stream, and its fields as they arrive. */
export interface MultipartUpload {
  file: Readable
  filename: string
  /** Resolves as soon as the `purpose` field is read, before or after the file; its value is not checked here. */
  purpose: Promise<UploadPurpose>
  /** Resolves when the form ends, with the fields as sent (strings); not checked here. */
  expiresAfter: Promise<ExpiresAfter | null>
  /** LiteLLM's `custom_llm_provider` field, which must come before the file. */
  provider: string | undefined
}

const FIELDS = new Set([
  'purpose',
  'custom_llm_provider',
  'expires_after[anchor]',
  'expires_after[seconds]',
  'expires_after.anchor',
  'expires_after.seconds',
])

/**
 * Parses `multipart/form-data` as a stream: resolves when the file part begins, without waiting
 * for (or buffering) its bytes. Fields may come in any order. A malformed form, an unknown field,
 * a second file or a client that goes away fails the file stream, and rejects the field promises
 * with a 400 that says why.
 */
export function parseMultipartUpload(body: Readable, headers: IncomingHttpHeaders): Promise<MultipartUpload> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy
    try {
      parser = busboy({
        headers,
        // Clients (curl, OpenAI's SDKs, browsers) send a filename's raw UTF-8 bytes; busboy would read them as latin1.
        defParamCharset: 'utf8',
        limits: { files: 1, fields: FIELDS.size, fieldSize: 1024, fieldNameSize: 64 },
      })
    } catch {
      return reject(
        new ApiError(400, 'The multipart/form-data body has no boundary; it cannot be read.', {
          code: 'invalid_multipart',
        }),
      )
    }
    const values: Record<string, string> = {}
    let file: Readable | undefined
    let settled = false
    let resolvePurpose!: (purpose: UploadPurpose) => void
    let rejectPurpose!: (error: ApiError) => void
    const purpose = new Promise<UploadPurpose>((res, rej) => {
      resolvePurpose = res
      rejectPurpose = rej
    })
    let resolveExpires!: (value: ExpiresAfter | null) => void
    let rejectExpires!: (error: unknown) => void
    const expiresAfter = new Promise<ExpiresAfter | null>((res, rej) => {
      resolveExpires = res
      rejectExpires = rej
    })
    purpose.catch(() => undefined)
    expiresAfter.catch(() => undefined)

    const fail = (error: ApiError) => {
      if (settled) return
      settled = true
      reject(error)
      rejectPurpose(error)
      rejectExpires(error)
      file?.destroy(error)
      body.unpipe(parser)
      body.resume()
    }

    parser.on('field', (name, value, info) => {
      if (!FIELDS.has(name)) return fail(unrecognizedArgument(name))
      if (info.valueTruncated) return fail(invalidValue(name, `The value of '${name}' is too long.`))
      if (name === 'custom_llm_provider' && file) {
        return fail(invalidValue(name, `Send '${name}' before the file: it decides where the file goes.`))
      }
      values[name] = value
      // Checked by the file service, like every caller's purpose; here it only has to arrive early.
      if (name === 'purpose') resolvePurpose(value as UploadPurpose)
    })
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || file) {
        stream.resume()
        return fail(
          new ApiError(400, `Unexpected file field '${name}': send exactly one file, in the field 'file'.`, {
            param: name,
            code: 'invalid_multipart',
          }),
        )
      }
      file = stream
      // The stream can fail before its consumer listens (a bad field later in the same packet); its
      // consumer sees the error through the stream's state, and the process must not crash meanwhile.
      stream.on('error', () => undefined)
      resolve({
        file: stream,
        filename: info.filename || 'file',
        purpose,
        expiresAfter,
        provider: values.custom_llm_provider,
      })
    })
    for (const limit of ['filesLimit', 'fieldsLimit', 'partsLimit'] as const) {
      parser.on(limit, () =>
        fail(new ApiError(400, 'The form has more parts than an upload takes.', { code: 'invalid_multipart' })),
      )
    }
    parser.on('error', () =>
      fail(new ApiError(400, 'The multipart/form-data body is malformed.', { code: 'invalid_multipart' })),
    )
    parser.on('close', () => {
      if (!file) return fail(missingParameter('file'))
      if (values.purpose === undefined) rejectPurpose(missingParameter('purpose'))
      const anchor = values['expires_after[anchor]'] ?? values['expires_after.anchor']
      const seconds = values['expires_after[seconds]'] ?? values['expires_after.seconds']
      // Strings as sent; the file service checks them, like every caller's.
      resolveExpires(
        anchor === undefined && seconds === undefined ? null : ({ anchor, seconds } as unknown as ExpiresAfter),
      )
      settled = true
    })
    finished(body, (error) => {
      if (error)
        fail(
          new ApiError(400, 'The client closed the connection before the upload finished.', {
            code: 'upload_incomplete',
          }),
        )
    })
    body.pipe(parser)
  })
}
