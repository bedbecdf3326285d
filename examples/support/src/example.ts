import type { BatchKit } from '@batchkit/core'
import type { ExampleConfig } from './config.js'

/** How an example app is run, besides its settings. */
export interface ExampleRunOptions {
  /** How fast the fake upstream moves a batch along, when there is no OpenAI key. @default 1000 */
  fakeStepMs?: number
  /** Where each event goes, as one JSON line. @default standard output */
  printEvent?: (line: string) => void
}

/** A running example app. */
export interface StartedExample {
  /** The base URL to give an OpenAI client, `/v1` included. */
  baseURL: string
  close(): Promise<void>
}

/** A running example app, with the kit it mounts. */
export interface RunningExample extends StartedExample {
  kit: BatchKit
}

/** Starts an example app: what each example's `src/server.ts` exports. */
export type StartExample = (
  config: ExampleConfig,
  log: (line: string) => void,
  options: ExampleRunOptions,
) => Promise<StartedExample>

/** Prints an event line to standard output. */
export const printToStdout = (line: string): void => {
  process.stdout.write(`${line}\n`)
}
