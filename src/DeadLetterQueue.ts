/**
 * Where calls go when retrying is over: retries exhausted, a Retry-After too long to honour, or the retry
 * budget refused. Each entry keeps the action's idempotency key, its request, the last error and how many
 * attempts were made, so a person can look, then replay or discard.
 *
 * - One entry per key: dead-lettering a key again updates its entry (last error, attempts added up) instead
 *   of adding a duplicate.
 * - `onDeadLetter` is an alert hook, an Effect run once for each new entry (not for updates). A failing hook
 *   is logged and does not lose the entry.
 * - `replay(key, run)` re-runs the entry with the caller's `run`, which should go through the same idempotent
 *   path as the original call (`Idempotency.execute` with the same key): a replay then returns the stored
 *   result if the provider did run it after all, and can never bill twice. A successful replay removes the
 *   entry; a failed one keeps it with the new last error.
 *
 * Backends: {@link layerMemory} and {@link layerSql} (table `ai_dead_letters`, SQLite and PostgreSQL).
 *
 * @since 0.1.0
 */
import type { Option } from "effect"
import { Context, Effect, Layer } from "effect"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as internal from "./internal/deadLetter.js"
import type {
  DeadLetter,
  DeadLetterInput,
  DeadLetterNotFound,
  DeadLetterQueueError,
  LastError
} from "./internal/deadLetterModel.js"
import * as memory from "./internal/deadLetterMemory.js"
import * as sqlBackend from "./internal/deadLetterSql.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  DeadLetterNotFound,
  /**
   * @since 0.1.0
   * @category errors
   */
  DeadLetterQueueError,
  /**
   * @since 0.1.0
   * @category schemas
   */
  LastError
} from "./internal/deadLetterModel.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  DeadLetter,
  /**
   * @since 0.1.0
   * @category models
   */
  DeadLetterInput
} from "./internal/deadLetterModel.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DeadLetterQueueShape {
  /** Stores the entry, or updates the entry already held for the key; runs the alert hook for a new one. */
  readonly add: (input: DeadLetterInput) => Effect.Effect<DeadLetter, DeadLetterQueueError>
  /** Entries, oldest first. */
  readonly list: (options?: {
    readonly limit?: number | undefined
  }) => Effect.Effect<ReadonlyArray<DeadLetter>, DeadLetterQueueError>
  readonly get: (key: string) => Effect.Effect<Option.Option<DeadLetter>, DeadLetterQueueError>
  /** Re-runs an entry with `run`; removes it when `run` succeeds, records the new last error when it fails. */
  readonly replay: <A, E, R>(
    key: string,
    run: (entry: DeadLetter) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | DeadLetterNotFound | DeadLetterQueueError, R>
  /** Removes an entry without re-running it. */
  readonly discard: (key: string) => Effect.Effect<void, DeadLetterNotFound | DeadLetterQueueError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DeadLetterQueue extends Context.Tag("effect-idempotency/DeadLetterQueue")<
  DeadLetterQueue,
  DeadLetterQueueShape
>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /** Alert hook, run once per new entry (e.g. send a message to on-call). Its failures are logged, not raised. */
  readonly onDeadLetter?: ((entry: DeadLetter) => Effect.Effect<void, unknown, R>) | undefined
}

/**
 * New entries: `effect_idempotency_dead_letters_total`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const deadLettersTotal = internal.deadLettersTotal

/**
 * Summarises any error for storage: a `CallError` keeps its tag, message and status; other tagged errors their
 * tag and message; anything else its name and text.
 *
 * @since 0.1.0
 * @category constructors
 */
export const summarize: (error: unknown) => LastError = internal.summarize

/**
 * A queue held in memory, for tests and single-process programs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = <R = never>(options: Options<R> = {}): Layer.Layer<DeadLetterQueue, never, R> =>
  Layer.effect(
    DeadLetterQueue,
    Effect.flatMap(memory.make, (backend) => internal.fromBackend(backend, options.onDeadLetter))
  )

/**
 * A queue in a SQL table (default `ai_dead_letters`, created if absent) over the `SqlClient` in context, on
 * SQLite or PostgreSQL. Columns: `dl_key` (primary key), `request_json`, `last_error_json`, `attempts`,
 * `dead_lettered_at`, `updated_at` (epoch ms).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import * as DeadLetterQueue from "effect-idempotency/DeadLetterQueue"
 *
 * const DeadLetters = DeadLetterQueue.layerSql({
 *   onDeadLetter: (entry) => Effect.logError(`dead letter ${entry.key}: ${entry.lastError.message}`)
 * }).pipe(Layer.provide(SqliteClient.layer({ filename: "effect-idempotency.db" })))
 * ```
 */
export const layerSql = <R = never>(
  options: Options<R> & { readonly table?: string | undefined } = {}
): Layer.Layer<DeadLetterQueue, SqlError | DeadLetterQueueError, SqlClient.SqlClient | R> =>
  Layer.effect(
    DeadLetterQueue,
    Effect.flatMap(sqlBackend.make(options.table ?? "ai_dead_letters"), (backend) =>
      internal.fromBackend(backend, options.onDeadLetter)
    )
  )

/**
 * @since 0.1.0
 * @category accessors
 */
export const add = (input: DeadLetterInput): Effect.Effect<DeadLetter, DeadLetterQueueError, DeadLetterQueue> =>
  Effect.flatMap(DeadLetterQueue, (queue) => queue.add(input))

/**
 * @since 0.1.0
 * @category accessors
 */
export const list = (options?: {
  readonly limit?: number | undefined
}): Effect.Effect<ReadonlyArray<DeadLetter>, DeadLetterQueueError, DeadLetterQueue> =>
  Effect.flatMap(DeadLetterQueue, (queue) => queue.list(options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = (key: string): Effect.Effect<Option.Option<DeadLetter>, DeadLetterQueueError, DeadLetterQueue> =>
  Effect.flatMap(DeadLetterQueue, (queue) => queue.get(key))

/**
 * @since 0.1.0
 * @category accessors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as DeadLetterQueue from "effect-idempotency/DeadLetterQueue"
 *
 * // `rerun` sends the stored request again through Idempotency.execute with the same key
 * declare const rerun: (entry: DeadLetterQueue.DeadLetter) => Effect.Effect<string, Error>
 *
 * const program = DeadLetterQueue.replay("chatmsg:conv_782:msg_991", rerun)
 * ```
 */
export const replay = <A, E, R>(
  key: string,
  run: (entry: DeadLetter) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | DeadLetterNotFound | DeadLetterQueueError, R | DeadLetterQueue> =>
  Effect.flatMap(DeadLetterQueue, (queue) => queue.replay(key, run))

/**
 * @since 0.1.0
 * @category accessors
 */
export const discard = (key: string): Effect.Effect<void, DeadLetterNotFound | DeadLetterQueueError, DeadLetterQueue> =>
  Effect.flatMap(DeadLetterQueue, (queue) => queue.discard(key))
