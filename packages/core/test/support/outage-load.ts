import { expect } from 'vitest'

/** The longest any answer may take, outage or not. */
export const MAX_ANSWER_MS = 5000
/** A one-request batch input file. */
export const REQUESTS = `${JSON.stringify({
  custom_id: 'a',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
})}\n`

/** One answer a client got, and how long it took. */
export interface Answer {
  what: string
  status: number
  ms: number
  body: { id?: string; data?: { id: string }[] }
}

/**
 * Clients calling a batchkit API round robin (creates, retrieves and lists) while a test breaks its
 * store, and the checks of what they saw; shared by the Redis and PostgreSQL outage tests.
 */
export class OutageLoad {
  /** Ids of what was created, to check after the outage. */
  readonly files: string[] = []
  readonly batches: string[] = []

  constructor(
    private readonly origin: () => string,
    private readonly clients = 4,
  ) {}

  readonly call = async (what: string, method: string, path: string, body?: FormData | object): Promise<Answer> => {
    const started = Date.now()
    try {
      const response = await fetch(this.origin() + path, {
        method,
        body: body instanceof FormData ? body : body && JSON.stringify(body),
        headers: body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {},
        // Longer than any answer may take: a request still open then is a hang.
        signal: AbortSignal.timeout(MAX_ANSWER_MS * 2),
      })
      const parsed = (await response.json()) as Answer['body']
      return { what, status: response.status, ms: Date.now() - started, body: parsed }
    } catch {
      return { what, status: 0, ms: Date.now() - started, body: {} }
    }
  }

  readonly upload = (lines = REQUESTS): Promise<Answer> => {
    const form = new FormData()
    form.append('purpose', 'batch')
    form.append('file', new Blob([lines]), 'in.jsonl')
    return this.call('create file', 'POST', '/v1/files', form)
  }
  readonly createBatch = (fileId: string): Promise<Answer> =>
    this.call('create batch', 'POST', '/v1/batches', {
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })

  /** One of the API's calls, round robin: creates, retrieves of what exists, and lists. */
  readonly someCall = async (i: number): Promise<Answer> => {
    const file = this.files[i % this.files.length] as string
    const batch = this.batches[i % this.batches.length] as string
    switch (i % 6) {
      case 0: {
        const answer = await this.upload()
        if (answer.status === 200 && answer.body.id) this.files.push(answer.body.id)
        return answer
      }
      case 1:
        return this.call('retrieve file', 'GET', `/v1/files/${file}`)
      case 2:
        return this.call('list files', 'GET', '/v1/files')
      case 3:
        return this.call('retrieve batch', 'GET', `/v1/batches/${batch}`)
      case 4:
        return this.call('list batches', 'GET', '/v1/batches')
      default: {
        const answer = await this.createBatch(file)
        if (answer.status === 200 && answer.body.id) this.batches.push(answer.body.id)
        return answer
      }
    }
  }

  /** Several clients calling for `ms`, each waiting for its answer before the next call. */
  readonly clientsFor = async (ms: number): Promise<Answer[]> => {
    const until = Date.now() + ms
    const answers: Answer[] = []
    await Promise.all(
      Array.from({ length: this.clients }, async (_, client) => {
        for (let i = client; Date.now() < until; i += this.clients) answers.push(await this.someCall(i))
      }),
    )
    return answers
  }

  readonly summary = (phase: string, answers: Answer[]): Record<string, number> => {
    const counts: Record<string, number> = {}
    for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1
    const maxMs = Math.max(...answers.map((a) => a.ms))
    console.info(
      `[outage:postgres] ${phase}: ${answers.length} requests, statuses ${JSON.stringify(counts)}, max ${maxMs} ms`,
    )
    return counts
  }

  /** Every answer in time, and either a success or a 503: never a hang, a 404 or another error. */
  readonly expectOnly200or503 = (answers: Answer[]): void => {
    for (const answer of answers) {
      expect([200, 503], `${answer.what} answered ${answer.status}`).toContain(answer.status)
      expect(answer.ms, `${answer.what} took ${answer.ms} ms`).toBeLessThan(MAX_ANSWER_MS)
    }
  }

  /** Everything created so far is listed and can be read. */
  readonly expectAllThere = async (): Promise<void> => {
    const listedFiles = (await this.call('list files', 'GET', '/v1/files')).body.data?.map((f) => f.id)
    expect(listedFiles).toEqual(expect.arrayContaining(this.files))
    const listedBatches: string[] = []
    for (let after = ''; ; ) {
      const page = (await this.call('list batches', 'GET', `/v1/batches?limit=100${after}`)).body as {
        data: { id: string }[]
        has_more: boolean
      }
      listedBatches.push(...page.data.map((b) => b.id))
      if (!page.has_more) break
      after = `&after=${page.data.at(-1)?.id}`
    }
    expect(listedBatches).toEqual(expect.arrayContaining(this.batches))
    for (const id of this.files) expect((await this.call('retrieve file', 'GET', `/v1/files/${id}`)).status).toBe(200)
    for (const id of this.batches)
      expect((await this.call('retrieve batch', 'GET', `/v1/batches/${id}`)).status).toBe(200)
  }

  /** Waits for the API to create a file again, as it should soon after its store is back. */
  readonly recovered = async (withinMs: number): Promise<void> => {
    const deadline = Date.now() + withinMs
    for (;;) {
      const answer = await this.upload()
      if (answer.status === 200 && answer.body.id) {
        this.files.push(answer.body.id)
        return
      }
      if (Date.now() > deadline) throw new Error(`not recovered within ${withinMs} ms: last answer ${answer.status}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
