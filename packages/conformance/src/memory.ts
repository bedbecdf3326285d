/**
 * Runs `work` while sampling this process's RSS, and returns by how much the peak exceeded the
 * starting level. The suite runs host, client and fake upstream in one process, all streaming, so
 * a host that buffered a body would show up as growth near the body's size.
 */
export async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growthBytes: number }> {
  const start = process.memoryUsage.rss()
  let peak = start
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 10)
  try {
    const result = await work()
    peak = Math.max(peak, process.memoryUsage.rss())
    return { result, growthBytes: peak - start }
  } finally {
    clearInterval(timer)
  }
}

/** A batch input file of `lines` chat requests of about `lineBytes` bytes each, made as it is read. */
export function* generatedJsonl(lines: number, lineBytes: number): Generator<Buffer> {
  for (let i = 0; i < lines; i++) {
    const line = (content: string) =>
      JSON.stringify({
        custom_id: `r-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
      })
    const room = Math.max(0, lineBytes - 1 - Buffer.byteLength(line('')))
    yield Buffer.from(`${line('x'.repeat(room))}\n`)
  }
}
