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
