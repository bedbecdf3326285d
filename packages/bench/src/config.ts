/** How much the bench does: the full run behind docs/benchmarks.md, or a quick smoke run. */
export interface BenchConfig {
  mode: 'full' | 'quick'
  /** Measured runs of every figure; the tables show their median, min and max. */
  runs: number
  /** Which fake upstream sits behind batchkit and Portkey (the direct rows show both). */
  upstream: 'minimal' | 'testkit'
  control: {
    /** Concurrent closed-loop clients, one column set each. */
    clients: number[]
    /** Each run stops after this many seconds… */
    runSeconds: number
    /** …or this many create+retrieve pairs, whichever comes first. */
    maxPairs: number
    /**
     * Before each path's runs in every round, it is loaded at the highest concurrency in windows of
     * this many seconds until three windows in a row are no faster (by 2%) than the fastest before them, for
     * at most {@link warmupMaxSeconds}: a server left idle while the other paths ran may have gone cold, and
     * one just started takes seconds of load to compile its hot paths.
     */
    warmupSeconds: number
    warmupMaxSeconds: number
  }
  upload: {
    /** File sizes in bytes. */
    sizes: number[]
    lineBytes: number
  }
  /** Batch output file sizes in bytes: memory is flat when the largest file's peak is within 10% of the smallest's. */
  aggregation: { sizes: number[] }
  listing: {
    /** Batches created for one owner before listing. */
    batches: number
    /** `GET /batches?limit=100` calls per run. */
    callsPerRun: number
  }
  reads: {
    /** Unfinished batches created for one owner: a list of 100 is all of them. */
    batches: number
    /** How long the provider takes to answer, in ms. */
    upstreamDelayMs: number
    /** batchkit's freshness window, in ms: its default, which the bench leaves as it is. */
    freshnessMs: number
    /** Concurrent closed-loop readers, one row each. */
    readers: number[]
    /** Each run's length: whole freshness windows, so a batch refreshed once per window is refreshed at most that often in it. */
    runSeconds: number
    warmupSeconds: number
  }
  /** One batch above OpenAI's limits (50,000 requests, 200 MB), split into parts: its upload, run and downloads. */
  bigjobs: {
    /** Requests (lines) in the batch input file. */
    requests: number
    /** Bytes per request line, newline included. */
    lineBytes: number
    /** How often the testkit fake advances each of its batches one step, in ms. */
    progressMs: number
    /** How often the client polls `GET /v1/batches/{id}` while the batch runs, in ms. */
    pollMs: number
  }
}

const MB = 1_000_000

/** The full run: five runs of everything, 200 MB and 1 GB uploads and output files, 10,000 batches, a 1 GB batch of 1,000,000 requests. */
export const FULL: BenchConfig = {
  mode: 'full',
  runs: 5,
  upstream: 'minimal',
  control: { clients: [1, 16], runSeconds: 3, maxPairs: 100_000, warmupSeconds: 1, warmupMaxSeconds: 30 },
  upload: { sizes: [200 * MB, 1000 * MB], lineBytes: 4_096 },
  aggregation: { sizes: [200 * MB, 1000 * MB] },
  listing: { batches: 10_000, callsPerRun: 100 },
  reads: { batches: 100, upstreamDelayMs: 200, freshnessMs: 5_000, readers: [1, 50], runSeconds: 10, warmupSeconds: 2 },
  bigjobs: { requests: 1_000_000, lineBytes: 1_000, progressMs: 150, pollMs: 1_000 },
}

/** A smoke run in about a minute: every path once or twice, small files. Its figures are not the benchmark. */
export const QUICK: BenchConfig = {
  mode: 'quick',
  runs: 2,
  upstream: 'minimal',
  control: { clients: [1, 16], runSeconds: 0.5, maxPairs: 20_000, warmupSeconds: 0.5, warmupMaxSeconds: 2 },
  upload: { sizes: [20 * MB, 100 * MB], lineBytes: 4_096 },
  aggregation: { sizes: [5 * MB, 20 * MB] },
  listing: { batches: 500, callsPerRun: 5 },
  reads: { batches: 100, upstreamDelayMs: 200, freshnessMs: 5_000, readers: [1, 50], runSeconds: 5, warmupSeconds: 1 },
  bigjobs: { requests: 100_000, lineBytes: 1_000, progressMs: 150, pollMs: 1_000 },
}
