/**
 * The JSON Schema Gemini's `responseJsonSchema` takes. content.proto lists the keywords it supports:
 * `$id`, `$defs`, `$ref`, `$anchor`, `type`, `format`, `title`, `description`, `enum` (of strings and
 * numbers), `items`, `prefixItems`, `minItems`, `maxItems`, `minimum`, `maximum`, `anyOf`, `oneOf` (read as
 * `anyOf`), `properties`, `additionalProperties`, `required`, and the non-standard `propertyOrdering`; and a
 * sub-schema with `$ref` may set no other keyword but `$` ones. `$schema` is dropped before the check.
 */

/** The keywords `responseJsonSchema` supports. */
const RESPONSE_SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
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

/** Where a schema breaks the rules above (a JSON path below the schema, `''` for its root), and how. */
export interface SchemaProblem {
  path: string
  message: string
}

/** The first place `schema` uses what `responseJsonSchema` does not support, or undefined. */
export function responseSchemaProblem(schema: unknown, path = ''): SchemaProblem | undefined {
  if (typeof schema === 'boolean') return undefined
  if (!isObject(schema)) return { path, message: 'is not a schema (an object or a boolean)' }
  const keys = Object.keys(schema)
  const unknown = keys.find((key) => !RESPONSE_SCHEMA_KEYWORDS.has(key))
  if (unknown !== undefined) return { path, message: `uses '${unknown}', which Gemini does not support` }
  if (schema.$ref !== undefined && keys.some((key) => !key.startsWith('$'))) {
    return { path, message: "sets '$ref' beside other keywords, which Gemini does not support" }
  }
  if (
    Array.isArray(schema.enum) &&
    schema.enum.some((value) => typeof value !== 'string' && typeof value !== 'number')
  ) {
    return { path, message: "has an 'enum' value that is neither a string nor a number, which Gemini does not support" }
  }
  for (const [childPath, child] of children(schema)) {
    const problem = responseSchemaProblem(child, `${path}${childPath}`)
    if (problem) return problem
  }
  return undefined
}

function children(schema: Record<string, unknown>): Array<[string, unknown]> {
  const found: Array<[string, unknown]> = []
  for (const key of ['properties', '$defs'] as const) {
    const map = schema[key]
    if (isObject(map)) for (const [name, child] of Object.entries(map)) found.push([`.${key}.${name}`, child])
  }
  for (const key of ['anyOf', 'oneOf', 'prefixItems'] as const) {
    const list = schema[key]
    if (Array.isArray(list)) for (const [index, child] of list.entries()) found.push([`.${key}[${index}]`, child])
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    if (isObject(schema[key])) found.push([`.${key}`, schema[key]])
  }
  return found
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
