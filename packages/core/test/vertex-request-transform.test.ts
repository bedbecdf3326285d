import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { ApiError, isApiError } from '../src/errors.js'
import {
  base32Decode,
  base32Encode,
  CUSTOM_ID_LABEL,
  customIdFromLabels,
  customIdLabels,
  customIdOfRow,
} from '../src/providers/vertex/custom-id.js'
import { geminiVersion, modelResource } from '../src/providers/vertex/models.js'
import {
  convertBatchLine,
  toGeminiRequest,
  toVertexInputLine,
  VertexRequestTransform,
} from '../src/providers/vertex/request-transform.js'
import { concatJsonlSources } from '../src/util/lines.js'

const user = (content: unknown) => ({ role: 'user', content })
const body = (extra: Record<string, unknown> = {}) => ({
  model: 'gemini-2.5-flash',
  messages: [user('Hi')],
  ...extra,
})
const HI = [{ role: 'user', parts: [{ text: 'Hi' }] }]

function chatLine(customId: string, extra: Record<string, unknown> = {}, messages?: unknown[]) {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { ...body(extra), ...(messages ? { messages } : {}) },
  }
}

function expectApiError(fn: () => unknown, expected: { message?: RegExp | string; param?: string; code?: string }) {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(isApiError(caught)).toBe(true)
  const error = caught as ApiError
  expect(error.status).toBe(400)
  if (expected.param !== undefined) expect(error.param).toBe(expected.param)
  if (expected.code !== undefined) expect(error.code).toBe(expected.code)
  if (typeof expected.message === 'string') expect(error.message).toBe(expected.message)
  else if (expected.message) expect(error.message).toMatch(expected.message)
}

/** Feeds `input` through the transform in chunks of `size` bytes and returns the output text. */
async function transform(input: Buffer | string, size: number): Promise<string> {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8')
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size))
  const out: Buffer[] = []
  await pipeline(
    Readable.from(chunks),
    new VertexRequestTransform(),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk)
        callback()
      },
    }),
  )
  return Buffer.concat(out).toString('utf8')
}

describe('toGeminiRequest: messages', () => {
  it('maps a plain user message', () => {
    expect(toGeminiRequest(body())).toEqual({ contents: HI })
  })

  it('turns system and developer messages, wherever they are, into systemInstruction', () => {
    const request = toGeminiRequest(
      body({
        messages: [
          { role: 'system', content: 'Be brief.' },
          user('Hi'),
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
          { role: 'assistant', content: 'Salut' },
          user('Ça va ?'),
        ],
      }),
    )
    expect(request).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Salut' }] },
        { role: 'user', parts: [{ text: 'Ça va ?' }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }] },
    })
  })

  it('merges consecutive turns of one role and sends empty text as a space', () => {
    expect(toGeminiRequest(body({ messages: [user('a'), user(''), { role: 'assistant', content: 'b' }] }))).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'a' }, { text: ' ' }] },
        { role: 'model', parts: [{ text: 'b' }] },
      ],
    })
  })

  it('maps content-part arrays: text, data: images, http(s) and gs:// URLs', () => {
    const request = toGeminiRequest(
      body({
        messages: [
          user([
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.JPG?size=large#x', detail: 'high' } },
            { type: 'image_url', image_url: { url: 'gs://bucket/docs/report.pdf' } },
            { type: 'image_url', image_url: { url: 'http://example.com/a.webp' } },
            { type: 'image_url', image_url: { url: 'https://example.com/photo', mime_type: 'image/heic' } },
            { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'x.pdf' } },
            { type: 'file', file: { file_data: 'JVBERi0=', filename: 'y.pdf' } },
          ]),
        ],
      }),
    )
    expect(request.contents).toEqual([
      {
        role: 'user',
        parts: [
          { text: 'What is in these?' },
          { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
          { fileData: { fileUri: 'https://example.com/cat.JPG?size=large#x', mimeType: 'image/jpeg' } },
          { fileData: { fileUri: 'gs://bucket/docs/report.pdf', mimeType: 'application/pdf' } },
          { fileData: { fileUri: 'http://example.com/a.webp', mimeType: 'image/webp' } },
          { fileData: { fileUri: 'https://example.com/photo', mimeType: 'image/heic' } },
          { inlineData: { mimeType: 'application/pdf', data: 'JVBERi0=' } },
          { inlineData: { mimeType: 'application/pdf', data: 'JVBERi0=' } },
        ],
      },
    ])
  })

  it('accepts data: URLs with parameters before base64', () => {
    const request = toGeminiRequest(
      body({
        messages: [user([{ type: 'image_url', image_url: { url: 'data:image/jpeg;name=x.jpg;base64,/9j/4A==' } }])],
      }),
    )
    expect(request.contents[0]?.parts).toEqual([{ inlineData: { mimeType: 'image/jpeg', data: '/9j/4A==' } }])
  })

  it('maps assistant tool_calls to functionCall parts and tool messages to functionResponse parts', () => {
    const request = toGeminiRequest(
      body({
        messages: [
          user('Weather in Paris and Oslo?'),
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
              { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{"city":"Oslo"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
          { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '12:00' }] },
          user('Thanks'),
          { role: 'assistant', content: 'Sure', function_call: { name: 'log', arguments: '' } },
          { role: 'function', name: 'log', content: null },
        ],
      }),
    )
    expect(request.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather in Paris and Oslo?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
          { functionCall: { name: 'get_time', args: { city: 'Oslo' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { output: '{"temp":21}' } } },
          { functionResponse: { name: 'get_time', response: { output: '12:00' } } },
        ],
      },
      { role: 'user', parts: [{ text: 'Thanks' }] },
      { role: 'model', parts: [{ text: 'Sure' }, { functionCall: { name: 'log', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'log', response: { output: '' } } }] },
    ])
  })

  it('drops an empty assistant text beside tool calls, and keeps a lone one as a space', () => {
    const request = toGeminiRequest(
      body({
        messages: [
          user('x'),
          {
            role: 'assistant',
            content: '',
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: 'c', content: 'ok' },
          { role: 'assistant', content: '' },
        ],
      }),
    )
    expect(request.contents.slice(1)).toEqual([
      { role: 'model', parts: [{ functionCall: { name: 'f', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'f', response: { output: 'ok' } } }] },
      { role: 'model', parts: [{ text: ' ' }] },
    ])
    expectApiError(() => toGeminiRequest(body({ messages: [user('x'), { role: 'assistant', content: null }] })), {
      param: 'messages[1]',
      code: 'invalid_value',
    })
  })

  it('keeps assistant text next to its tool calls and maps refusal parts to text', () => {
    const request = toGeminiRequest(
      body({
        messages: [
          user('x'),
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'Let me check.' },
              { type: 'refusal', refusal: 'No.' },
            ],
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
        ],
      }),
    )
    expect(request.contents[1]).toEqual({
      role: 'model',
      parts: [{ text: 'Let me check.' }, { text: 'No.' }, { functionCall: { name: 'f', args: {} } }],
    })
  })
})

describe('toGeminiRequest: generation config', () => {
  it('maps every sampling parameter (penalties on a model that takes them)', () => {
    expect(
      toGeminiRequest(
        body({
          model: 'gemini-2.0-flash-001',
          max_tokens: 100,
          temperature: 0.2,
          top_p: 0.9,
          stop: 'END',
          seed: 42,
          n: 2,
          presence_penalty: 0.5,
          frequency_penalty: -0.5,
        }),
      ),
    ).toEqual({
      contents: HI,
      generationConfig: {
        maxOutputTokens: 100,
        temperature: 0.2,
        topP: 0.9,
        stopSequences: ['END'],
        seed: 42,
        candidateCount: 2,
        presencePenalty: 0.5,
        frequencyPenalty: -0.5,
      },
    })
  })

  it('prefers max_completion_tokens over max_tokens and takes stop arrays', () => {
    expect(toGeminiRequest(body({ max_tokens: 10, max_completion_tokens: 20, stop: ['a', 'b'], n: 1 }))).toEqual({
      contents: HI,
      generationConfig: { maxOutputTokens: 20, stopSequences: ['a', 'b'] },
    })
  })

  it('treats null parameters as unset and drops no-op ones', () => {
    expect(
      toGeminiRequest(
        body({
          temperature: null,
          tools: null,
          user: 'u-1',
          metadata: { a: 'b' },
          store: false,
          stream: false,
          parallel_tool_calls: true,
          logprobs: false,
          modalities: ['text'],
          logit_bias: {},
          service_tier: 'auto',
          reasoning_effort: null,
        }),
      ),
    ).toEqual({ contents: HI })
  })

  it('maps response_format json_object and text', () => {
    expect(toGeminiRequest(body({ response_format: { type: 'json_object' } }))).toEqual({
      contents: HI,
      generationConfig: { responseMimeType: 'application/json' },
    })
    expect(toGeminiRequest(body({ response_format: { type: 'text' } }))).toEqual({ contents: HI })
  })

  it('maps response_format json_schema to responseJsonSchema, dropping $schema only', () => {
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['name', 'tags'],
      additionalProperties: false,
    }
    expect(
      toGeminiRequest(
        body({ response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } } }),
      ),
    ).toEqual({
      contents: HI,
      generationConfig: {
        responseMimeType: 'application/json',
        responseJsonSchema: {
          type: 'object',
          properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
          required: ['name', 'tags'],
          additionalProperties: false,
        },
      },
    })
  })
})

describe('toGeminiRequest: tools', () => {
  const weather = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      strict: true,
    },
  }
  const time = { type: 'function', function: { name: 'get_time' } }
  const declarations = [
    {
      name: 'get_weather',
      description: 'Weather for a city',
      parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
    { name: 'get_time' },
  ]

  it('maps function tools to functionDeclarations', () => {
    expect(toGeminiRequest(body({ tools: [weather, time] }))).toEqual({
      contents: HI,
      tools: [{ functionDeclarations: declarations }],
    })
  })

  it.each([
    ['none', { mode: 'NONE' }],
    ['auto', { mode: 'AUTO' }],
    ['required', { mode: 'ANY' }],
    [
      { type: 'function', function: { name: 'get_time' } },
      { mode: 'ANY', allowedFunctionNames: ['get_time'] },
    ],
    [
      {
        type: 'allowed_tools',
        allowed_tools: { mode: 'required', tools: [{ type: 'function', function: { name: 'get_weather' } }] },
      },
      { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    ],
  ])('maps tool_choice %j', (choice, functionCallingConfig) => {
    expect(toGeminiRequest(body({ tools: [weather, time], tool_choice: choice }))).toEqual({
      contents: HI,
      tools: [{ functionDeclarations: declarations }],
      toolConfig: { functionCallingConfig },
    })
  })

  it('maps the legacy functions and function_call', () => {
    expect(toGeminiRequest(body({ functions: [{ name: 'get_time' }], function_call: { name: 'get_time' } }))).toEqual({
      contents: HI,
      tools: [{ functionDeclarations: [{ name: 'get_time' }] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } },
    })
  })

  it('drops tool_choice none/auto without tools and refuses a forced call without them', () => {
    expect(toGeminiRequest(body({ tool_choice: 'none' }))).toEqual({ contents: HI })
    expectApiError(() => toGeminiRequest(body({ tool_choice: 'required' })), {
      param: 'tool_choice',
      code: 'invalid_value',
      message: "'tool_choice' requires tools.",
    })
    expectApiError(
      () => toGeminiRequest(body({ tools: [time], tool_choice: { type: 'function', function: { name: 'nope' } } })),
      {
        param: 'tool_choice',
        message: /names 'nope', which is not among the tools/,
      },
    )
  })
})

describe('toGeminiRequest: what cannot be mapped', () => {
  it.each([
    [{ logprobs: true }, 'logprobs'],
    [{ top_logprobs: 3 }, 'top_logprobs'],
    [{ audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
    [{ parallel_tool_calls: false }, 'parallel_tool_calls'],
    [{ reasoning_effort: 'high' }, 'reasoning_effort'],
    [{ stream: true }, 'stream'],
    [{ something_new: 1 }, 'something_new'],
    [{ tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0]'],
    [{ response_format: { type: 'grammar' } }, 'response_format.type'],
  ])('refuses %j', (extra, param) => {
    expectApiError(() => toGeminiRequest(body(extra)), { param, code: 'unsupported_for_provider' })
  })

  it('refuses audio input parts and file ids, naming the part', () => {
    expectApiError(
      () =>
        toGeminiRequest(
          body({ messages: [user([{ type: 'input_audio', input_audio: { data: 'AA==', format: 'wav' } }])] }),
        ),
      {
        param: 'messages[0].content[0]',
        code: 'unsupported_for_provider',
        message: "'messages[0].content[0]' is an input_audio part; the Vertex AI provider does not take audio input.",
      },
    )
    expectApiError(() => toGeminiRequest(body({ messages: [user([{ type: 'file', file: { file_id: 'file-1' } }])] })), {
      param: 'messages[0].content[0].file.file_id',
      code: 'unsupported_for_provider',
    })
  })

  it('refuses image URLs whose type cannot be told', () => {
    expectApiError(
      () =>
        toGeminiRequest(
          body({ messages: [user([{ type: 'image_url', image_url: { url: 'https://example.com/img?id=4' } }])] }),
        ),
      { param: 'messages[0].content[0].image_url.url', code: 'unsupported_for_provider', message: /cannot be told/ },
    )
  })

  it('refuses malformed requests with invalid_value / invalid_type', () => {
    expectApiError(() => toGeminiRequest(body({ messages: [] })), { param: 'messages', code: 'invalid_value' })
    expectApiError(() => toGeminiRequest(body({ messages: [{ role: 'system', content: 'only me' }] })), {
      param: 'messages',
      code: 'invalid_value',
    })
    expectApiError(() => toGeminiRequest(body({ messages: [{ role: 'robot', content: 'x' }] })), {
      param: 'messages[0].role',
    })
    expectApiError(() => toGeminiRequest(body({ temperature: 'hot' })), { param: 'temperature', code: 'invalid_type' })
    expectApiError(() => toGeminiRequest(body({ max_tokens: 0 })), { param: 'max_tokens', code: 'invalid_value' })
    expectApiError(
      () =>
        toGeminiRequest(
          body({
            messages: [
              user('x'),
              {
                role: 'assistant',
                tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{bad' } }],
              },
            ],
          }),
        ),
      { param: 'messages[1].tool_calls[0].function.arguments', code: 'invalid_value' },
    )
    expectApiError(
      () => toGeminiRequest(body({ messages: [user('x'), { role: 'tool', tool_call_id: 'ghost', content: 'r' }] })),
      {
        param: 'messages[1].tool_call_id',
        message: /answers no tool call/,
      },
    )
    expectApiError(
      () =>
        toGeminiRequest(body({ messages: [user([{ type: 'image_url', image_url: { url: 'data:image/png,abc' } }])] })),
      { param: 'messages[0].content[0].image_url.url', code: 'invalid_value' },
    )
  })
})

describe('toGeminiRequest: Gemini 3 thought signatures', () => {
  it('puts the signature a tool call id carries back on its functionCall part; the tool result still finds the call', () => {
    const id = 'call_0123abcd__thought__c2lnbmF0dXJl+/='
    const request = toGeminiRequest(
      body({
        model: 'gemini-3-pro-preview',
        messages: [
          user('Weather?'),
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id, type: 'function', function: { name: 'w', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: id, content: 'sunny' },
        ],
      }),
    )
    expect(request.contents.slice(1)).toEqual([
      { role: 'model', parts: [{ functionCall: { name: 'w', args: {} }, thoughtSignature: 'c2lnbmF0dXJl+/=' }] },
      { role: 'user', parts: [{ functionResponse: { name: 'w', response: { output: 'sunny' } } }] },
    ])
  })
})

describe('toGeminiRequest: what Vertex would refuse hours later, refused now', () => {
  it.each([
    ['gemini-2.5-flash', 'presence_penalty'],
    ['gemini-2.5-pro', 'frequency_penalty'],
    ['google/gemini-3-pro-preview', 'presence_penalty'],
    ['publishers/google/models/gemini-3.1-flash', 'frequency_penalty'],
  ])('refuses a non-zero %s penalty (%s): Gemini 2.5+ answers "Penalty is not enabled"', (model, param) => {
    expectApiError(() => toGeminiRequest(body({ model, [param]: 0.3 })), {
      param,
      code: 'unsupported_for_provider',
      message: /is not supported by gemini-[\d.]+-[a-z]+(-preview)? on Vertex AI/,
    })
  })

  it('does not send zero penalties, and sends others to models that take them', () => {
    const zero = { presence_penalty: 0, frequency_penalty: 0 }
    expect(toGeminiRequest(body(zero))).toEqual({ contents: HI })
    expect(toGeminiRequest(body({ ...zero, model: 'gemini-2.0-flash' }))).toEqual({ contents: HI })
    // A tuned model's name says nothing of its version: its penalties go through.
    const tuned = toGeminiRequest(body({ model: 'projects/p/locations/l/models/42', presence_penalty: 0.5 }))
    expect(tuned.generationConfig).toEqual({ presencePenalty: 0.5 })
  })

  it('refuses a seed outside int32', () => {
    expect(toGeminiRequest(body({ seed: -(2 ** 31) })).generationConfig).toEqual({ seed: -(2 ** 31) })
    expectApiError(() => toGeminiRequest(body({ seed: 2 ** 31 })), { param: 'seed', code: 'invalid_value' })
  })

  it.each([
    ['digit first', '1st'],
    ['a space', 'get weather'],
    ['65 characters', `a${'b'.repeat(64)}`],
    ['a colon', 'ns:get'],
  ])('refuses a function name with %s', (_label, name) => {
    expectApiError(() => toGeminiRequest(body({ tools: [{ type: 'function', function: { name } }] })), {
      param: 'tools[0].function.name',
      code: 'invalid_value',
    })
    expectApiError(() => toGeminiRequest(body({ functions: [{ name }] })), { param: 'functions[0].name' })
  })

  it('takes function names of letters, digits, _, . and -, starting with a letter or _, up to 64', () => {
    for (const name of ['_private', 'get.weather-v2', `a${'b'.repeat(63)}`]) {
      expect(toGeminiRequest(body({ tools: [{ type: 'function', function: { name } }] })).tools).toEqual([
        { functionDeclarations: [{ name }] },
      ])
    }
  })

  const withSchema = (schema: Record<string, unknown>) =>
    body({ response_format: { type: 'json_schema', json_schema: { name: 's', schema } } })

  it.each([
    ['pattern', { type: 'string', pattern: '^a' }, ''],
    ['a nested minLength', { type: 'object', properties: { a: { type: 'string', minLength: 1 } } }, '.properties.a'],
    ['const inside anyOf', { anyOf: [{ const: 'x' }, { type: 'null' }] }, '.anyOf[0]'],
    ['allOf', { allOf: [{ type: 'string' }] }, ''],
    ['$ref beside description', { $defs: { a: { type: 'string' } }, $ref: '#/$defs/a', description: 'd' }, ''],
    ['a null in enum', { type: 'string', enum: ['a', null] }, ''],
    ['a bad item in $defs', { $defs: { a: { type: 'string', format: 'date', default: 'x' } } }, '.$defs.a'],
  ])('refuses a response schema with %s, naming where', (_label, schema, path) => {
    expectApiError(() => toGeminiRequest(withSchema(schema)), {
      param: `response_format.json_schema.schema${path}`,
      code: 'unsupported_for_provider',
    })
  })

  it('takes every keyword content.proto lists', () => {
    const schema = {
      $id: 'https://example.com/s',
      $defs: { city: { $anchor: 'city', type: 'string', enum: ['Paris', 'Oslo'], title: 'City' } },
      type: 'object',
      description: 'A trip',
      properties: {
        city: { $ref: '#/$defs/city' },
        when: { type: 'string', format: 'date-time' },
        stops: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 9 }, minItems: 1, maxItems: 3 },
        pair: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'string' }] },
        note: { oneOf: [{ type: 'string' }, { type: 'null' }] },
        extra: { type: 'object', additionalProperties: { type: 'boolean' } },
      },
      required: ['city'],
      propertyOrdering: ['city', 'when'],
    }
    expect(toGeminiRequest(withSchema(schema)).generationConfig?.responseJsonSchema).toEqual(schema)
  })
})

describe('model names', () => {
  it.each([
    ['gemini-2.5-flash', 'publishers/google/models/gemini-2.5-flash'],
    ['google/gemini-2.5-flash', 'publishers/google/models/gemini-2.5-flash'],
    ['meta/llama-4-maverick-17b-128e-instruct-maas', 'publishers/meta/models/llama-4-maverick-17b-128e-instruct-maas'],
    ['publishers/google/models/gemini-3-pro-preview', 'publishers/google/models/gemini-3-pro-preview'],
    ['projects/p/locations/l/models/42', 'projects/p/locations/l/models/42'],
  ])('names %s as %s in a job', (model, resource) => {
    expect(modelResource(model)).toBe(resource)
  })

  it.each([
    ['gemini-2.0-flash-001', 2],
    ['gemini-2.5-flash-lite', 2.5],
    ['google/gemini-3-pro-preview', 3],
    ['publishers/google/models/gemini-3.1-flash@001', 3.1],
    ['projects/p/locations/l/models/42', undefined],
    ['gemini-embedding', undefined],
  ])('reads %s as Gemini %s', (model, version) => {
    expect(geminiVersion(model)).toBe(version)
  })
})

describe('custom_id carriage', () => {
  it('base32 round-trips any bytes', () => {
    for (const text of ['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar', 'Ünïcødé 🌍 Request-ID_42']) {
      const encoded = base32Encode(Buffer.from(text))
      expect(encoded).toMatch(/^[a-z2-7]*$/)
      expect(base32Decode(encoded)?.toString('utf8')).toBe(text)
    }
    expect(base32Encode(Buffer.from('foobar'))).toBe('mzxw6ytboi')
    expect(base32Decode('mzxw6ytboj')).toBeUndefined() // a non-zero padding bit
    expect(base32Decode('MZXW')).toBeUndefined()
  })

  it('writes valid labels (lowercase, ≤63 chars, key starting with a letter) and reads them back', () => {
    const id = `Request/ÄÖÜ/${'x'.repeat(150)}/🌍`
    const labels = customIdLabels(id)!
    expect(Object.keys(labels)).toEqual([
      CUSTOM_ID_LABEL,
      `${CUSTOM_ID_LABEL}_1`,
      `${CUSTOM_ID_LABEL}_2`,
      `${CUSTOM_ID_LABEL}_3`,
      `${CUSTOM_ID_LABEL}_4`,
    ])
    for (const [key, value] of Object.entries(labels)) {
      expect(key).toMatch(/^[a-z][a-z0-9_-]{0,62}$/)
      expect(value).toMatch(/^[a-z0-9_-]{1,63}$/)
    }
    expect(customIdFromLabels({ ...labels, other: 'x' })).toBe(id)
    expect(customIdLabels('req-1')).toEqual({ [CUSTOM_ID_LABEL]: 'ojsxcljr' })
  })

  it('refuses ids too long to carry', () => {
    expect(customIdLabels('x'.repeat(787))).toBeDefined()
    expect(customIdLabels('x'.repeat(788))).toBeUndefined()
    expectApiError(() => toVertexInputLine(chatLine('x'.repeat(800))), {
      param: 'custom_id',
      code: 'unsupported_for_provider',
    })
  })

  it('reads the id from the top-level key first, else from the echoed labels', () => {
    expect(customIdOfRow({ custom_id: 'direct', request: { labels: customIdLabels('label') } })).toBe('direct')
    expect(customIdOfRow({ request: { labels: customIdLabels('label') } })).toBe('label')
    expect(customIdOfRow({ request: { labels: { [CUSTOM_ID_LABEL]: 'not base32!' } } })).toBeUndefined()
    expect(customIdOfRow({ request: {} })).toBeUndefined()
    expect(customIdOfRow('nope')).toBeUndefined()
  })
})

describe('toVertexInputLine', () => {
  it('wraps the request and carries custom_id verbatim and in labels', () => {
    expect(toVertexInputLine(chatLine('Req-1', { max_tokens: 5 }))).toEqual({
      custom_id: 'Req-1',
      request: {
        contents: HI,
        generationConfig: { maxOutputTokens: 5 },
        labels: { batchkit_cid: 'kjsxcljr' },
      },
    })
    expect(customIdFromLabels({ batchkit_cid: 'kjsxcljr' })).toBe('Req-1')
  })

  it('only runs chat completions', () => {
    expectApiError(() => toVertexInputLine({ ...chatLine('a'), url: '/v1/embeddings' }), {
      param: 'url',
      code: 'unsupported_for_provider',
    })
  })
})

describe('VertexRequestTransform', () => {
  const lines = [
    chatLine('a-1', { temperature: 0.5 }, [user('Grüße aus Köln — 你好 🌍🚀')]),
    chatLine('b-2', { stop: ['。'] }, [
      { role: 'system', content: 'Réponds en français.' },
      user('日本語のテキスト ✨'),
    ]),
    chatLine('c-3', {}, [user('plain ascii')]),
  ]
  const input = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`
  const expected = `${lines.map((line) => JSON.stringify(toVertexInputLine(line))).join('\n')}\n`

  it.each([1, 2, 3, 5, 17, 64, 1 << 20])(
    'converts line by line with chunks of %i bytes, multibyte text intact',
    async (size) => {
      expect(await transform(input, size)).toBe(expected)
    },
  )

  it('accepts CRLF, a missing final newline and trailing blank lines', async () => {
    const crlf = `${lines.map((line) => JSON.stringify(line)).join('\r\n')}`
    expect(await transform(crlf, 7)).toBe(expected)
    expect(await transform(`${input}\n\n`, 1)).toBe(expected)
  })

  it('output lines parse back to the expected objects', async () => {
    const out = (await transform(input, 1))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(out[0]).toEqual({
      custom_id: 'a-1',
      request: {
        contents: [{ role: 'user', parts: [{ text: 'Grüße aus Köln — 你好 🌍🚀' }] }],
        generationConfig: { temperature: 0.5 },
        labels: customIdLabels('a-1'),
      },
    })
    expect(out[1].request.systemInstruction).toEqual({ parts: [{ text: 'Réponds en français.' }] })
    expect(out[1].request.generationConfig).toEqual({ stopSequences: ['。'] })
    expect(out.map((line) => customIdOfRow(line))).toEqual(['a-1', 'b-2', 'c-3'])
  })

  it('fails the stream with an error naming the 1-based line', async () => {
    const bad = [
      JSON.stringify(lines[0]),
      JSON.stringify(
        chatLine('x', {}, [user([{ type: 'input_audio', input_audio: { data: 'AA==', format: 'wav' } }])]),
      ),
    ].join('\n')
    const error = await transform(bad, 1).catch((e: unknown) => e)
    expect(isApiError(error)).toBe(true)
    expect(error).toMatchObject({
      status: 400,
      param: 'file',
      code: 'unsupported_for_provider',
      message:
        "Line 2: 'messages[0].content[0]' is an input_audio part; the Vertex AI provider does not take audio input.",
    })
  })

  it('names lines that are not JSON, not UTF-8, too long, or an empty file', async () => {
    await expect(transform(`${JSON.stringify(lines[0])}\n{oops\n`, 4)).rejects.toMatchObject({
      message: 'Line 2 is not parseable as valid JSON.',
      param: 'file',
      code: 'invalid_json_line',
    })
    const invalidUtf8 = Buffer.concat([Buffer.from('{"custom_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')])
    await expect(transform(invalidUtf8, 1)).rejects.toMatchObject({ message: 'Line 1 is not valid UTF-8.' })
    await expect(transform('\n\n', 1)).rejects.toMatchObject({ code: 'empty_file' })

    const long = new VertexRequestTransform({ maxLineBytes: 10 })
    const error = await pipeline(
      Readable.from([Buffer.from('{"a":"0123456789"}\n')]),
      long,
      new Writable({ write: (_c, _e, cb) => cb() }),
    ).catch((e: unknown) => e)
    expect(error).toMatchObject({ message: 'Line 1 is longer than 10 bytes.', code: 'line_too_large' })
  })

  it('reports a bad line through convertBatchLine too', () => {
    expectApiError(() => convertBatchLine(Buffer.from(JSON.stringify(chatLine('q', { logprobs: true }))), 7), {
      param: 'file',
      message: /^Line 7: 'logprobs' is not supported by the Vertex AI provider/,
    })
    expect(convertBatchLine(Buffer.from('   '), 1)).toBeUndefined()
  })

  it('counts the requests it converted', async () => {
    const stream = new VertexRequestTransform()
    await pipeline(Readable.from([Buffer.from(input)]), stream, new Writable({ write: (_c, _e, cb) => cb() }))
    expect(stream.requests).toBe(3)
  })

  it('holds one line at a time, whatever the file size', async () => {
    const line = `${JSON.stringify(chatLine('big', {}, [user('é'.repeat(1000))]))}\n`
    let maxBuffered = 0
    const stream = new VertexRequestTransform()
    const spy = stream as unknown as { splitter: { pendingBytes: number } }
    async function* source() {
      for (let i = 0; i < 2000; i++) {
        yield Buffer.from(line.replace('"big"', `"big-${i}"`))
        maxBuffered = Math.max(maxBuffered, spy.splitter.pendingBytes)
      }
    }
    let lines = 0
    await pipeline(
      source(),
      stream,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          lines += chunk.toString('utf8').split('\n').length - 1
          cb()
        },
      }),
    )
    expect(lines).toBe(2000)
    expect(maxBuffered).toBeLessThan(line.length + 16)
  })
})

describe('VertexRequestTransform over a stream, and concatJsonlSources', () => {
  it('converts a stream of chunks, and refuses one without requests', async () => {
    const input = [JSON.stringify(chatLine('a')), JSON.stringify(chatLine('b'))].join('\n')
    const out: string[] = []
    for await (const chunk of Readable.from([Buffer.from(input.slice(0, 10)), Buffer.from(input.slice(10))]).pipe(
      new VertexRequestTransform(),
    )) {
      out.push((chunk as Buffer).toString('utf8'))
    }
    expect(out.join('')).toBe(
      `${JSON.stringify(toVertexInputLine(chatLine('a')))}\n${JSON.stringify(toVertexInputLine(chatLine('b')))}\n`,
    )
    await expect(async () => {
      for await (const _ of Readable.from([Buffer.from('\n')]).pipe(new VertexRequestTransform())) {
        // drain
      }
    }).rejects.toThrow(ApiError)
  })

  it('joins sources with a newline where one is missing, opening each lazily', async () => {
    const opened: number[] = []
    const open = (index: number, text: string) => async () => {
      opened.push(index)
      return Readable.from([Buffer.from(text)])
    }
    const out: Buffer[] = []
    for await (const chunk of concatJsonlSources([
      open(1, '{"a":1}'),
      open(2, '{"b":2}\n'),
      open(3, ''),
      open(4, '{"c":3}'),
    ])) {
      out.push(Buffer.from(chunk))
      if (out.length === 1) expect(opened).toEqual([1])
    }
    expect(Buffer.concat(out).toString()).toBe('{"a":1}\n{"b":2}\n{"c":3}\n')
  })
})
