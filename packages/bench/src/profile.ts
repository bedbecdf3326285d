import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** The part of a V8 `.cpuprofile` the summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

/** One function's share of a profile's samples. */
export interface SelfTime {
  /** `name (file:line)`, with paths shortened to the package and file. */
  frame: string
  /** Share of the busy (not idle) samples, 0..1. */
  share: number
  ms: number
}

type Frame = CpuProfile['nodes'][number]['callFrame']

/** Self time summed by `keyOf(frame)`, most first. */
function selfTimeBy(path: string, keyOf: (frame: Frame) => string, count: number): SelfTime[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const selfMicros = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id)
    const delta = profile.timeDeltas[i] ?? 0
    // Idle time is left out: shares are of the time the process was busy.
    if (!frame || frame.functionName === '(idle)') return
    const key = keyOf(frame)
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + delta)
    total += delta
  })
  return [...selfMicros.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, micros]) => ({ frame, share: micros / total, ms: micros / 1000 }))
}

/** The functions with the most self time in a `.cpuprofile`, most first; shares are of busy time. */
export function topSelfTime(path: string, count = 15): SelfTime[] {
  return selfTimeBy(
    path,
    (frame) =>
      `${frame.functionName || '(anonymous)'} (${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''})`,
    count,
  )
}

/**
 * Self time by where the code lives: a package (`undici`, `express`), Node's own modules
 * (`node:_http_server`), the bench's bundle of batchkit (`batchkit`), or V8 and native work
 * (`(garbage collector)`, `native writev`).
 */
export function selfTimeByPackage(path: string, count = 15): SelfTime[] {
  return selfTimeBy(
    path,
    (frame) => {
      const url = frame.url.replace(/^file:\/\//, '')
      if (!url) return frame.functionName.startsWith('(') ? frame.functionName : `native ${frame.functionName}`
      if (url.startsWith('node:')) return url
      const inModules = url.lastIndexOf('/node_modules/')
      if (inModules !== -1) {
        const [scope, name] = url.slice(inModules + '/node_modules/'.length).split('/')
        return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? url)
      }
      return url.includes('/.tmp/children/') || url.includes('/packages/')
        ? 'batchkit (core, adapters, bench child)'
        : url
    },
    count,
  )
}

function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '')
  const inModules = path.lastIndexOf('/node_modules/')
  if (inModules !== -1) return path.slice(inModules + '/node_modules/'.length)
  const inPackages = path.indexOf('/packages/')
  return inPackages === -1 ? path : path.slice(inPackages + '/packages/'.length)
}

/** For each folder in `dir` (one per profiled process), its main thread's profile: the largest `.cpuprofile`. */
export function mainThreadProfiles(dir: string): { name: string; path: string }[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      const folder = join(dir, entry.name)
      const files = readdirSync(folder)
        .filter((name) => name.endsWith('.cpuprofile'))
        .map((name) => join(folder, name))
        .sort((a, b) => statSync(b).size - statSync(a).size)
      return files[0] ? [{ name: entry.name, path: files[0] }] : []
    })
}

/** A profile summary as text lines. */
export function formatTopSelfTime(rows: SelfTime[]): string[] {
  return rows.map(
    (row) => `${(row.share * 100).toFixed(1).padStart(5)} %  ${row.ms.toFixed(0).padStart(6)} ms  ${row.frame}`,
  )
}
