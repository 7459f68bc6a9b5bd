/**
 * The store port: where idempotency records live.
 *
 * A store keeps one record per idempotency key and offers a handful of atomic operations over it. The engine
 * in `Idempotency` is written only against this interface, so any backend that honours the contract below
 * (in-memory, SQLite, PostgreSQL, or your own) gives the same guarantees. `effect-idempotency/testing` holds a
 * conformance suite that checks a store against this contract.
 *
 * Every operation takes the current time explicitly (epoch milliseconds). The engine reads it from Effect's
 * `Clock`, so `TestClock` drives expiry and leases in tests, and a store never needs a clock of its own.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as storeMemory from "./internal/storeMemory.js"
import * as storeSql from "./internal/storeSql.js"

/**
 * Where a record stands: claimed and running, finished with a stored response, or finished with a stored
 * (fatal) error.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "processing" | "succeeded" | "failed"

/**
 * One idempotency record, as a store hands it back.
 *
 * @since 0.1.0
 * @category models
 */
export interface IdempotencyRecord {
  readonly key: string
  /** Fingerprint of the request that first claimed the key. */
  readonly requestHash: string
  readonly status: Status
  /** JSON text of the Schema-encoded success, once `status` is `"succeeded"`. */
  readonly response: Option.Option<string>
  /** JSON text of the Schema-encoded failure, once `status` is `"failed"`. */
  readonly error: Option.Option<string>
  /** Token of the caller that holds the lease while `status` is `"processing"`. */
  readonly owner: Option.Option<string>
  /** Epoch ms at which the current lease ends; a processing record may be taken over from then on. */
  readonly leaseExpiresAt: number
  /** How many times the key has been claimed within this record's life (1 for the first claim). */
  readonly attempts: number
  /** Epoch ms of the first claim. */
  readonly createdAt: number
  /** Epoch ms of the last write. */
  readonly updatedAt: number
  /** Epoch ms from which the record no longer exists: the key is fresh again. */
  readonly expiresAt: number
}

/**
 * What `claim` asks a store to do, atomically:
 *
 * - no live record for `key` (absent, or `expiresAt <= now`): write a fresh `processing` record owned by
 *   `owner` with `attempts = 1` and answer `Claimed` with `takeover: false`;
 * - a `processing` record whose lease has ended (`leaseExpiresAt <= now`) and whose `requestHash` equals this
 *   one: hand it to `owner` with the new lease, `attempts + 1`, and answer `Claimed` with `takeover: true`;
 * - anything else: change nothing and answer `Existing` with the live record.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimRequest {
  readonly key: string
  readonly requestHash: string
  readonly owner: string
  readonly now: number
  readonly leaseExpiresAt: number
  readonly expiresAt: number
}

/**
 * The `processing` record a claim writes for `request`: owned by `request.owner` until `request.leaseExpiresAt`.
 * A fresh claim takes the defaults; a takeover passes the record's attempt count and first-claim time.
 *
 * @example
 * ```ts
 * import { IdempotencyStore } from "effect-idempotency"
 *
 * const record = IdempotencyStore.claimedRecord({
 *   key: "chatmsg:conv_782:msg_991",
 *   requestHash: "9f2c...",
 *   owner: "owner-1",
 *   now: 0,
 *   leaseExpiresAt: 30_000,
 *   expiresAt: 86_400_000
 * })
 * // record.status === "processing", record.attempts === 1
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const claimedRecord = (request: ClaimRequest, attempts = 1, createdAt = request.now): IdempotencyRecord => ({
  key: request.key,
  requestHash: request.requestHash,
  status: "processing",
  response: Option.none(),
  error: Option.none(),
  owner: Option.some(request.owner),
  leaseExpiresAt: request.leaseExpiresAt,
  attempts,
  createdAt,
  updatedAt: request.now,
  expiresAt: request.expiresAt
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClaimResult =
  | { readonly _tag: "Claimed"; readonly record: IdempotencyRecord; readonly takeover: boolean }
  | { readonly _tag: "Existing"; readonly record: IdempotencyRecord }

/**
 * A write by `owner` to the record it claimed. Refused with `LeaseLost` unless the record is still
 * `processing` and still owned by `owner` (a caller that was taken over can no longer write).
 *
 * @since 0.1.0
 * @category models
 */
export interface OwnedWrite {
  readonly key: string
  readonly owner: string
  readonly now: number
}

const describeCause = (cause: unknown): string => {
  const inner = cause instanceof Error && cause.cause instanceof Error ? ` (${cause.cause.message})` : ""
  return `${String(cause)}${inner}`
}

/**
 * The backend failed (connection lost, disk full, a constraint the store did not expect). Callers may retry
 * it: nothing about the key's state is implied.
 *
 * @since 0.1.0
 * @category errors
 */
export class IdempotencyStoreError extends Schema.TaggedError<IdempotencyStoreError>()("IdempotencyStoreError", {
  operation: Schema.String,
  key: Schema.optional(Schema.String),
  cause: Schema.Defect
}) {
  override get message(): string {
    const target = this.key === undefined ? "" : ` for key "${this.key}"`
    return (
      `The idempotency store failed during ${this.operation}${target}: ${describeCause(this.cause)}. ` +
      `Nothing is implied about the key's state; the call may be retried once the store is reachable.`
    )
  }
}

/**
 * A write was refused because the caller no longer owns the record: its lease ended and another caller took
 * the key over, or the record was released, completed or expired meanwhile. The other caller's result stands.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  key: Schema.String,
  owner: Schema.String,
  operation: Schema.String
}) {
  override get message(): string {
    return (
      `Lost the lease on idempotency key "${this.key}" before ${this.operation}: another caller took it over ` +
      `(or it expired), so this caller's result was not stored. Lengthen the lease or heartbeat more often.`
    )
  }
}

/**
 * The operations every store offers. All of them are atomic with respect to each other for one key.
 *
 * @since 0.1.0
 * @category models
 */
export interface IdempotencyStoreShape {
  /** Claims `key` or reports the live record; see {@link ClaimRequest}. */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ClaimResult, IdempotencyStoreError>
  /** Stores the success (JSON text) and ends the lease. */
  readonly complete: (
    write: OwnedWrite & { readonly response: string }
  ) => Effect.Effect<void, LeaseLost | IdempotencyStoreError>
  /** Stores a fatal failure (JSON text) and ends the lease. */
  readonly fail: (
    write: OwnedWrite & { readonly error: string }
  ) => Effect.Effect<void, LeaseLost | IdempotencyStoreError>
  /** Deletes the owner's processing record, so that the next caller starts afresh. */
  readonly release: (write: OwnedWrite) => Effect.Effect<void, LeaseLost | IdempotencyStoreError>
  /** Moves the owner's lease end to `leaseExpiresAt` while it keeps working. */
  readonly heartbeat: (
    write: OwnedWrite & { readonly leaseExpiresAt: number }
  ) => Effect.Effect<void, LeaseLost | IdempotencyStoreError>
  /** The live record for `key`; an expired record reads as `None`. */
  readonly get: (key: string, now: number) => Effect.Effect<Option.Option<IdempotencyRecord>, IdempotencyStoreError>
  /** Deletes every record with `expiresAt <= now` and answers how many went. */
  readonly purgeExpired: (now: number) => Effect.Effect<number, IdempotencyStoreError>
}

/**
 * The store service.
 *
 * @since 0.1.0
 * @category tags
 */
export class IdempotencyStore extends Context.Tag("effect-idempotency/IdempotencyStore")<
  IdempotencyStore,
  IdempotencyStoreShape
>() {}

/**
 * A store that keeps records in this process's memory: for tests, single-process tools and as a reference
 * for custom stores. Each operation is one synchronous step, so it is atomic with respect to every other
 * fiber. Records are lost when the process ends, and each use of the layer starts empty.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { IdempotencyStore } from "effect-idempotency"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* IdempotencyStore.IdempotencyStore
 *   return yield* store.get("order:42", 0)
 * }).pipe(Effect.provide(IdempotencyStore.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<IdempotencyStore> = Layer.sync(IdempotencyStore, storeMemory.make)

/**
 * Deletes every record that has expired by the `Clock`'s current time and answers how many went. Run it on
 * a schedule (or from the CLI) to keep the store small; expired records are already invisible to callers.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { IdempotencyStore } from "effect-idempotency"
 *
 * const janitor = IdempotencyStore.purgeExpired.pipe(Effect.repeat(Schedule.spaced("1 hour")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const purgeExpired: Effect.Effect<number, IdempotencyStoreError, IdempotencyStore> = Effect.gen(function* () {
  const store = yield* IdempotencyStore
  const now = yield* Clock.currentTimeMillis

  return yield* store.purgeExpired(now)
}).pipe(Effect.withSpan("IdempotencyStore.purgeExpired"))

/**
 * `layerSql` was given a table name it will not put into SQL.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTableName extends Schema.TaggedError<InvalidTableName>()("InvalidTableName", {
  table: Schema.String
}) {
  override get message(): string {
    return (
      `${JSON.stringify(this.table)} is not a valid idempotency table name: use 1 to ${tableNameMaxLength} ` +
      `lowercase letters, digits and underscores, starting with a letter or underscore (e.g. "ai_idempotency").`
    )
  }
}

/** Leaves room for the `_expires_at_idx` suffix within PostgreSQL's 63-character identifiers. */
const tableNameMaxLength = 48

const tableName = /^[a-z_][a-z0-9_]*$/

/**
 * Options of {@link layerSql}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlOptions {
  /** Table that holds the records, created if absent. Default `"ai_idempotency"`. */
  readonly table?: string | undefined
}

/**
 * A store in a SQL database reached through `@effect/sql`: SQLite (`@effect/sql-sqlite-node`) or PostgreSQL
 * (`@effect/sql-pg`). Building the layer creates the table (default `ai_idempotency`) and its expiry index if
 * absent. Times are stored as epoch milliseconds. The claim is a single
 * `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING` statement and every owner's write a single
 * statement fenced by the owner token, so the store is safe across connections and processes sharing the
 * database. Database failures surface as `IdempotencyStoreError`.
 *
 * Throws `InvalidTableName` at once when `options.table` is not a plain lowercase SQL identifier.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Layer } from "effect"
 * import { IdempotencyStore } from "effect-idempotency"
 *
 * const StoreLive = IdempotencyStore.layerSql().pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "idempotency.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<IdempotencyStore, SqlError, SqlClient.SqlClient> => {
  const table = options?.table ?? "ai_idempotency"
  if (table.length > tableNameMaxLength || !tableName.test(table)) {
    throw new InvalidTableName({ table })
  }
  return Layer.effect(IdempotencyStore, storeSql.make(table))
}
