/**
 * Test kit for store authors: one call registers the whole `IdempotencyStore` contract as tests.
 *
 * Needs `@effect/vitest` (and vitest) in the project that runs it.
 *
 * @since 0.1.0
 */
import { describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import { Effect } from "effect"
import type { Layer } from "effect"
import type { IdempotencyStore } from "../IdempotencyStore.js"
import * as Conformance from "../internal/storeConformance.js"

/**
 * Options of {@link conformance}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConformanceOptions {
  /** How many fibers race to claim one new key. Default 50. */
  readonly fibers?: number | undefined
  /** Per-test timeout in milliseconds, for stores behind a network. Default: vitest's. */
  readonly timeout?: number | undefined
}

/**
 * Registers a `describe(name)` block whose tests check a store against the `IdempotencyStore` contract:
 * fresh claims, replays of live records, lease takeover (only after the lease, only for the same request,
 * immediately for a lease of zero), fencing of a taken-over owner, heartbeats, expiry, `get`, `purgeExpired`
 * (also through the `Clock`-reading accessor) and a race of many fibers for one new key.
 *
 * `layer` is built afresh for every test and must give an empty store each time (a new in-memory map, a new
 * database file, a new table). All times are explicit epoch milliseconds, or `TestClock`, so the suite never
 * sleeps.
 *
 * @example
 * ```ts
 * // test/MyStore.test.ts
 * import { conformance } from "effect-idempotency/testing"
 * import { layerMyStore } from "../src/MyStore.js"
 *
 * conformance("MyStore", layerMyStore)
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const conformance = (
  name: string,
  layer: Layer.Layer<IdempotencyStore, unknown>,
  options?: ConformanceOptions
): void => {
  const prefix = `conformance:${Crypto.randomUUID()}`
  describe(name, () => {
    Conformance.cases(options?.fibers ?? 50).forEach((testCase, index) => {
      it.effect(testCase.name, () => Effect.provide(testCase.run(`${prefix}:${index}`), layer), options?.timeout)
    })
  })
}
