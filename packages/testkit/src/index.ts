export { type DelayProxy, type DelayProxyOptions, startDelayProxy } from './delay-proxy.js'
export {
  AZURE_EXPIRY_API_VERSION,
  AZURE_GA_API_VERSION,
  AZURE_POST_GA_MODELS,
} from './fake-azure/api-versions.js'
export { AZURE_BATCH_ENDPOINTS, AZURE_EXPIRY_RANGE } from './fake-azure/batches.js'
export { startFakeAzure } from './fake-azure/server.js'
export {
  AZURE_API_VERSIONS,
  type AzureApi,
  type AzureDeployment,
  type AzureErrorBody,
  type AzureFileStatus,
  type AzureObjectStyle,
  type FakeAzure,
  type FakeAzureFailNextOptions,
  type FakeAzureOptions,
  type FakeAzureRequest,
} from './fake-azure/types.js'
export * from './fake-gcp/index.js'
export { BATCH_ENDPOINTS } from './fake-openai/batches.js'
export type { OpenAIErrorBody } from './fake-openai/errors.js'
export { startFakeOpenAI } from './fake-openai/server.js'
export type {
  BatchError,
  BatchStatus,
  BatchUsage,
  FailNextOptions,
  FakeBatch,
  FakeFile,
  FakeOpenAI,
  FakeOpenAIOptions,
  FileObject,
  FilePurpose,
} from './fake-openai/types.js'
export { type FakeUsage, fakeBatchUsage, fakeUsage } from './fake-openai/usage.js'
export { createSchemaValidator, type SchemaName, type SchemaValidator } from './schema-validator.js'
export {
  type RedisCommandClient,
  removePostgresTestData,
  removeRedisTestData,
  type SqlRunner,
} from './store-cleanup.js'
