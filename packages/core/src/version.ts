/** This package's version, as its package.json states it; `scripts/sync-version.mjs` writes it. */
export const VERSION = '0.1.0'
