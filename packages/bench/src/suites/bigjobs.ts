import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { callJson, clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { ENDPOINT } from '../constants.js'
import { HOSTS } from '../hosts.js'
import { type Spread, spread } from '../stats.js'
import { mb, num } from '../table.js'
import { startTarget, type Target, upstreamTarget } from '../targets.js'
import { type JsonlShape, jsonlChunks, jsonlShape, uploadJsonl } from '../upload.js'

/** The stages of one big job, in order. */
export const BIG_JOB_STAGES = ['upload', 'batch', 'output', 'input'] as const

/** One stage of a big job: the upload, the batch's run, or the download of its output or input file. */
export type BigJobStage = (typeof BIG_JOB_STAGES)[number]

/** One stage's figures over the runs. */
export interface BigJobStageRow {
  stage: BigJobStage
  seconds: Spread
  /** Bytes the stage moved between the client and batchkit; absent for the batch's run. */
  bytes?: number
  /** Decimal megabytes per second of `bytes`. */
  mbPerSecond?: Spread
  /** The server's RSS as the stage began, in bytes. */
  startRssBytes: Spread
  /** The server's peak RSS during the stage, in bytes. */
  peakRssBytes: Spread
  /** Each run's peak during the stage less its idle RSS (before the upload), in bytes. */
  growthBytes: Spread
}

/** What the big-jobs suite measured. */
export interface BigJobsResult {
  requests: number
  /** Bytes of the batch input file. */
  bytes: number
  /** Provider batches (and input file parts) the batch ran as, as the fake counted them. */
  parts: number
  /** Bytes of the batch's output file. */
  outputBytes: number
  /** The server's RSS after its warm-up, before the upload, in bytes. */
  idleRssBytes: Spread
  /** Whether each stage's peak is its own; when not, peaks are since the server started. */
  peaksPerStage: boolean
  stages: BigJobStageRow[]
}

/**
 * OpenAI's limits of one batch, which batchkit's `openai()` provider keeps by default: a part holds at
 * most this many requests and bytes.
 */
export const OPENAI_BATCH_LIMITS = { maxRequests: 50_000, maxBytes: 200_000_000 }

type Log = (line: string) => void
type Agent = ReturnType<typeof clientAgent>

/** One stage of one run. */
interface StageSample {
  seconds: number
  startRssBytes: number
  peakRssBytes: number
}

/** One run's figures. */
interface RunSample {
  idleRssBytes: number
  parts: number
  outputBytes: number
  stages: Record<BigJobStage, StageSample>
}

/** How long a batch may take to run before the suite gives up on it. */
const BATCH_TIMEOUT_MS = 60 * 60_000

/**
 * One batch input file above OpenAI's limits (in the full run 1,000,000 requests and 1 GB), through
 * batchkit on Express with the memory store, in front of the testkit fake advancing its batches every
 * `progressMs`: the upload (cut into parts as it streams), the batch (one provider batch per part, run
 * to `completed` and billed), the download of its output file and of its input file (the parts
 * joined). Each run gets fresh processes; the server's peak RSS is read for each stage alone. Every
 * stage checks what it got, and the suite throws when anything is wrong.
 */
export async function runBigJobs(config: BenchConfig, log: Log): Promise<BigJobsResult> {
  const host = HOSTS[0]
  if (!host) throw new Error('no host to run big jobs on')
  const { bigjobs } = config
  const shape = jsonlShape(bigjobs.requests * bigjobs.lineBytes, bigjobs.lineBytes)
  const expectedParts = partsOf(shape)
  if (expectedParts < 2) throw new Error(`a file of ${shape.lines} requests fits one provider batch: nothing to split`)
  log(
    `  ${num(shape.lines)} requests, ${mb(shape.bytes)} MB: ${expectedParts} parts at OpenAI's limits; ` +
      'hashing the file to check its download…',
  )
  const inputDigest = digestOf(shape)
  const samples: RunSample[] = []
  let peaksPerStage = true
  const agent = clientAgent(2)
  try {
    for (let run = 1; run <= config.runs; run++) {
      const target = await startTarget(
        { kind: 'batchkit', host, store: 'memory' },
        { kind: 'testkit', progressMs: bigjobs.progressMs },
      )
      try {
        const sample = await oneJob(agent, target, shape, inputDigest, bigjobs.pollMs, (line) =>
          log(`  run ${run}/${config.runs} ${line}`),
        )
        peaksPerStage &&= target.server.canResetPeak
        if (sample.parts !== expectedParts) {
          throw new Error(`the batch ran as ${sample.parts} provider batches, not the ${expectedParts} its limits make`)
        }
        samples.push(sample)
      } finally {
        await target.stop()
      }
    }
  } finally {
    await agent.close()
  }
  const first = samples[0] as RunSample
  return {
    requests: shape.lines,
    bytes: shape.bytes,
    parts: first.parts,
    outputBytes: first.outputBytes,
    idleRssBytes: spread(samples.map((s) => s.idleRssBytes)),
    peaksPerStage,
    stages: BIG_JOB_STAGES.map((stage) => {
      const bytes = stage === 'upload' || stage === 'input' ? shape.bytes : stage === 'output' ? first.outputBytes : 0
      const seconds = samples.map((s) => s.stages[stage].seconds)
      return {
        stage,
        seconds: spread(seconds),
        ...(bytes > 0 ? { bytes, mbPerSecond: spread(seconds.map((s) => bytes / 1e6 / s)) } : {}),
        startRssBytes: spread(samples.map((s) => s.stages[stage].startRssBytes)),
        peakRssBytes: spread(samples.map((s) => s.stages[stage].peakRssBytes)),
        growthBytes: spread(samples.map((s) => s.stages[stage].peakRssBytes - s.idleRssBytes)),
      }
    }),
  }
}

/** How many parts a file is cut into at OpenAI's limits: every part but the last is full. */
export function partsOf(shape: JsonlShape): number {
  const perPart = Math.min(OPENAI_BATCH_LIMITS.maxRequests, Math.floor(OPENAI_BATCH_LIMITS.maxBytes / shape.lineBytes))
  return Math.ceil(shape.lines / perPart)
}

/** One big job on a fresh target: warm up, then each stage with the server's peak RSS reset before it. */
async function oneJob(
  agent: Agent,
  target: Target,
  shape: JsonlShape,
  inputDigest: string,
  pollMs: number,
  log: Log,
): Promise<RunSample> {
  const server = target.server
  const warm = await uploadJsonl(agent, target, jsonlShape(2_000_000, shape.lineBytes))
  await callJson(agent, target, 'DELETE', `/files/${warm.id}`)
  const idleRssBytes = server.rssBytes()
  const stage = async <T>(name: BigJobStage, work: () => Promise<T>): Promise<{ value: T; sample: StageSample }> => {
    const startRssBytes = server.rssBytes()
    server.resetPeak()
    const started = performance.now()
    const value = await work()
    const sample = { seconds: (performance.now() - started) / 1000, startRssBytes, peakRssBytes: server.peakRssBytes() }
    log(
      `${name}: ${sample.seconds.toFixed(1)} s, peak RSS ${mb(sample.peakRssBytes)} MB ` +
        `(+${mb(sample.peakRssBytes - idleRssBytes)} MB over idle ${mb(idleRssBytes)} MB)`,
    )
    return { value, sample }
  }

  const upload = await stage('upload', async () => {
    const file = await uploadJsonl(agent, target, shape)
    const stored = await callJson<{ bytes: number }>(agent, target, 'GET', `/files/${file.id}`)
    if (stored.bytes !== shape.bytes) throw new Error(`the File object says ${stored.bytes} bytes, not ${shape.bytes}`)
    return file.id
  })
  const batch = await stage('batch', () => runBatch(agent, target, upload.value, shape.lines, pollMs))
  const outputId = batch.value.output_file_id as string
  const output = await stage('output', async () => {
    const { bytes, lines } = await download(agent, target, outputId)
    if (lines !== shape.lines)
      throw new Error(`the output file has ${lines} lines, not one per request (${shape.lines})`)
    const stored = await callJson<{ bytes: number }>(agent, target, 'GET', `/files/${outputId}`)
    if (stored.bytes !== bytes)
      throw new Error(`the output file downloads as ${bytes} bytes; its File object says ${stored.bytes}`)
    return bytes
  })
  const input = await stage('input', async () => {
    const got = await download(agent, target, upload.value, true)
    if (got.bytes !== shape.bytes) throw new Error(`the input file downloads as ${got.bytes} bytes, not ${shape.bytes}`)
    if (got.digest !== inputDigest) throw new Error('the input file downloads with other bytes than were uploaded')
    return got.bytes
  })
  const page = await callJson<{ data: unknown[]; has_more: boolean }>(
    agent,
    upstreamTarget(target),
    'GET',
    '/batches?limit=100',
  )
  if (page.has_more) throw new Error('the fake holds over 100 batches')
  return {
    idleRssBytes,
    parts: page.data.length,
    outputBytes: output.value,
    stages: { upload: upload.sample, batch: batch.sample, output: output.sample, input: input.sample },
  }
}

/** The fields of a Batch object the suite reads. */
interface BatchObject {
  id: string
  status: string
  output_file_id: string | null
  error_file_id: string | null
  request_counts: { total: number; completed: number; failed: number }
  usage?: { total_tokens: number } | null
}

/**
 * Creates a batch on the file and polls it until it ends; throws unless it completed with every request,
 * an output file, no error file and its usage (which batchkit shows once the batch is billed).
 */
async function runBatch(agent: Agent, target: Target, fileId: string, requests: number, pollMs: number) {
  const created = await callJson<BatchObject>(agent, target, 'POST', '/batches', {
    input_file_id: fileId,
    endpoint: ENDPOINT,
    completion_window: '24h',
  })
  const deadline = performance.now() + BATCH_TIMEOUT_MS
  let batch = created
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    if (performance.now() > deadline) throw new Error(`batch ${created.id} still ${batch.status} after an hour`)
    await sleep(pollMs)
    batch = await callJson<BatchObject>(agent, target, 'GET', `/batches/${created.id}`)
  }
  const counts = batch.request_counts
  if (batch.status !== 'completed') throw new Error(`batch ${batch.id} ended ${batch.status}: ${JSON.stringify(batch)}`)
  if (counts.total !== requests || counts.completed !== requests || counts.failed !== 0) {
    throw new Error(`batch ${batch.id} counts ${JSON.stringify(counts)}, not ${requests} completed`)
  }
  if (!batch.output_file_id || batch.error_file_id) {
    throw new Error(`batch ${batch.id}: output file ${batch.output_file_id}, error file ${batch.error_file_id}`)
  }
  if (!batch.usage || batch.usage.total_tokens <= 0) throw new Error(`batch ${batch.id} has no usage`)
  return batch
}

/** Streams a file's content, counting its bytes and lines, and hashing it when asked. */
async function download(
  agent: Agent,
  target: Target,
  fileId: string,
  hash = false,
): Promise<{ bytes: number; lines: number; digest?: string }> {
  const response = await request(`${target.baseURL}/files/${encodeURIComponent(fileId)}/content`, {
    dispatcher: agent,
    headers: target.headers,
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  })
  if (response.statusCode !== 200) {
    throw new Error(`download of ${fileId}: ${response.statusCode} ${(await response.body.text()).slice(0, 300)}`)
  }
  const digest = hash ? createHash('sha256') : undefined
  let bytes = 0
  let lines = 0
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    digest?.update(chunk)
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) lines++
  }
  return { bytes, lines, digest: digest?.digest('hex') }
}

const NEWLINE = 0x0a

/** The SHA-256 of the generated file, to check its download against. */
function digestOf(shape: JsonlShape): string {
  const digest = createHash('sha256')
  for (const chunk of jsonlChunks(shape)) digest.update(chunk)
  return digest.digest('hex')
}
