export { type FakeGeminiUsage, fakeGeminiText, fakeGeminiUsage } from './predictions.js'
export { startFakeGcp } from './server.js'
export type {
  FakeGcp,
  FakeGcpOptions,
  FakeGcpRequest,
  FakeGcsCorruption,
  FakeGcsObject,
  FakeJobOutcome,
  FakeVertexJob,
  VertexJobState,
} from './types.js'
