import type { Json } from '../openai/objects.js'

const BATCH_TIMESTAMPS = [
  'created_at',
  'in_progress_at',
  'expires_at',
  'finalizing_at',
  'completed_at',
  'failed_at',
  'expired_at',
  'cancelling_at',
  'cancelled_at',
] as const

const FILE_TIMESTAMPS = ['created_at', 'expires_at'] as const

/** Spellings of OpenAI's statuses seen in Azure's objects and documents, after snake-casing. */
const STATUS_ALIASES: Readonly<Record<string, string>> = {
  canceled: 'cancelled',
  canceling: 'cancelling',
  inprogress: 'in_progress',
}

/**
 * An Azure Batch object in OpenAI's form: ISO-8601 (or millisecond) timestamps as unix seconds,
 * statuses such as `Validating` or `InProgress` as `validating` and `in_progress`, and `errors.data`
 * as a list even where Azure sends one error object (as the GA `2024-10-21` spec types it, its
 * `line` a string, which the shared parser reads as a number). Other fields, `endpoint: null` and
 * `request_counts` of nulls among them, are left for the shared parser, which tolerates them.
 */
export function normaliseBatch(value: unknown): unknown {
  if (!isJson(value)) return value
  const batch: Json = { ...value }
  for (const field of BATCH_TIMESTAMPS) if (field in batch) batch[field] = unixSeconds(batch[field])
  if (typeof batch.status === 'string') batch.status = normaliseStatus(batch.status)
  if (isJson(batch.errors) && isJson(batch.errors.data)) batch.errors = { ...batch.errors, data: [batch.errors.data] }
  return batch
}

/** An Azure File object in OpenAI's form (timestamps as unix seconds, status in lower snake_case). */
export function normaliseFile(value: unknown): unknown {
  if (!isJson(value)) return value
  const file: Json = { ...value }
  for (const field of FILE_TIMESTAMPS) if (field in file) file[field] = unixSeconds(file[field])
  if (typeof file.status === 'string') file.status = normaliseStatus(file.status)
  return file
}

/** `InProgress`, `IN_PROGRESS`, `in progress` → `in_progress`; `Canceled` → `cancelled`. */
export function normaliseStatus(status: string): string {
  const snake = status
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[\s-]+/g, '_')
    .toLowerCase()
  return STATUS_ALIASES[snake] ?? snake
}

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/

/**
 * A timestamp as whole unix seconds: seconds stay, milliseconds (anything past the year 5000 in
 * seconds) are divided, numeric strings are read as numbers, and ISO-8601 strings are parsed (as
 * UTC when they carry no offset, .NET's seven fractional digits included). Anything else is null.
 */
export function unixSeconds(value: unknown): number | null {
  if (typeof value === 'number') return fromNumber(value)
  if (typeof value !== 'string') return null
  const text = value.trim()
  if (/^-?\d+(?:\.\d+)?$/.test(text)) return fromNumber(Number(text))
  const match = ISO_8601.exec(text)
  if (!match) return null
  const [, year, month, day, hour = '0', minute = '0', second = '0', , , sign, offsetHours, offsetMinutes] = match
  const parts = [Number(month), Number(day), Number(hour), Number(minute), Number(second)] as const
  const [mo, d, h, mi, sec] = parts
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return null
  const ms = Date.UTC(Number(year), mo - 1, d, h, mi, sec)
  if (!Number.isFinite(ms)) return null
  const offset = sign ? (sign === '-' ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60 : 0
  return Math.floor(ms / 1000) - offset
}

function fromNumber(value: number): number | null {
  if (!Number.isFinite(value)) return null
  return Math.trunc(Math.abs(value) >= 1e11 ? value / 1000 : value)
}

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
