/**
 * A structured logger: pino's methods (`logger.warn({ batchId }, 'message')`), so pino, or anything
 * with the same four methods, plugs in as it is.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, message?: string): void
  info(fields: Record<string, unknown>, message?: string): void
  warn(fields: Record<string, unknown>, message?: string): void
  error(fields: Record<string, unknown>, message?: string): void
}

const ignore = () => undefined

/** The default: batchkit says nothing unless given a logger. */
export const SILENT_LOGGER: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore }
