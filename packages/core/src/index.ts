export { type Authenticate, type AuthRequest, apiKeyAuth, credentialOf, parseApiKeys } from './auth/api-keys.js'
export type { BatchService, ListBatchesOptions } from './batches/service.js'
export type { CreateBatchInput } from './batches/validate.js'
export { ApiError, type ErrorBody, isApiError } from './errors.js'
export type { CreateFileInput, ErrorReporter, FileService, ListFilesOptions } from './files/service.js'
export { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from './files/upload-limits.js'
export { DEFAULT_PRINCIPAL, type HttpHandler } from './http/handler.js'
export {
  isBodyParserError,
  type NodeMount,
  nodeResponseHeaders,
  serveNodeRequest,
  toHttpRequest,
} from './http/node.js'
export type { HttpRequest, HttpResult } from './http/types.js'
export { toBatchObject, toFileObject, toListObject } from './http/wire.js'
export { type BatchKit, type BatchKitOptions, createBatchKit } from './kit.js'
export { type OpenAIProviderOptions, openai } from './providers/openai/index.js'
export type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderUpload,
} from './providers/types.js'
export type { OrderedIndex } from './store/ordered-index.js'
export type { ListOrder } from './store/records.js'
export * from './types.js'
