import { createHash } from 'node:crypto'

type Json = Record<string, unknown>

/** Function names Gemini takes (tool.proto): a letter or underscore first, then letters, digits, `_`, `.`, `-`; 64 at most. */
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

/** The JSON Schema keywords `responseJsonSchema` supports (content.proto), and the non-standard `propertyOrdering`. */
const SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
  '$id',
  '$defs',
  '$ref',
  '$anchor',
  'type',
  'format',
  'title',
  'description',
  'enum',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'anyOf',
  'oneOf',
  'properties',
  'additionalProperties',
  'required',
  'propertyOrdering',
])

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 }

/** `gemini-2.5-flash` → 2.5, `gemini-3-pro-preview` → 3; undefined for a name that is not a Gemini version. */
export function geminiVersion(model: string): number | undefined {
  const id = model.slice(model.lastIndexOf('/') + 1)
  const match = /^gemini-(\d+)(?:\.(\d+))?(?:-|$)/.exec(id)
  return match ? Number(`${match[1]}.${match[2] ?? '0'}`) : undefined
}

/**
 * The thought signature the fake gives a function call of Gemini 3 (base64, like Vertex's opaque bytes),
 * derived from the function's name so the fake can tell one it gave from a made-up one.
 */
export function fakeThoughtSignature(functionName: string): string {
  return createHash('sha256').update(`fake thought signature\n${functionName}`).digest('base64')
}

/**
 * Why Vertex would refuse one Gemini `request` for `model`, or undefined when it would run it: function
 * names outside tool.proto's rule, a `seed` outside int32, JSON Schema keywords `responseJsonSchema` does not
 * support (or `$ref` beside other keywords), penalties on Gemini 2.5 and later ("Penalty is not enabled"),
 * and, on Gemini 3, a function call of the current turn sent back without the thought signature it came
 * with (or with one the model never gave).
 */
export function requestRefusal(request: Json, model: string): string | undefined {
  const version = geminiVersion(model)
  const config = isObject(request.generationConfig) ? request.generationConfig : {}
  return (
    functionNameRefusal(request) ??
    seedRefusal(config) ??
    (config.responseJsonSchema === undefined ? undefined : schemaRefusal(config.responseJsonSchema, '')) ??
    (version !== undefined && version >= 2.5 ? penaltyRefusal(config, model) : undefined) ??
    (version !== undefined && version >= 3 ? signatureRefusal(request) : undefined)
  )
}

function functionNameRefusal(request: Json): string | undefined {
  const tools = Array.isArray(request.tools) ? request.tools : []
  for (const [t, tool] of tools.entries()) {
    const declarations = isObject(tool) && Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : []
    for (const [d, declaration] of declarations.entries()) {
      const name = isObject(declaration) ? declaration.name : undefined
      if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
        return `* GenerateContentRequest.tools[${t}].function_declarations[${d}].name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots and dashes, with a maximum length of 64.`
      }
    }
  }
  return undefined
}

function seedRefusal(config: Json): string | undefined {
  const seed = config.seed
  if (seed === undefined) return undefined
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < INT32.min || seed > INT32.max) {
    return `Invalid value at 'generation_config.seed' (TYPE_INT32), ${JSON.stringify(seed)}`
  }
  return undefined
}

function schemaRefusal(schema: unknown, path: string): string | undefined {
  if (typeof schema === 'boolean') return undefined
  if (!isObject(schema)) return `response_json_schema${path}: a schema must be an object or a boolean.`
  const keys = Object.keys(schema)
  for (const key of keys) {
    if (!SCHEMA_KEYWORDS.has(key)) {
      return `response_json_schema${path}: the keyword '${key}' is not supported.`
    }
  }
  if (schema.$ref !== undefined && keys.some((key) => !key.startsWith('$'))) {
    return `response_json_schema${path}: when $ref is set, no other keyword but $-keywords may be set.`
  }
  if (
    Array.isArray(schema.enum) &&
    schema.enum.some((value) => typeof value !== 'string' && typeof value !== 'number')
  ) {
    return `response_json_schema${path}.enum: only strings and numbers are supported.`
  }
  const children: Array<[string, unknown]> = []
  for (const key of ['properties', '$defs'] as const) {
    const map = schema[key]
    if (isObject(map)) for (const [name, child] of Object.entries(map)) children.push([`.${key}.${name}`, child])
  }
  for (const key of ['anyOf', 'oneOf', 'prefixItems'] as const) {
    const list = schema[key]
    if (Array.isArray(list)) for (const [index, child] of list.entries()) children.push([`.${key}[${index}]`, child])
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    if (isObject(schema[key])) children.push([`.${key}`, schema[key]])
  }
  for (const [childPath, child] of children) {
    const refusal = schemaRefusal(child, `${path}${childPath}`)
    if (refusal) return refusal
  }
  return undefined
}

function penaltyRefusal(config: Json, model: string): string | undefined {
  if (config.presencePenalty === undefined && config.frequencyPenalty === undefined) return undefined
  return `Penalty is not enabled for models/${model.slice(model.lastIndexOf('/') + 1)}`
}

/** Function calls of the current turn (the model turns after the last user text) need the signature they came with. */
function signatureRefusal(request: Json): string | undefined {
  const contents = Array.isArray(request.contents) ? request.contents.filter(isObject) : []
  let start = 0
  contents.forEach((content, index) => {
    const parts = Array.isArray(content.parts) ? content.parts : []
    if (content.role !== 'model' && parts.some((part) => isObject(part) && typeof part.text === 'string')) {
      start = index + 1
    }
  })
  for (const [offset, content] of contents.slice(start).entries()) {
    if (content.role !== 'model') continue
    const calls = (Array.isArray(content.parts) ? content.parts : []).filter(
      (part): part is Json => isObject(part) && isObject(part.functionCall),
    )
    const first = calls[0]
    if (!first) continue
    const name = String((first.functionCall as Json).name)
    if (typeof first.thoughtSignature !== 'string') {
      return `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${name}\` , position ${start + offset + 1}.`
    }
    if (first.thoughtSignature !== fakeThoughtSignature(name)) return 'Corrupted thought signature.'
  }
  return undefined
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
