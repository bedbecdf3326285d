import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import { parse } from 'yaml'

/** Schemas of OpenAI's Files and Batches spec extract that responses are usually checked against. */
export type SchemaName =
  | 'OpenAIFile'
  | 'Batch'
  | 'ListFilesResponse'
  | 'ListBatchesResponse'
  | 'DeleteFileResponse'
  | 'ErrorResponse'
  | 'BatchRequestOutput'

export interface SchemaValidator {
  /** Throws an Error listing every schema violation when `value` is not a valid `schemaName`. */
  // `string & {}` keeps editor completion for the known names while accepting any schema of the extract.
  assert(schemaName: SchemaName | (string & {}), value: unknown): void
}

/** The response-validation extract of OpenAI's spec (nullable fields relaxed to match live responses). */
const SPEC_URL = new URL('../openapi/openai-batch-files.responses.yaml', import.meta.url)

let components: { schemas: Record<string, unknown> } | undefined

function loadComponents(): { schemas: Record<string, unknown> } {
  if (!components) {
    const spec = parse(readFileSync(fileURLToPath(SPEC_URL), 'utf8')) as {
      components: { schemas: Record<string, unknown> }
    }
    components = spec.components
  }
  return components
}

function describe(errors: readonly ErrorObject[]): string {
  return errors
    .map(
      (error) => `  ${error.instancePath || '(root)'} ${error.message ?? 'is invalid'} ${JSON.stringify(error.params)}`,
    )
    .join('\n')
}

/**
 * A validator for OpenAI's response schemas (JSON Schema 2020-12, from `openapi/openai-batch-files.responses.yaml`).
 * Compiled schemas are cached per validator.
 */
export function createSchemaValidator(): SchemaValidator {
  const spec = loadComponents()
  // Formats such as `unixtime` are OpenAI annotations, not checkable formats.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
  const compiled = new Map<string, ValidateFunction>()

  function validatorFor(name: string): ValidateFunction {
    let validate = compiled.get(name)
    if (!validate) {
      if (!Object.hasOwn(spec.schemas, name)) throw new Error(`Unknown OpenAI schema '${name}'`)
      validate = ajv.compile({ components: spec, $ref: `#/components/schemas/${name}` })
      compiled.set(name, validate)
    }
    return validate
  }

  return {
    assert(schemaName, value) {
      const validate = validatorFor(schemaName)
      if (!validate(value)) {
        throw new Error(`Value does not match OpenAI schema '${schemaName}':\n${describe(validate.errors ?? [])}`)
      }
    },
  }
}
