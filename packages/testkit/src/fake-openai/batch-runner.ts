import { copyFile, link, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiError, batchNotFound } from './errors.js'
import { newBatchId, newFileId, nowSeconds } from './ids.js'
import { SKIPPED_BY_CANCEL, SKIPPED_BY_EXPIRY, type SkipReason, writeResults } from './output.js'
import type { BatchStatus, FakeBatch, FakeFile } from './types.js'
import { type InputValidation, validateBatchInput } from './validate-input.js'

const DAY_SECONDS = 24 * 60 * 60
/** Generated files expire 30 days after creation unless the batch set `output_expires_after`. */
const DEFAULT_OUTPUT_EXPIRY_SECONDS = 30 * DAY_SECONDS

const TERMINAL: ReadonlySet<BatchStatus> = new Set(['failed', 'completed', 'expired', 'cancelled'])
const CANCELLABLE: ReadonlySet<BatchStatus> = new Set(['validating', 'in_progress', 'finalizing'])

export interface BatchRunnerContext {
  files: Map<string, FakeFile>
  batches: Map<string, FakeBatch>
  dataDir: string
  progress: 'per-poll' | number
  /** Validates an input file while a batch is `validating`. @default OpenAI's checks */
  validate?(inputPath: string, endpoint: string, batch: FakeBatch): Promise<InputValidation>
  /** Give every finished batch an error file, empty when nothing failed (Azure OpenAI's way). */
  alwaysWriteErrorFile?: boolean
  /** The expiry of generated files when the batch set no `output_expires_after`; null keeps them. @default 30 days */
  defaultOutputExpirySeconds?: number | null
  /**
   * OpenAI's enqueued-token limit per model: a batch whose prompt tokens, with those of the model's batches
   * in progress, would pass it fails validating with `token_limit_exceeded`. @default no limit
   */
  enqueuedTokenLimit?: number
  /** The message of a `token_limit_exceeded` error, for the model (or deployment) and the limit. @default OpenAI's */
  tokenLimitMessage?(model: string | null, limit: number): string
}

export interface CreateBatchParams {
  input_file_id: string
  endpoint: string
  completion_window: string
  metadata: Record<string, string> | null
  outputExpiresAfterSeconds: number | null
}

interface BatchState {
  batch: FakeBatch
  outputExpiresAfterSeconds: number | null
  /** The status a cancel interrupted: it decides how much work the cancelled batch did. */
  cancelledFrom?: BatchStatus
  /** A private hard link to the input bytes, so deleting the input file mid-run cannot break the batch. */
  inputPath?: string
  /** The prompt tokens it holds in its model's queue while in progress. */
  promptTokens: number
  /** Every mutation of the batch runs on this chain, so polls, cancels, expiry and timers never interleave. */
  queue: Promise<void>
  timer?: NodeJS.Timeout
}

/** Owns batch lifecycles: the step machine, cancellation, forced expiry and the optional timer. */
export class BatchRunner {
  private readonly states = new Map<string, BatchState>()
  /** Runs of `flaky-N-…` requests so far, across batches: each fails its first N. */
  private readonly flakyRuns = new Map<string, number>()
  private closed = false

  constructor(private readonly ctx: BatchRunnerContext) {}

  create(params: CreateBatchParams): FakeBatch {
    const createdAt = nowSeconds()
    const batch: FakeBatch = {
      id: newBatchId(),
      object: 'batch',
      endpoint: params.endpoint,
      model: null,
      errors: null,
      input_file_id: params.input_file_id,
      completion_window: params.completion_window,
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: createdAt,
      in_progress_at: null,
      expires_at: createdAt + DAY_SECONDS,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      usage: null,
      metadata: params.metadata,
    }
    const state: BatchState = {
      batch,
      outputExpiresAfterSeconds: params.outputExpiresAfterSeconds,
      queue: Promise.resolve(),
      promptTokens: 0,
    }
    this.states.set(batch.id, state)
    this.ctx.batches.set(batch.id, batch)
    this.schedule(state)
    return structuredClone(batch)
  }

  /** A snapshot of the batch for `GET /batches/{id}`; in per-poll mode the batch first advances one step. */
  poll(batchId: string): Promise<FakeBatch> {
    const state = this.stateOf(batchId)
    return this.enqueue(state, async () => {
      if (this.ctx.progress === 'per-poll') await this.step(state)
      return structuredClone(state.batch)
    })
  }

  /** Moves a running batch to `cancelling`; the next step finishes it as `cancelled` with partial results. */
  cancel(batchId: string): Promise<FakeBatch> {
    const state = this.stateOf(batchId)
    return this.enqueue(state, async () => {
      const batch = state.batch
      if (CANCELLABLE.has(batch.status)) {
        state.cancelledFrom = batch.status
        batch.status = 'cancelling'
        batch.cancelling_at = nowSeconds()
      } else if (batch.status !== 'cancelling' && batch.status !== 'cancelled') {
        throw new ApiError(409, `Cannot cancel a batch with status '${batch.status}'.`)
      }
      return structuredClone(batch)
    })
  }

  expire(batchId: string): Promise<void> {
    const state = this.states.get(batchId)
    if (!state) throw new Error(`No batch found with id '${batchId}'.`)
    return this.enqueue(state, async () => {
      const { status, request_counts } = state.batch
      if (status === 'validating') return this.finish(state, 'expired', 0, SKIPPED_BY_EXPIRY)
      if (status === 'in_progress') {
        return this.finish(state, 'expired', Math.ceil(request_counts.total / 2), SKIPPED_BY_EXPIRY)
      }
      if (status === 'finalizing') return this.finish(state, 'expired', request_counts.total, SKIPPED_BY_EXPIRY)
      throw new Error(`Cannot expire batch '${batchId}' with status '${status}'.`)
    })
  }

  /** Resolves once no batch has work in flight. */
  async settled(): Promise<void> {
    await Promise.all([...this.states.values()].map((state) => state.queue))
  }

  /** Stops timers; work already in flight still completes (await {@link settled}). */
  close(): void {
    this.closed = true
    for (const state of this.states.values()) clearTimeout(state.timer)
  }

  private stateOf(batchId: string): BatchState {
    const state = this.states.get(batchId)
    if (!state) throw batchNotFound(batchId)
    return state
  }

  private enqueue<T>(state: BatchState, task: () => Promise<T>): Promise<T> {
    const run = state.queue.then(task)
    state.queue = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  /** Timed progress: one step per interval until the batch is terminal. */
  private schedule(state: BatchState): void {
    const interval = this.ctx.progress
    if (this.closed || interval === 'per-poll' || TERMINAL.has(state.batch.status)) return
    state.timer = setTimeout(() => {
      this.enqueue(state, () => this.step(state)).then(
        () => this.schedule(state),
        (error: unknown) => console.error(`fake OpenAI: batch ${state.batch.id} stopped advancing:`, error),
      )
    }, interval)
    state.timer.unref()
  }

  private async step(state: BatchState): Promise<void> {
    const batch = state.batch
    switch (batch.status) {
      case 'validating':
        return this.validate(state)
      case 'in_progress':
        batch.status = 'finalizing'
        batch.finalizing_at = nowSeconds()
        return
      case 'finalizing':
        return this.finish(state, 'completed', batch.request_counts.total, SKIPPED_BY_CANCEL)
      case 'cancelling':
        return this.finish(state, 'cancelled', this.workDoneBeforeCancel(state), SKIPPED_BY_CANCEL)
      default:
        return
    }
  }

  /** A batch cancelled while in progress has done half its requests; one cancelled while finalizing, all. */
  private workDoneBeforeCancel(state: BatchState): number {
    const total = state.batch.request_counts.total
    if (state.cancelledFrom === 'finalizing') return total
    if (state.cancelledFrom === 'in_progress') return Math.ceil(total / 2)
    return 0
  }

  private async validate(state: BatchState): Promise<void> {
    const batch = state.batch
    const file = this.ctx.files.get(batch.input_file_id)
    const inputPath = join(this.ctx.dataDir, `${batch.id}.input`)
    if (!file || !(await linkOrCopy(file.path, inputPath))) {
      return this.fail(state, {
        code: 'invalid_request',
        message: `Cannot find file ${batch.input_file_id}, or organization org-fake does not have access to it.`,
        param: 'file_id',
        line: null,
      })
    }
    const validation = this.ctx.validate
      ? await this.ctx.validate(inputPath, batch.endpoint, batch)
      : await validateBatchInput(inputPath, batch.endpoint)
    if (!validation.ok) {
      await rm(inputPath, { force: true })
      return this.fail(state, ...validation.errors)
    }
    const promptTokens = validation.promptTokens ?? 0
    const limit = this.ctx.enqueuedTokenLimit
    if (limit !== undefined && this.enqueuedTokens(validation.model) + promptTokens > limit) {
      await rm(inputPath, { force: true })
      return this.fail(state, {
        code: 'token_limit_exceeded',
        message: (this.ctx.tokenLimitMessage ?? openAITokenLimitMessage)(validation.model, limit),
        param: null,
        line: null,
      })
    }
    state.promptTokens = promptTokens
    state.inputPath = inputPath
    batch.status = 'in_progress'
    batch.in_progress_at = nowSeconds()
    batch.model = validation.model
    batch.request_counts = { total: validation.total, completed: 0, failed: 0 }
  }

  /** The prompt tokens of `model`'s batches that are in progress or finalizing. */
  private enqueuedTokens(model: string | null): number {
    let tokens = 0
    for (const { batch, promptTokens } of this.states.values()) {
      if (batch.model === model && (batch.status === 'in_progress' || batch.status === 'finalizing'))
        tokens += promptTokens
    }
    return tokens
  }

  private fail(state: BatchState, ...errors: NonNullable<FakeBatch['errors']>['data']): void {
    state.batch.status = 'failed'
    state.batch.failed_at = nowSeconds()
    state.batch.errors = { object: 'list', data: errors }
  }

  /** Writes the output/error files for the first `processed` requests and moves the batch to `terminal`. */
  private async finish(
    state: BatchState,
    terminal: 'completed' | 'cancelled' | 'expired',
    processed: number,
    skipReason: SkipReason,
  ): Promise<void> {
    const batch = state.batch
    if (state.inputPath) {
      const outputId = newFileId()
      const errorId = newFileId()
      const outputPath = join(this.ctx.dataDir, outputId)
      const errorPath = join(this.ctx.dataDir, errorId)
      const results = await writeResults({
        inputPath: state.inputPath,
        outputPath,
        errorPath,
        processed,
        skipReason,
        alwaysWriteErrorFile: this.ctx.alwaysWriteErrorFile,
        flakyRuns: this.flakyRuns,
      })
      await rm(state.inputPath, { force: true })
      state.inputPath = undefined
      if (results.outputBytes !== null) {
        batch.output_file_id = this.addOutputFile(state, outputId, outputPath, 'output', results.outputBytes)
      }
      if (results.errorBytes !== null) {
        batch.error_file_id = this.addOutputFile(state, errorId, errorPath, 'error', results.errorBytes)
      }
      batch.request_counts = { total: batch.request_counts.total, completed: results.completed, failed: results.failed }
      batch.usage = results.usage
    }
    batch.status = terminal
    const now = nowSeconds()
    if (terminal === 'completed') batch.completed_at = now
    if (terminal === 'cancelled') batch.cancelled_at = now
    if (terminal === 'expired') batch.expired_at = now
  }

  private addOutputFile(state: BatchState, id: string, path: string, kind: 'output' | 'error', bytes: number): string {
    const createdAt = nowSeconds()
    const expiry =
      state.outputExpiresAfterSeconds ??
      (this.ctx.defaultOutputExpirySeconds === undefined
        ? DEFAULT_OUTPUT_EXPIRY_SECONDS
        : this.ctx.defaultOutputExpirySeconds)
    this.ctx.files.set(id, {
      id,
      bytes,
      created_at: createdAt,
      filename: `${state.batch.id}_${kind}.jsonl`,
      object: 'file',
      purpose: 'batch_output',
      status: 'processed',
      expires_at: expiry === null ? null : createdAt + expiry,
      status_details: null,
      path,
    })
    return id
  }
}

/** Pins the input bytes for the batch; false when the file vanished in the meantime. */
async function linkOrCopy(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    // Some filesystems refuse hard links; a copy is slower but equivalent.
    await copyFile(from, to)
    return true
  }
}

/** OpenAI's message when a batch would pass its model's enqueued-token limit. */
function openAITokenLimitMessage(model: string | null, limit: number): string {
  return `Enqueued token limit reached for ${model} in organization org-fake. Limit: ${limit.toLocaleString('en-US')} enqueued tokens. Please try again once some in_progress batches have been completed.`
}
