export { type Authenticate, type AuthRequest, apiKeyAuth, credentialOf, parseApiKeys } from './auth/api-keys.js'
export type { BatchLifecycle, BatchService, ListBatchesOptions } from './batches/service.js'
export type { CreateBatchInput } from './batches/validate.js'
export type { BudgetOptions, BudgetStatus } from './budgets/budgets.js'
export type { BudgetLedger, LedgerTotals, Reservation } from './budgets/ledger.js'
export { ApiError, type ErrorBody, isApiError } from './errors.js'
export { DEFAULT_MAX_OUTPUT_TOKENS } from './estimates/file-estimator.js'
export type { SamplingOptions } from './estimates/text-counter.js'
export { loadTokenizers } from './estimates/tokenizers.js'
export type { DeliveryOptions } from './events/outbox.js'
export type {
  BatchCreatedEvent,
  BatchEndedEvent,
  BatchEndType,
  BatchEvent,
  BatchEventBase,
  BatchEventCallback,
} from './events/types.js'
export type { ListPurpose } from './files/purpose.js'
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
export { ESTIMATE_HEADER, estimateHeaderValue, toBatchObject, toFileObject, toListObject } from './http/wire.js'
export { type BatchKit, type BatchKitOptions, createBatchKit, type EstimateOptions } from './kit.js'
export { type Logger, SILENT_LOGGER } from './observability/logger.js'
export { createPricing, type PriceOverride, type Pricing, type TokenUsage } from './pricing/cost.js'
export { type LiteLLMImportOptions, pricesFromLiteLLM } from './pricing/litellm.js'
export { DEFAULT_PRICES, type ModelPrice } from './pricing/price-table.js'
export { type AzureProviderOptions, azure } from './providers/azure/index.js'
export { type OpenAIProviderOptions, openai } from './providers/openai/index.js'
export type { ModelRoute } from './providers/routing.js'
export { DEFAULT_QUEUE_RETRY, type QueueRetryOptions } from './providers/split/queue-retry.js'
export type { RequestRetryOptions } from './providers/split/request-retries.js'
export type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderLimits,
  ProviderUpload,
} from './providers/types.js'
export { VERTEX_LIMITS, type VertexProviderOptions, vertex } from './providers/vertex/index.js'
export type { SpendGroup, SpendGroupBy, SpendQuery, SpendReport, SpendTotals } from './spend/spend-report.js'
export type { Coordination } from './store/create-index.js'
export type { LeaseStore } from './store/leases.js'
export type { OrderedIndex } from './store/ordered-index.js'
export type { ListOrder } from './store/records.js'
export { aggregateUsage, mergeUsageSummaries, type UsageSummary } from './tracking/aggregate.js'
export type { TrackingOptions } from './tracking/tracker.js'
export * from './types.js'
export type { AllowedAddressKind } from './webhooks/address-policy.js'
export type { WebhookEndpoint, WebhookOptions } from './webhooks/options.js'
export type { BatchWebhookEvent, BatchWebhookType } from './webhooks/payload.js'
