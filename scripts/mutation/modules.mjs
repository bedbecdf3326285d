// The modules of @batchkit/core that mutation testing covers: the ones where a surviving mutant costs a
// user money, data or tenancy. `pnpm mutation` mutates all of them; docs/quality.md has a score for each.

/**
 * A module: its name, its files, and where it has them, its own fast test files (`unitTests`), which
 * `pnpm mutation --ci` runs instead of the whole set; `ci: true` marks the modules CI checks on every run
 * that way, to stay within its time limit.
 * @typedef {{ name: string, files: string[], unitTests?: string[], ci?: boolean }} MutationModule
 */

const src = 'packages/core/src/'
const test = 'packages/core/test/'

/** @type {MutationModule[]} */
export const MODULES = [
  { name: 'auth', files: [`${src}auth/**/*.ts`], unitTests: [`${test}api-keys.test.ts`], ci: true },
  { name: 'files service', files: [`${src}files/service.ts`] },
  { name: 'batches service', files: [`${src}batches/service.ts`] },
  { name: 'JSONL validator', files: [`${src}files/jsonl-validator.ts`], unitTests: [`${test}jsonl-validator.test.ts`] },
  { name: 'tracker', files: [`${src}tracking/tracker.ts`] },
  { name: 'finish', files: [`${src}tracking/finish.ts`] },
  { name: 'aggregate', files: [`${src}tracking/aggregate.ts`], unitTests: [`${test}aggregate.test.ts`] },
  {
    name: 'events outbox',
    files: [`${src}events/outbox.ts`, `${src}events/delivery-queue.ts`],
    unitTests: [`${test}delivery-queue.test.ts`, `${test}outbox.test.ts`, `${test}event-delivery.test.ts`],
    ci: true,
  },
  { name: 'pricing', files: [`${src}pricing/**/*.ts`] },
  {
    name: 'upstream errors',
    files: [`${src}providers/upstream-errors.ts`],
    unitTests: [`${test}upstream-errors.test.ts`],
    ci: true,
  },
  {
    name: 'store records',
    files: [`${src}store/records.ts`],
    unitTests: [`${test}store.test.ts`, `${test}store-failures.test.ts`, `${test}billed-list.test.ts`],
    ci: true,
  },
  {
    name: 'store indexes',
    files: [`${src}store/*-index.ts`, `${src}store/ordered-index.ts`, `${src}store/sorted-list.ts`],
    unitTests: [
      `${test}ordered-index.test.ts`,
      `${test}sorted-list.test.ts`,
      `${test}store-layout.test.ts`,
      `${test}store.test.ts`,
    ],
    ci: true,
  },
  { name: 'intents', files: [`${src}intents/**/*.ts`] },
]

/** Every file pattern of `modules`, as Stryker's `mutate` takes them. */
export function mutatePatterns(modules = MODULES) {
  return modules.flatMap((module) => module.files)
}

/** A module's name as a command-line argument and directory name: `events outbox` -> `events-outbox`. */
export function slug(name) {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-')
}

/** The modules' own test files, which `--ci` runs against them. */
export function ciTestFiles(modules) {
  return [...new Set(modules.flatMap((module) => module.unitTests ?? []))]
}
