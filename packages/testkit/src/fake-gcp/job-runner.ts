import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { copyFile, link, mkdir, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { GoogleError } from './errors.js'
import { fakePredictionRow, rfc3339Micros } from './predictions.js'
import { type GcsStore, parseGsPrefix, parseGsUri } from './storage.js'
import type { FakeJobOutcome, FakeVertexJob, VertexJobState } from './types.js'

const TERMINAL: ReadonlySet<VertexJobState> = new Set([
  'JOB_STATE_SUCCEEDED',
  'JOB_STATE_PARTIALLY_SUCCEEDED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_EXPIRED',
])
const PUBLISHER_MODEL = /(?:^|\/)publishers\/[^/]+\/models\/[^/]+$/
const CANCELLABLE: ReadonlySet<VertexJobState> = new Set([
  'JOB_STATE_QUEUED',
  'JOB_STATE_PENDING',
  'JOB_STATE_RUNNING',
  'JOB_STATE_PAUSED',
  'JOB_STATE_UPDATING',
])

/** What a create request asks for, already validated. */
export interface CreateJobParams {
  parent: string
  displayName: string
  model: string
  inputConfig: FakeVertexJob['inputConfig']
  outputConfig: FakeVertexJob['outputConfig']
  instanceConfig?: FakeVertexJob['instanceConfig']
  labels?: Record<string, string>
}

/** Where one input line lives. */
interface LineRef {
  file: number
  start: number
  length: number
}

interface JobEntry {
  job: FakeVertexJob
  id: string
  outcome: FakeJobOutcome
  /** Private hard links to the input objects, so deleting them mid-run changes nothing. */
  inputs: string[]
  lines: LineRef[]
  cancelledFrom?: VertexJobState
  queue: Promise<void>
  timer?: NodeJS.Timeout
}

/** Owns job lifecycles: PENDING → RUNNING → terminal, cancellation, predictions written to the fake GCS. */
export class JobRunner {
  readonly jobs = new Map<string, FakeVertexJob>()
  private readonly entries = new Map<string, JobEntry>()
  private readonly outcomes: FakeJobOutcome[] = []
  private closed = false

  constructor(
    private readonly store: GcsStore,
    private readonly dataDir: string,
    private readonly progress: 'per-poll' | number,
  ) {}

  nextJob(outcome: FakeJobOutcome): void {
    this.outcomes.push(outcome)
  }

  create(params: CreateJobParams): FakeVertexJob {
    const id = newJobId()
    const now = rfc3339Micros()
    const job: FakeVertexJob = {
      name: `${params.parent}/batchPredictionJobs/${id}`,
      displayName: params.displayName,
      model: params.model,
      inputConfig: params.inputConfig,
      outputConfig: params.outputConfig,
      ...(params.instanceConfig ? { instanceConfig: params.instanceConfig } : {}),
      ...(params.labels ? { labels: params.labels } : {}),
      state: 'JOB_STATE_PENDING',
      createTime: now,
      updateTime: now,
    }
    const entry: JobEntry = {
      job,
      id,
      outcome: this.outcomes.shift() ?? {},
      inputs: [],
      lines: [],
      queue: Promise.resolve(),
    }
    this.entries.set(id, entry)
    this.jobs.set(id, job)
    this.schedule(entry)
    return structuredClone(job)
  }

  /** The job named `name` (full resource name), or a 404. */
  private entryOf(name: string): JobEntry {
    const id = name.slice(name.lastIndexOf('/') + 1)
    const entry = this.entries.get(id)
    if (!entry || entry.job.name !== name) {
      throw new GoogleError(404, `The BatchPredictionJob does not exist: ${name}.`)
    }
    return entry
  }

  /** `GET …/batchPredictionJobs/{id}`: in per-poll mode the job first advances one step. */
  poll(name: string): Promise<FakeVertexJob> {
    const entry = this.entryOf(name)
    return this.enqueue(entry, async () => {
      if (this.progress === 'per-poll') await this.step(entry)
      return structuredClone(entry.job)
    })
  }

  /** `POST …:cancel`: a running job turns CANCELLING; the next step ends it CANCELLED with the rows done so far. */
  cancel(name: string): Promise<void> {
    const entry = this.entryOf(name)
    return this.enqueue(entry, async () => {
      const job = entry.job
      if (CANCELLABLE.has(job.state)) {
        entry.cancelledFrom = job.state
        this.setState(entry, 'JOB_STATE_CANCELLING')
      } else if (job.state !== 'JOB_STATE_CANCELLING') {
        throw new GoogleError(400, `The BatchPredictionJob ${name} is in state ${job.state} and cannot be cancelled.`, {
          rpcStatus: 'FAILED_PRECONDITION',
        })
      }
    })
  }

  /** `DELETE …/batchPredictionJobs/{id}`: only finished jobs. */
  delete(name: string): Promise<void> {
    const entry = this.entryOf(name)
    return this.enqueue(entry, async () => {
      if (!TERMINAL.has(entry.job.state)) {
        throw new GoogleError(
          400,
          `The BatchPredictionJob ${name} is in state ${entry.job.state} and cannot be deleted.`,
          {
            rpcStatus: 'FAILED_PRECONDITION',
          },
        )
      }
      clearTimeout(entry.timer)
      this.entries.delete(entry.id)
      this.jobs.delete(entry.id)
      await this.release(entry)
    })
  }

  /** The jobs under `parent`, newest first. */
  list(parent: string): FakeVertexJob[] {
    return [...this.entries.values()]
      .filter((entry) => entry.job.name.startsWith(`${parent}/batchPredictionJobs/`))
      .reverse()
      .map((entry) => structuredClone(entry.job))
  }

  /** Forces a state (test helper). */
  force(id: string, state: VertexJobState): void {
    const entry = this.entries.get(id)
    if (!entry) throw new Error(`No job with id '${id}'.`)
    this.setState(entry, state)
  }

  async settled(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => entry.queue))
  }

  close(): void {
    this.closed = true
    for (const entry of this.entries.values()) clearTimeout(entry.timer)
  }

  private enqueue<T>(entry: JobEntry, task: () => Promise<T>): Promise<T> {
    const run = entry.queue.then(task)
    entry.queue = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  private schedule(entry: JobEntry): void {
    const interval = this.progress
    if (this.closed || interval === 'per-poll' || TERMINAL.has(entry.job.state)) return
    entry.timer = setTimeout(() => {
      this.enqueue(entry, () => this.step(entry)).then(
        () => this.schedule(entry),
        (error: unknown) => console.error(`fake Vertex: job ${entry.id} stopped advancing:`, error),
      )
    }, interval)
    entry.timer.unref()
  }

  private setState(entry: JobEntry, state: VertexJobState): void {
    const job = entry.job
    const now = rfc3339Micros()
    job.state = state
    job.updateTime = now
    if (state === 'JOB_STATE_RUNNING' && !job.startTime) job.startTime = now
    if (TERMINAL.has(state) && !job.endTime) job.endTime = now
  }

  private async step(entry: JobEntry): Promise<void> {
    switch (entry.job.state) {
      case 'JOB_STATE_QUEUED':
      case 'JOB_STATE_PENDING':
        return this.start(entry)
      case 'JOB_STATE_RUNNING':
        return this.finish(entry)
      case 'JOB_STATE_CANCELLING': {
        const processed = entry.cancelledFrom === 'JOB_STATE_RUNNING' ? Math.ceil(entry.lines.length / 2) : 0
        await this.writeOutput(entry, processed)
        // A cancelled job carries google.rpc.Code CANCELLED as its error.
        entry.job.error = { code: 1, message: 'CANCELED' }
        this.setState(entry, 'JOB_STATE_CANCELLED')
        return this.release(entry)
      }
      default:
        return
    }
  }

  /** Reads the input (pinning it), then RUNNING; a missing input fails the job, as Vertex does. */
  private async start(entry: JobEntry): Promise<void> {
    const job = entry.job
    if (entry.outcome.state === 'JOB_STATE_EXPIRED') {
      this.setState(entry, 'JOB_STATE_EXPIRED')
      return
    }
    const jobDir = join(this.dataDir, 'jobs')
    await mkdir(jobDir, { recursive: true })
    for (const [index, uri] of job.inputConfig.gcsSource.uris.entries()) {
      const location = parseGsUri(uri)
      const object = location ? this.store.get(location.bucket, location.name) : undefined
      const pinned = join(jobDir, `${entry.id}-${index}.input`)
      if (!object || !(await linkOrCopy(object.path, pinned))) {
        job.error = { code: 3, message: `Failed to read the input file ${uri}: No such object.` }
        this.setState(entry, 'JOB_STATE_FAILED')
        return this.release(entry)
      }
      entry.inputs.push(pinned)
      entry.lines.push(...(await indexLines(pinned, index)))
    }
    this.setState(entry, 'JOB_STATE_RUNNING')
    job.completionStats = stats(0, 0, entry.lines.length)
  }

  private async finish(entry: JobEntry): Promise<void> {
    const job = entry.job
    if (entry.outcome.state === 'JOB_STATE_FAILED') {
      const error = entry.outcome.error
      job.error = (typeof error === 'function' ? error(job.name) : error) ?? {
        code: 13,
        message: 'Fake internal failure of the job.',
      }
      this.setState(entry, 'JOB_STATE_FAILED')
      return this.release(entry)
    }
    await this.writeOutput(entry, entry.lines.length)
    this.setState(entry, entry.outcome.state ?? 'JOB_STATE_SUCCEEDED')
    return this.release(entry)
  }

  /**
   * Writes the rows of the first `processed` input lines, in a shuffled order, under
   * `{outputUriPrefix}/prediction-model-<time>/`: the final `predictions.jsonl` and, as Vertex exports rows
   * while a job runs, `incremental_predictions/predictions_<n>.jsonl` chunks holding the same rows (as the
   * outcome says). Sets `completionStats` and `outputInfo`.
   */
  private async writeOutput(entry: JobEntry, processed: number): Promise<void> {
    const job = entry.job
    const total = entry.lines.length
    const outcome = entry.outcome
    const failLines = new Set(outcome.failLines ?? (outcome.state === 'JOB_STATE_PARTIALLY_SUCCEEDED' ? [1] : []))
    // Vertex documents instanceConfig.excludedFields for custom models; the fake honours it for those only.
    const excludedFields = PUBLISHER_MODEL.test(job.model) ? [] : (job.instanceConfig?.excludedFields ?? [])
    let succeeded = 0
    let failed = 0
    if (processed > 0) {
      const destination = parseGsPrefix(job.outputConfig.gcsDestination.outputUriPrefix)!
      const prefix = destination.prefix.replace(/\/+$/, '')
      const directory = `${prefix === '' ? '' : `${prefix}/`}prediction-model-${rfc3339Micros()}`
      const order = shuffled(processed, entry.id)
      const half = Math.ceil(order.length / 2)
      // Each row goes to the final file and to one of two incremental chunks, in one streaming pass.
      const sinks: Array<{ name: string; temp: string; out: WriteStream; takes(position: number): boolean }> = []
      const sink = (name: string, takes: (position: number) => boolean): void => {
        const temp = this.store.tempPath()
        sinks.push({ name: `${directory}/${name}`, temp, out: createWriteStream(temp), takes })
      }
      if (outcome.output !== 'final') {
        sink('incremental_predictions/predictions_1.jsonl', (position) => position < half)
        if (order.length > half) sink('incremental_predictions/predictions_2.jsonl', (position) => position >= half)
      }
      if (outcome.output !== 'incremental') sink('predictions.jsonl', () => true)
      const handles = await Promise.all(entry.inputs.map((path) => open(path, 'r')))
      try {
        for (const [position, index] of order.entries()) {
          const ref = entry.lines[index]!
          const bytes = Buffer.alloc(ref.length)
          await handles[ref.file]!.read(bytes, 0, ref.length, ref.start)
          let line: unknown
          try {
            line = JSON.parse(bytes.toString('utf8'))
          } catch {
            line = undefined
          }
          const row = fakePredictionRow(line, {
            model: job.model,
            fail: failLines.has(index + 1),
            lineNumber: index + 1,
            excludedFields,
            finishReason: outcome.finishReasons?.[index + 1],
          })
          if (row.status === '') succeeded++
          else failed++
          const text = `${JSON.stringify(row)}\n`
          for (const { out, takes } of sinks) {
            if (takes(position) && !out.write(text)) await once(out, 'drain')
          }
        }
      } finally {
        await Promise.all(handles.map((handle) => handle.close()))
        for (const { out } of sinks) out.end()
        await Promise.all(sinks.map(({ out }) => finished(out)))
      }
      for (const { name, temp } of sinks) await this.store.commit(destination.bucket, name, temp, 'application/jsonl')
      job.outputInfo = { gcsOutputDirectory: `gs://${destination.bucket}/${directory}` }
    }
    job.completionStats = stats(succeeded, failed, total - processed)
  }

  private async release(entry: JobEntry): Promise<void> {
    await Promise.all(entry.inputs.map((path) => rm(path, { force: true })))
    entry.inputs = []
  }
}

/** Offsets of the non-blank lines of a file, found by scanning its bytes (the lines themselves are not kept). */
async function indexLines(path: string, file: number): Promise<LineRef[]> {
  const refs: LineRef[] = []
  let position = 0
  let lineStart = 0
  let hasContent = false
  const close = (end: number): void => {
    if (hasContent) refs.push({ file, start: lineStart, length: end - lineStart })
    hasContent = false
  }
  for await (const chunk of createReadStream(path)) {
    for (const byte of chunk as Buffer) {
      if (byte === 0x0a) {
        close(position)
        lineStart = position + 1
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) {
        hasContent = true
      }
      position++
    }
  }
  close(position)
  return refs
}

/**
 * A deterministic shuffle of `0..count-1` seeded by the job id, never the identity when count ≥ 2, so rows
 * never come back in input order.
 */
function shuffled(count: number, seed: string): number[] {
  const order = Array.from({ length: count }, (_, index) => index)
  let state = createHash('sha256').update(seed).digest().readUInt32BE(0)
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  if (count >= 2 && order.every((value, index) => value === index)) order.reverse()
  return order
}

/** `completionStats` in proto3 JSON: int64 as strings, zero counters omitted. */
function stats(succeeded: number, failed: number, incomplete: number): FakeVertexJob['completionStats'] {
  return {
    ...(succeeded ? { successfulCount: String(succeeded) } : {}),
    ...(failed ? { failedCount: String(failed) } : {}),
    ...(incomplete ? { incompleteCount: String(incomplete) } : {}),
  }
}

/** A numeric job id of 19 digits, like Vertex's. */
function newJobId(): string {
  const value = BigInt(`0x${randomBytes(8).toString('hex')}`) % 9_000_000_000_000_000_000n
  return String(value + 1_000_000_000_000_000_000n)
}

async function linkOrCopy(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    await copyFile(from, to)
    return true
  }
}
