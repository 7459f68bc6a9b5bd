/**
 * The SQL dead-letter backend over `@effect/sql`, for SQLite and PostgreSQL. "New entry or update" is decided
 * by the database (`INSERT ... ON CONFLICT DO NOTHING RETURNING`), so two processes dead-lettering the same key
 * at once make one entry and run the alert hook once.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import type { DeadLetter, LastError as LastErrorType } from "./deadLetterModel.js"
import { DeadLetterQueueError, LastError } from "./deadLetterModel.js"
import type { Backend } from "./deadLetter.js"

interface Row {
  readonly dl_key: string
  readonly request_json: string
  readonly last_error_json: string
  readonly attempts: number | string | bigint
  readonly dead_lettered_at: number | string | bigint
  readonly updated_at: number | string | bigint
}

/** How many times `upsert` retries when the entry it was about to update was removed under it. */
const upsertRounds = 3

const LastErrorJson = Schema.parseJson(LastError)
const encodeLastError = Schema.encodeSync(LastErrorJson)
const decodeLastError = Schema.decodeUnknown(LastErrorJson)

const failure = (operation: string, key?: string) => (cause: unknown) =>
  key === undefined
    ? new DeadLetterQueueError({ operation, cause })
    : new DeadLetterQueueError({ operation, key, cause })

/** PostgreSQL hands BIGINT back as a string and SQLite may hand back a bigint: both become numbers. */
const toEntry = (row: Row, operation: string): Effect.Effect<DeadLetter, DeadLetterQueueError> =>
  Effect.gen(function* () {
    const lastError = yield* Effect.mapError(decodeLastError(row.last_error_json), failure(operation, row.dl_key))

    const request = yield* Effect.try({
      try: () => JSON.parse(row.request_json) as unknown,
      catch: failure(operation, row.dl_key)
    })

    return {
      key: row.dl_key,
      request,
      lastError,
      attempts: Number(row.attempts),
      deadLetteredAt: Number(row.dead_lettered_at),
      updatedAt: Number(row.updated_at)
    }
  })

const createTable = (sql: SqlClient.SqlClient, table: string): Effect.Effect<void, SqlError> => {
  const create = Effect.zipRight(
    sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
  dl_key TEXT PRIMARY KEY NOT NULL,
  request_json TEXT NOT NULL,
  last_error_json TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  dead_lettered_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
)`,
    sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_dead_lettered_at_idx`)} ON ${sql(table)} (dead_lettered_at)`
  )
  return sql.onDialectOrElse({
    pg: () => sql.withTransaction(Effect.zipRight(sql`SELECT pg_advisory_xact_lock(hashtext(${table}))`, create)),
    orElse: () => create
  })
}

/** Leaves room for the `_dead_lettered_at_idx` suffix within PostgreSQL's 63-character identifiers. */
const tableNameMaxLength = 42

/** The identifier rule of `IdempotencyStore.layerSql`: a plain lowercase SQL name, never quoted or escaped. */
const tableName = /^[a-z_][a-z0-9_]*$/

/**
 * Refuses a table name that is not a plain lowercase identifier before any SQL is written with it.
 *
 * @internal
 */
export const checkTable = (table: string): Effect.Effect<void, DeadLetterQueueError> =>
  typeof table === "string" && table.length <= tableNameMaxLength && tableName.test(table)
    ? Effect.void
    : Effect.fail(
        new DeadLetterQueueError({
          operation: "layerSql",
          cause: new Error(
            `${JSON.stringify(table)} is not a valid dead-letter table name: use 1 to ${tableNameMaxLength} ` +
              `lowercase letters, digits and underscores, starting with a letter or underscore ` +
              `(e.g. "ai_dead_letters")`
          )
        })
      )

/** @internal */
export const make = (table: string): Effect.Effect<Backend, SqlError | DeadLetterQueueError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    yield* checkTable(table)

    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const supported = sql.onDialectOrElse({ sqlite: () => true, pg: () => true, orElse: () => false })
    if (!supported) {
      return yield* Effect.fail(
        new DeadLetterQueueError({
          operation: "layerSql",
          cause: new Error(
            "DeadLetterQueue.layerSql supports SQLite and PostgreSQL only; use layerMemory or a custom layer"
          )
        })
      )
    }

    yield* createTable(sql, table)

    return makeBackend(sql, table)
  })

const makeBackend = (sql: SqlClient.SqlClient, table: string): Backend => {
  const t = sql(table)

  const upsert: Backend["upsert"] = (entry) => {
    const lastErrorJson = encodeLastError(entry.lastError)
    const insert = sql<Row>`INSERT INTO ${t} (dl_key, request_json, last_error_json, attempts, dead_lettered_at, updated_at)
VALUES (${entry.key}, ${entry.requestJson}, ${lastErrorJson}, ${entry.attempts}, ${entry.deadLetteredAt}, ${entry.updatedAt})
ON CONFLICT (dl_key) DO NOTHING
RETURNING *`
    const update = sql<Row>`UPDATE ${t}
SET request_json = ${entry.requestJson}, last_error_json = ${lastErrorJson},
  attempts = attempts + ${entry.attempts}, updated_at = ${entry.updatedAt}
WHERE dl_key = ${entry.key}
RETURNING *`
    const attempt = (
      rounds: number
    ): Effect.Effect<{ readonly entry: DeadLetter; readonly isNew: boolean }, DeadLetterQueueError> =>
      Effect.flatMap(Effect.mapError(insert, failure("add", entry.key)), (inserted) => {
        if (inserted[0] !== undefined) {
          return Effect.map(toEntry(inserted[0], "add"), (stored) => ({ entry: stored, isNew: true }))
        }
        return Effect.flatMap(Effect.mapError(update, failure("add", entry.key)), (updated) => {
          if (updated[0] !== undefined) {
            return Effect.map(toEntry(updated[0], "add"), (stored) => ({ entry: stored, isNew: false }))
          }
          return rounds > 1
            ? attempt(rounds - 1)
            : Effect.fail(failure("add", entry.key)(new Error("the entry kept being removed while being updated")))
        })
      })
    return attempt(upsertRounds)
  }

  const list: Backend["list"] = (limit) =>
    Effect.flatMap(
      Effect.mapError(
        limit === undefined
          ? sql<Row>`SELECT * FROM ${t} ORDER BY dead_lettered_at, dl_key`
          : sql<Row>`SELECT * FROM ${t} ORDER BY dead_lettered_at, dl_key LIMIT ${Math.max(0, Math.floor(limit))}`,
        failure("list")
      ),
      (rows) => Effect.forEach(rows, (row) => toEntry(row, "list"))
    )

  const get: Backend["get"] = (key) =>
    Effect.flatMap(Effect.mapError(sql<Row>`SELECT * FROM ${t} WHERE dl_key = ${key}`, failure("get", key)), (rows) =>
      rows[0] === undefined ? Effect.succeedNone : Effect.asSome(toEntry(rows[0], "get"))
    )

  const remove: Backend["remove"] = (key) =>
    Effect.map(
      Effect.mapError(
        sql<{ readonly dl_key: string }>`DELETE FROM ${t} WHERE dl_key = ${key} RETURNING dl_key`,
        failure("discard", key)
      ),
      (rows) => rows.length > 0
    )

  const recordError: Backend["recordError"] = (key, lastError: LastErrorType, now) =>
    Effect.asVoid(
      Effect.mapError(
        sql`UPDATE ${t} SET last_error_json = ${encodeLastError(lastError)}, updated_at = ${now} WHERE dl_key = ${key}`,
        failure("replay", key)
      )
    )

  return { upsert, list, get, remove, recordError }
}
