import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { MODEL } from './constants.js'

const ID_DIGITS = 9
const LINES_PER_CHUNK = 32

/** One output line of OpenAI's batch output format (a chat completion with usage), about `lineBytes` long. */
function templateLine(lineBytes: number): { line: Buffer; idOffsets: number[] } {
  const id = '0'.repeat(ID_DIGITS)
  const make = (content: string) =>
    `${JSON.stringify({
      id: `batch_req_${id}`,
      custom_id: `r-${id}`,
      response: {
        status_code: 200,
        request_id: `req_${id}`,
        body: {
          id: `chatcmpl-${id}`,
          object: 'chat.completion',
          created: 1_767_225_600,
          model: MODEL,
          choices: [
            { index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' },
          ],
          usage: {
            prompt_tokens: 812,
            completion_tokens: 96,
            total_tokens: 908,
            prompt_tokens_details: { cached_tokens: 128 },
            completion_tokens_details: { reasoning_tokens: 0 },
          },
          service_tier: 'default',
          system_fingerprint: null,
        },
      },
      error: null,
    })}\n`
  const room = lineBytes - make('').length
  const words = 'The paragraph reports a rise of 4.2 percent over the quarter, driven by exports. '
  const text = make(words.repeat(Math.ceil(Math.max(room, 0) / words.length)).slice(0, Math.max(room, 0)))
  const idOffsets: number[] = []
  for (let at = text.indexOf(id); at !== -1; at = text.indexOf(id, at + 1)) idOffsets.push(at)
  return { line: Buffer.from(text, 'latin1'), idOffsets }
}

/**
 * Writes a batch output file of about `totalBytes` to `path`: successful chat completions, each with
 * `usage`, with distinct ids. Returns the bytes written.
 */
export async function writeOutputFile(path: string, totalBytes: number, lineBytes = 2_048): Promise<number> {
  const { line, idOffsets } = templateLine(lineBytes)
  const lines = Math.floor(totalBytes / line.length)
  const out = createWriteStream(path)
  for (let first = 0; first < lines; first += LINES_PER_CHUNK) {
    const count = Math.min(LINES_PER_CHUNK, lines - first)
    const chunk = Buffer.allocUnsafe(count * line.length)
    for (let i = 0; i < count; i++) {
      line.copy(chunk, i * line.length)
      const digits = String(first + i).padStart(ID_DIGITS, '0')
      for (const offset of idOffsets) chunk.write(digits, i * line.length + offset, 'latin1')
    }
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return lines * line.length
}
