import { builtChild } from './build.js'
import { BENCH_API_KEY, UPSTREAM_API_KEY } from './constants.js'
import { type Host, unavailable } from './hosts.js'
import { BENCH_DIR, cpuProfileFlags, type ServerProcess, startServer } from './servers.js'

/** How long the testkit fake holds a batch in each status unless told otherwise: an hour, so it never moves in a run. */
const TESTKIT_HOLD_MS = 3_600_000

/** Which fake upstream a target talks to. */
export interface UpstreamOptions {
  /** `minimal`: the bench's own; `testkit`: `startFakeOpenAI({ progress: 3_600_000 })`, or `progressMs`. */
  kind: 'minimal' | 'testkit'
  /** The testkit fake only: advance every batch one step this often (ms), so it runs to its end. @default 3_600_000 */
  progressMs?: number
  /** The minimal fake only: create every batch already `completed`. */
  completedBatches?: boolean
  /** Hold every answer of the fake back this long (testkit's delay proxy between the gateway and the fake). */
  delayMs?: number
}

/** Where the bench's calls go. */
export type TargetSpec =
  | { kind: 'direct' }
  | {
      kind: 'batchkit'
      host: Host
      store: 'memory' | 'redis'
      /** Whether uploads are estimated (batchkit's default); off only to measure what estimating costs. */
      estimates?: boolean
    }
  | { kind: 'portkey' }
  /**
   * The bench's reference gateway (`src/children/reference-gateway.ts`): the least a gateway that keeps batches
   * does, on plain node:http or, given a host, inside that framework as its adapter is mounted.
   */
  | { kind: 'reference'; host?: Host }
  /** A host framework alone, answering a fixed Batch object (`src/children/host-alone.ts`): the host's floor. */
  | { kind: 'alone'; host: Host }

/** A running target: the gateway (or none, for direct) in front of a fake upstream of its own. */
export interface Target {
  label: string
  /** The base URL a client uses, `/v1` included. */
  baseURL: string
  /** Headers every call sends: the credential, and for Portkey its routing headers. */
  headers: Record<string, string>
  /** The process whose memory is the path's: the gateway's, or the fake's for the direct path. */
  server: ServerProcess
  /** The fake itself, never behind the delay proxy. */
  upstream: ServerProcess
  stop(): Promise<void>
}

/** The reference gateway's label in the tables. */
export const REFERENCE_LABEL = 'reference gateway (node:http, a Map)'

/** The label of a target in the tables. */
export function labelOf(spec: TargetSpec, upstream: UpstreamOptions): string {
  if (spec.kind === 'direct') return `direct → ${upstream.kind} fake`
  if (spec.kind === 'portkey') return 'Portkey gateway'
  if (spec.kind === 'reference') return spec.host ? referenceInLabel(spec.host) : REFERENCE_LABEL
  if (spec.kind === 'alone') return aloneLabel(spec.host)
  const estimates = spec.estimates === false ? ', estimates off' : ''
  return `batchkit ${spec.host.name} (${spec.store === 'redis' ? 'Redis' : 'memory'}${estimates})`
}

/** How the label of the reference gateway inside a host framework starts, before the host's name. */
export const REFERENCE_IN_PREFIX = 'reference gateway in '

/** The label of the reference gateway's row inside a host framework. */
export function referenceInLabel(host: Host): string {
  return `${REFERENCE_IN_PREFIX}${host.name}`
}

/** How a host framework's fixed-answer row's label ends, after the host's name. */
export const ALONE_SUFFIX = ' alone (a fixed answer, no batchkit)'

/** The label of a host framework's fixed-answer row. */
export function aloneLabel(host: Host): string {
  return `${host.name}${ALONE_SUFFIX}`
}

/** Why a target cannot run here (its adapter is not built yet), or undefined. */
export function targetUnavailable(spec: TargetSpec): string | undefined {
  const host = spec.kind === 'alone' || spec.kind === 'reference' ? spec.host : undefined
  if (host && !host.serveHandler) return 'no bench handler entry yet'
  return spec.kind === 'batchkit' ? unavailable(spec.host) : undefined
}

/** Starts a fake upstream, a delay proxy in front of it if asked, then the target, each in a process of its own. */
export async function startTarget(
  spec: TargetSpec,
  upstreamOptions: UpstreamOptions,
  options: { profileDir?: string; nodeFlags?: string[] } = {},
): Promise<Target> {
  const label = labelOf(spec, upstreamOptions)
  const upstream = await startServer({
    name: `${label}: upstream`,
    args: builtChild('upstream'),
    env: {
      BENCH_UPSTREAM: upstreamOptions.kind,
      BENCH_UPSTREAM_KEY: UPSTREAM_API_KEY,
      BENCH_BATCH_STATUS: upstreamOptions.completedBatches ? 'completed' : 'validating',
      BENCH_UPSTREAM_PROGRESS_MS: String(upstreamOptions.progressMs ?? TESTKIT_HOLD_MS),
    },
  })
  let proxy: ServerProcess | undefined
  try {
    if (upstreamOptions.delayMs !== undefined) {
      proxy = await startServer({
        name: `${label}: delay proxy`,
        args: builtChild('delay-proxy'),
        env: { BENCH_PROXY_PORT: String(upstream.port), BENCH_PROXY_DELAY_MS: String(upstreamOptions.delayMs) },
      })
    }
    const upstreamURL = `${(proxy ?? upstream).origin}/v1`
    const server = await startGateway(spec, label, upstream, upstreamURL, options)
    const headers: Record<string, string> =
      spec.kind === 'batchkit' || spec.kind === 'reference'
        ? { authorization: `Bearer ${BENCH_API_KEY}` }
        : { authorization: `Bearer ${UPSTREAM_API_KEY}` }
    if (spec.kind === 'portkey') {
      headers['x-portkey-provider'] = 'openai'
      headers['x-portkey-custom-host'] = upstreamURL
    }
    return {
      label,
      baseURL: `${server.origin}/v1`,
      headers,
      server,
      upstream,
      async stop() {
        if (server !== upstream) await server.stop()
        await proxy?.stop()
        await upstream.stop()
      },
    }
  } catch (error) {
    await proxy?.stop()
    await upstream.stop()
    throw error
  }
}

/** The process that answers the target's clients: the fake itself for the direct path, else the gateway in front of it. */
async function startGateway(
  spec: TargetSpec,
  label: string,
  upstream: ServerProcess,
  upstreamURL: string,
  options: { profileDir?: string; nodeFlags?: string[] },
): Promise<ServerProcess> {
  if (spec.kind === 'direct') return upstream
  if (spec.kind === 'portkey') return startPortkey(label)
  if (spec.kind === 'alone') {
    return startServer({ name: label, args: builtChild('host-alone'), env: { BENCH_HOST: spec.host.name } })
  }
  if (spec.kind === 'reference') {
    return startServer({
      name: label,
      args: [...cpuProfileFlags(options.profileDir, label), ...builtChild('reference-gateway')],
      env: {
        BENCH_UPSTREAM_URL: upstreamURL,
        BENCH_UPSTREAM_KEY: UPSTREAM_API_KEY,
        ...(spec.host ? { BENCH_HOST: spec.host.name } : {}),
      },
    })
  }
  return startServer({
    name: label,
    args: [...cpuProfileFlags(options.profileDir, label), ...(options.nodeFlags ?? []), ...builtChild('batchkit')],
    env: {
      BENCH_HOST: spec.host.name,
      BENCH_STORE: spec.store,
      BENCH_ESTIMATES: spec.estimates === false ? 'off' : 'on',
      BENCH_UPSTREAM_URL: upstreamURL,
      BENCH_UPSTREAM_KEY: UPSTREAM_API_KEY,
    },
  })
}

/** The path of Portkey's gateway's server script, as npm installed it. */
export const PORTKEY_SCRIPT = 'node_modules/@portkey-ai/gateway/build/start-server.js'

/**
 * Starts Portkey's gateway as its README does (`npx @portkey-ai/gateway`, here with `--headless`),
 * with a preload that forces its `listen` onto 127.0.0.1 (it binds every interface by default).
 */
function startPortkey(label: string): Promise<ServerProcess> {
  return startServer({
    name: label,
    args: ['--import', `${BENCH_DIR}src/children/loopback-preload.mjs`, PORTKEY_SCRIPT, '--port=0', '--headless'],
  })
}

/** The fake upstream behind a target, as a target of its own (for set-up calls that bypass the gateway). */
export function upstreamTarget(target: Target): Target {
  return {
    label: `${target.label}: upstream`,
    baseURL: `${target.upstream.origin}/v1`,
    headers: { authorization: `Bearer ${UPSTREAM_API_KEY}` },
    server: target.upstream,
    upstream: target.upstream,
    stop: () => target.upstream.stop(),
  }
}
