import { request } from 'undici'
import { clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { HOSTS } from '../hosts.js'
import { type Spread, spread } from '../stats.js'
import { labelOf, startTarget, type Target, type TargetSpec, type UpstreamOptions } from '../targets.js'
import { type JsonlShape, jsonlShape, uploadJsonl } from '../upload.js'

/** One path's upload figures for one file size. */
export interface UploadRow {
  label: string
  /** Bytes of the JSONL file. */
  bytes: number
  skipped?: string
  seconds?: Spread
  /** Decimal megabytes (10^6 bytes) of JSONL per second. */
  mbPerSecond?: Spread
  /** The server process's peak RSS during the upload, in bytes. */
  peakRssBytes?: Spread
  /** The server process's RSS just before the upload, in bytes. */
  idleRssBytes?: Spread
  /** CPU seconds (user + system) the server process spent on the upload: what other work on the machine disturbs least. */
  serverCpuSeconds?: Spread
  /** Each run's MB/s and server CPU seconds, in run order, to pair with another row's runs. */
  runs?: { mbPerSecond: number; serverCpuSeconds: number }[]
}

type Log = (line: string) => void

/**
 * Uploads a generated JSONL file of each size, streamed as multipart, to every path in turn, round
 * after round. Each upload gets fresh processes (fake upstream and gateway), warmed with a 2 MB
 * upload, so its peak RSS is that of one upload of that size, not of the ones before it.
 */
export async function runUploads(config: BenchConfig, log: Log): Promise<UploadRow[]> {
  const express = HOSTS[0]
  if (!express) throw new Error('no host to upload through')
  const upstream: UpstreamOptions = { kind: config.upstream }
  const specs: TargetSpec[] = [
    { kind: 'direct' },
    { kind: 'batchkit', host: express, store: 'memory' },
    // The same without estimates, measured in the same runs, for what estimating costs an upload.
    { kind: 'batchkit', host: express, store: 'memory', estimates: false },
    { kind: 'portkey' },
  ]
  const samples = new Map<string, { seconds: number[]; peak: number[]; idle: number[]; cpu: number[] }>()
  const agent = clientAgent(1)
  try {
    for (let run = 1; run <= config.runs; run++) {
      // The estimates pair swaps places every run, so neither always goes first on a machine that drifts.
      const ordered = run % 2 === 0 ? [specs[0], specs[2], specs[1], specs[3]] : specs
      for (const spec of ordered as TargetSpec[]) {
        for (const size of config.upload.sizes) {
          const shape = jsonlShape(size, config.upload.lineBytes)
          const label = labelOf(spec, upstream)
          const sample = samples.get(`${label}|${shape.bytes}`) ?? { seconds: [], peak: [], idle: [], cpu: [] }
          samples.set(`${label}|${shape.bytes}`, sample)
          const prefix = `  run ${run}/${config.runs} ${label}, ${mb(shape.bytes)} MB`
          try {
            const result = await oneUpload(agent, spec, upstream, shape)
            sample.seconds.push(result.seconds)
            sample.peak.push(result.peakRssBytes)
            sample.idle.push(result.idleRssBytes)
            sample.cpu.push(result.serverCpuSeconds)
            log(
              `${prefix}: ${result.seconds.toFixed(2)} s, ${(shape.bytes / 1e6 / result.seconds).toFixed(0)} MB/s, ` +
                `server CPU ${result.serverCpuSeconds.toFixed(2)} s, ` +
                `peak RSS ${mb(result.peakRssBytes)} MB (idle ${mb(result.idleRssBytes)} MB)`,
            )
          } catch (error) {
            log(`${prefix}: failed: ${(error as Error).message}`)
          }
        }
      }
    }
  } finally {
    await agent.close()
  }
  const rows: UploadRow[] = []
  for (const spec of specs) {
    const label = labelOf(spec, upstream)
    for (const size of config.upload.sizes) {
      const bytes = jsonlShape(size, config.upload.lineBytes).bytes
      const sample = samples.get(`${label}|${bytes}`)
      if (!sample || sample.seconds.length === 0) {
        rows.push({ label, bytes, skipped: 'failed (see the log)' })
        continue
      }
      rows.push({
        label,
        bytes,
        seconds: spread(sample.seconds),
        mbPerSecond: spread(sample.seconds.map((s) => bytes / 1e6 / s)),
        peakRssBytes: spread(sample.peak),
        idleRssBytes: spread(sample.idle),
        serverCpuSeconds: spread(sample.cpu),
        runs: sample.seconds.map((s, i) => ({
          mbPerSecond: bytes / 1e6 / s,
          serverCpuSeconds: sample.cpu[i] as number,
        })),
      })
    }
  }
  return rows
}

/** One upload on fresh processes: start, warm up, reset the peak, upload, read the peak, delete, stop. */
async function oneUpload(
  agent: ReturnType<typeof clientAgent>,
  spec: TargetSpec,
  upstream: UpstreamOptions,
  shape: JsonlShape,
): Promise<{ seconds: number; peakRssBytes: number; idleRssBytes: number; serverCpuSeconds: number }> {
  const target = await startTarget(spec, upstream)
  try {
    const warm = await uploadJsonl(agent, target, jsonlShape(2_000_000, shape.lineBytes))
    await deleteFile(agent, target, warm.id)
    const idleRssBytes = target.server.rssBytes()
    target.server.resetPeak()
    const cpuBefore = target.server.cpuSeconds()
    const result = await uploadJsonl(agent, target, shape)
    const serverCpuSeconds = target.server.cpuSeconds() - cpuBefore
    const peakRssBytes = target.server.peakRssBytes()
    await deleteFile(agent, target, result.id)
    return { seconds: result.seconds, peakRssBytes, idleRssBytes, serverCpuSeconds }
  } finally {
    await target.stop()
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(0)
}

async function deleteFile(agent: ReturnType<typeof clientAgent>, target: Target, id: string): Promise<void> {
  const response = await request(`${target.baseURL}/files/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    dispatcher: agent,
    headers: target.headers,
  })
  await response.body.dump()
}
