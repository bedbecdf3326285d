/**
 * The parts of Vertex AI's wire format batchkit reads and writes: the `BatchPredictionJob` resource, Gemini's
 * `GenerateContentRequest` / `GenerateContentResponse`, and the batch input and output lines. Field names are
 * the proto3 JSON (camelCase) spellings; int64 fields arrive as strings.
 */

/** Every value of Vertex's `JobState` enum (job_state.proto). */
export const VERTEX_JOB_STATES = [
  'JOB_STATE_UNSPECIFIED',
  'JOB_STATE_QUEUED',
  'JOB_STATE_PENDING',
  'JOB_STATE_RUNNING',
  'JOB_STATE_SUCCEEDED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLING',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_PAUSED',
  'JOB_STATE_EXPIRED',
  'JOB_STATE_UPDATING',
  'JOB_STATE_PARTIALLY_SUCCEEDED',
] as const

/** A Vertex job state. */
export type VertexJobState = (typeof VERTEX_JOB_STATES)[number]

/** `google.rpc.Status`. */
export interface RpcStatus {
  code?: number
  message?: string
  details?: unknown[]
}

/** `CompletionStats`: int64 counters as proto3 JSON strings; zero counters may be absent. */
export interface VertexCompletionStats {
  successfulCount?: string
  failedCount?: string
  /** `-1` when unknown. */
  incompleteCount?: string
}

/** A `BatchPredictionJob` as Vertex answers it (the fields batchkit reads). */
export interface VertexBatchJob {
  name: string
  displayName?: string
  model?: string
  modelVersionId?: string
  inputConfig?: { instancesFormat?: string; gcsSource?: { uris?: string[] } }
  outputConfig?: { predictionsFormat?: string; gcsDestination?: { outputUriPrefix?: string } }
  outputInfo?: { gcsOutputDirectory?: string }
  instanceConfig?: { excludedFields?: string[]; includedFields?: string[]; instanceType?: string; keyField?: string }
  state?: string
  error?: RpcStatus
  partialFailures?: RpcStatus[]
  completionStats?: VertexCompletionStats
  createTime?: string
  startTime?: string
  endTime?: string
  updateTime?: string
  labels?: Record<string, string>
}

/** A Gemini `Part` (the kinds batchkit writes or reads). */
export interface GeminiPart {
  text?: string
  thought?: boolean
  /** Opaque (base64) context of the model's thinking; Gemini 3 needs a function call's back with it. */
  thoughtSignature?: string
  inlineData?: { mimeType: string; data: string }
  fileData?: { mimeType: string; fileUri: string }
  functionCall?: { name: string; args?: Record<string, unknown>; id?: string }
  functionResponse?: { name: string; response: Record<string, unknown>; id?: string }
}

/** A Gemini `Content`. */
export interface GeminiContent {
  role?: 'user' | 'model'
  parts: GeminiPart[]
}

/** Gemini's `GenerationConfig` (the fields batchkit maps). */
export interface GeminiGenerationConfig {
  maxOutputTokens?: number
  temperature?: number
  topP?: number
  stopSequences?: string[]
  seed?: number
  candidateCount?: number
  presencePenalty?: number
  frequencyPenalty?: number
  responseMimeType?: string
  responseJsonSchema?: unknown
}

/** Gemini's `FunctionDeclaration`, with the parameters as JSON Schema. */
export interface GeminiFunctionDeclaration {
  name: string
  description?: string
  parametersJsonSchema?: unknown
}

/** Gemini's `ToolConfig`. */
export interface GeminiToolConfig {
  functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] }
}

/** Gemini's `GenerateContentRequest` as a batch line carries it (no `model`: the job names it). */
export interface GeminiRequest {
  contents: GeminiContent[]
  systemInstruction?: { parts: GeminiPart[] }
  generationConfig?: GeminiGenerationConfig
  tools?: Array<{ functionDeclarations: GeminiFunctionDeclaration[] }>
  toolConfig?: GeminiToolConfig
  labels?: Record<string, string>
}

/** One line of a Vertex batch input file as batchkit writes it. */
export interface VertexInputLine {
  /** The OpenAI `custom_id`, verbatim; see `custom-id.ts`. */
  custom_id: string
  request: GeminiRequest
}

/** Gemini's `UsageMetadata`. */
export interface GeminiUsageMetadata {
  promptTokenCount?: number
  candidatesTokenCount?: number
  totalTokenCount?: number
  thoughtsTokenCount?: number
  cachedContentTokenCount?: number
  toolUsePromptTokenCount?: number
  trafficType?: string
}

/** A Gemini `Candidate`. */
export interface GeminiCandidate {
  index?: number
  content?: { role?: string; parts?: GeminiPart[] }
  finishReason?: string
  finishMessage?: string
}

/** A Gemini `GenerateContentResponse`. */
export interface GeminiResponse {
  candidates?: GeminiCandidate[]
  promptFeedback?: { blockReason?: string; blockReasonMessage?: string }
  modelVersion?: string
  responseId?: string
  createTime?: string
  usageMetadata?: GeminiUsageMetadata
}

/** One line of a Vertex batch predictions file. */
export interface VertexOutputLine {
  /** `""` on success, otherwise an error description (sometimes JSON, sometimes prefixed text). */
  status?: string
  processed_time?: string
  request?: { labels?: Record<string, string> } & Record<string, unknown>
  response?: GeminiResponse
  /** Present when the job listed it in `instanceConfig.excludedFields`; see `custom-id.ts`. */
  custom_id?: string
}
