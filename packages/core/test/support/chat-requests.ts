/**
 * A batch input file of `count` chat requests for `gpt-4o-mini`, one JSON line each, custom_ids `r0`,
 * `r1`, …. Requests whose index is in `failing` are named `fail-<i>`, which the testkit fake fails;
 * `maxTokens` bounds each request's output (and so its cost estimate).
 */
export function chatRequests(count: number, options: { failing?: number[]; maxTokens?: number } = {}): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      custom_id: options.failing?.includes(i) ? `fail-${i}` : `r${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Count to ${i}.` }],
        ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
      },
    }),
  ).join('\n')
}

/** What `promise` rejects with; one that fulfils fails the test. */
export function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but it succeeded')
    },
    (error: unknown) => error,
  )
}
