/**
 * How an OpenAI `custom_id` travels through a Vertex batch job and back.
 *
 * Vertex has no `custom_id`, writes predictions in no particular order, and may spread them over several
 * files, so the id must ride inside each line and come back with its row; position means nothing. batchkit
 * writes it twice on every input line:
 *
 * 1. **`request.labels`** (the primary carriage): Vertex echoes the whole `request`, labels included, in every
 *    output row; this is what LiteLLM (PR #25627) and Bifrost (PR #4152) rely on in production. Label values
 *    may only hold lowercase letters, digits, `_` and `-`, at most 63 characters, so the id's UTF-8 bytes are
 *    written as unpadded lowercase base32 in chunks of 63 under `batchkit_cid`, `batchkit_cid_1`, … . This
 *    is exact for any id (case, Unicode, punctuation), unlike LiteLLM's lossy "sanitized" label.
 * 2. **a top-level `custom_id` key** beside `request`, verbatim. It keeps the uploaded Vertex file readable, and
 *    Vertex attaches it to the output row only when the job lists it in `instanceConfig.excludedFields`, which
 *    Vertex documents for custom models, not Gemini: jobs are created without it, so the labels carry the id.
 *
 * On the way back the top-level key wins when present, else the labels are decoded. Per-request labels are
 * billing metadata; Google discourages high-cardinality label values (they show up in billing exports), which
 * is the price of a carriage that works without any server-side state. A `custom_id` whose base32 form needs
 * more than {@link MAX_LABEL_CHUNKS} labels (an id over 787 UTF-8 bytes) is refused at upload.
 */

/** The top-level key of a Vertex input line that carries the `custom_id` verbatim. */
export const CUSTOM_ID_FIELD = 'custom_id'

/** The label key of the first base32 chunk; later chunks use `_1`, `_2`, … suffixes. */
export const CUSTOM_ID_LABEL = 'batchkit_cid'

/** Longest label value Vertex accepts. */
const LABEL_VALUE_MAX = 63

/** Most labels one id may take (GCP allows 64 labels on a resource; a few are left for others). */
export const MAX_LABEL_CHUNKS = 20

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** RFC 4648 base32, lowercase, no padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = ''
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += BASE32[(buffer >>> bits) & 31]
    }
    buffer &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31]
  return out
}

/** Inverse of {@link base32Encode}; undefined for characters outside the alphabet or a non-canonical tail. */
export function base32Decode(text: string): Buffer | undefined {
  const out: number[] = []
  let buffer = 0
  let bits = 0
  for (const char of text) {
    const value = BASE32.indexOf(char)
    if (value === -1) return undefined
    buffer = (buffer << 5) | value
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((buffer >>> bits) & 0xff)
    }
    buffer &= (1 << bits) - 1
  }
  // Leftover bits must be padding zeros, and fewer than a whole byte.
  if (bits >= 5 || buffer !== 0) return undefined
  return Buffer.from(out)
}

/** The labels carrying `customId`, or undefined when it is too long to carry. */
export function customIdLabels(customId: string): Record<string, string> | undefined {
  const encoded = base32Encode(Buffer.from(customId, 'utf8'))
  const chunks = Math.max(1, Math.ceil(encoded.length / LABEL_VALUE_MAX))
  if (chunks > MAX_LABEL_CHUNKS) return undefined
  const labels: Record<string, string> = {}
  for (let i = 0; i < chunks; i++) {
    labels[labelKey(i)] = encoded.slice(i * LABEL_VALUE_MAX, (i + 1) * LABEL_VALUE_MAX)
  }
  return labels
}

/** The `custom_id` carried by `labels`, or undefined when they carry none (or a corrupt one). */
export function customIdFromLabels(labels: unknown): string | undefined {
  if (typeof labels !== 'object' || labels === null) return undefined
  const record = labels as Record<string, unknown>
  let encoded = ''
  for (let i = 0; i < MAX_LABEL_CHUNKS; i++) {
    const chunk = record[labelKey(i)]
    if (typeof chunk !== 'string') break
    encoded += chunk
  }
  if (encoded === '') return undefined
  const bytes = base32Decode(encoded)
  if (!bytes) return undefined
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * The `custom_id` of a Vertex output row: the top-level {@link CUSTOM_ID_FIELD} when Vertex attached it,
 * else the one carried in the echoed `request.labels`. Undefined when the row carries neither.
 */
export function customIdOfRow(row: unknown): string | undefined {
  if (typeof row !== 'object' || row === null) return undefined
  const record = row as Record<string, unknown>
  const direct = record[CUSTOM_ID_FIELD]
  if (typeof direct === 'string' && direct !== '') return direct
  const request = record.request
  if (typeof request !== 'object' || request === null) return undefined
  return customIdFromLabels((request as Record<string, unknown>).labels)
}

function labelKey(index: number): string {
  return index === 0 ? CUSTOM_ID_LABEL : `${CUSTOM_ID_LABEL}_${index}`
}
