/**
 * The SQL store over `@effect/sql`, for SQLite and PostgreSQL. Atomicity comes from the database: the claim is
 * one `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`, and every owner's write is one `UPDATE` or
 * `DELETE` fenced by `owner_token`, so no transaction and no lock is needed on the hot path.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type {
  ClaimRequest,
  ClaimResult,
  IdempotencyRecord,
  IdempotencyStoreShape,
  OwnedWrite,
  Status
} from "../IdempotencyStore.js"
import { claimedRecord, IdempotencyStoreError, LeaseLost } from "../IdempotencyStore.js"
import * as Text from "./storeSqlText.js"

type Millis = number | string | bigint

interface Row {
  readonly idem_key: string
  readonly request_hash: string
  readonly status: string
  readonly response_json: string | null
  readonly error_text: string | null
  readonly owner_token: string | null
  readonly lease_expires_at: Millis
  readonly attempts: Millis
  readonly created_at: Millis
  readonly updated_at: Millis
  readonly expires_at: Millis
}

/** What a claim returns. */
interface ClaimedRow {
  readonly attempts: Millis
  readonly created_at: Millis
}

/** How many times a claim re-reads a record that changed under it before giving up. */
const claimRounds = 3

const isStatus = (status: string): status is Status =>
  status === "processing" || status === "succeeded" || status === "failed"

const storeError = (operation: string, key: string | undefined) => (cause: unknown) =>
  key === undefined
    ? new IdempotencyStoreError({ operation, cause })
    : new IdempotencyStoreError({ operation, key, cause })

/** PostgreSQL hands BIGINT back as a string and SQLite may hand back a bigint: both become numbers. */
const recordOf = (row: Row, status: Status): IdempotencyRecord => ({
  key: row.idem_key,
  requestHash: row.request_hash,
  status,
  response: Option.fromNullable(row.response_json),
  error: Option.fromNullable(row.error_text),
  owner: Option.fromNullable(row.owner_token),
  leaseExpiresAt: Number(row.lease_expires_at),
  attempts: Number(row.attempts),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
  expiresAt: Number(row.expires_at)
})

const unknownStatus = (row: Row, operation: string): Effect.Effect<never, IdempotencyStoreError> =>
  Effect.fail(
    storeError(operation, row.idem_key)(new Error(`the record has an unknown status ${JSON.stringify(row.status)}`))
  )

const toRecord = (row: Row, operation: string): Effect.Effect<IdempotencyRecord, IdempotencyStoreError> =>
  isStatus(row.status) ? Effect.succeed(recordOf(row, row.status)) : unknownStatus(row, operation)

const affectedRows = (raw: unknown): number => {
  const result = raw as { readonly changes?: number | bigint; readonly rowCount?: number | null }
  return Number(result.changes ?? result.rowCount ?? 0)
}

const createTable = (sql: SqlClient.SqlClient, table: string, dialect: Text.Dialect) => {
  const create = Effect.forEach(Text.createTable(table, dialect), (text) => sql.unsafe(text), { discard: true })
  if (dialect.name === "sqlite") return create
  const lock = sql.unsafe("SELECT pg_advisory_xact_lock(hashtext($1))", [table])
  return sql.withTransaction(Effect.zipRight(lock, create))
}

const unsupportedDialect = new SqlError({
  message: "IdempotencyStore.layerSql supports SQLite and PostgreSQL only; write a custom store for other databases"
})

/** Builds the store over the `SqlClient` in context, creating `table` if it is absent. */
export const make = (table: string): Effect.Effect<IdempotencyStoreShape, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = sql.onDialectOrElse({ sqlite: () => Text.sqlite, pg: () => Text.pg, orElse: () => undefined })
    if (dialect === undefined) return yield* unsupportedDialect

    yield* createTable(sql, table, dialect)

    return makeShape(sql, Text.statements(table, dialect))
  })

const makeShape = (sql: SqlClient.SqlClient, text: Text.Statements): IdempotencyStoreShape => {
  /** The record a claim wrote: the request's values, with the `attempts` and `created_at` it came back with. */
  const claimed = (row: ClaimedRow, request: ClaimRequest): ClaimResult => {
    const attempts = Number(row.attempts)
    const record = claimedRecord(request, attempts, Number(row.created_at))
    return { _tag: "Claimed", record, takeover: attempts > 1 }
  }

  const existing = (request: ClaimRequest, rounds: number) =>
    Effect.flatMap(
      Effect.mapError(sql.unsafe<Row>(text.select, [request.key]), storeError("claim", request.key)),
      (rows): Effect.Effect<ClaimResult, IdempotencyStoreError> => {
        const row = rows[0]
        if (row !== undefined && Number(row.expires_at) > request.now) {
          return Effect.map(toRecord(row, "claim"), (record) => ({ _tag: "Existing", record }))
        }
        if (rounds > 1) return claim(request, rounds - 1)
        return Effect.fail(storeError("claim", request.key)(new Error("the record kept changing while being claimed")))
      }
    )

  const claim = (request: ClaimRequest, rounds: number): Effect.Effect<ClaimResult, IdempotencyStoreError> =>
    Effect.matchEffect(
      sql.unsafe<ClaimedRow>(text.claim, [
        request.key,
        request.requestHash,
        request.owner,
        request.leaseExpiresAt,
        request.now,
        request.now,
        request.expiresAt
      ]),
      {
        onFailure: (cause) => Effect.fail(storeError("claim", request.key)(cause)),
        onSuccess: (rows) => (rows.length > 0 ? Effect.succeed(claimed(rows[0]!, request)) : existing(request, rounds))
      }
    )

  /** Runs an owner's write; `params` end with the key and the owner token, which fence it. */
  const ownedWrite = (statement: string, operation: string, write: OwnedWrite, params: ReadonlyArray<unknown>) =>
    Effect.matchEffect(sql.unsafe<{ readonly idem_key: string }>(statement, params), {
      onFailure: (cause) => Effect.fail(storeError(operation, write.key)(cause)),
      onSuccess: (rows) =>
        rows.length > 0 ? Effect.void : Effect.fail(new LeaseLost({ key: write.key, owner: write.owner, operation }))
    })

  return {
    claim: (request) => claim(request, claimRounds),
    complete: (write) =>
      ownedWrite(text.complete, "complete", write, [write.response, write.now, write.key, write.owner]),
    fail: (write) => ownedWrite(text.fail, "fail", write, [write.error, write.now, write.key, write.owner]),
    heartbeat: (write) =>
      ownedWrite(text.heartbeat, "heartbeat", write, [write.leaseExpiresAt, write.now, write.key, write.owner]),
    release: (write) => ownedWrite(text.release, "release", write, [write.key, write.owner]),
    // Every call reads first, a replay only reads: one step after the statement, straight to the answer.
    get: (key, now) =>
      Effect.matchEffect(sql.unsafe<Row>(text.get, [key, now]), {
        onFailure: (cause) => Effect.fail(storeError("get", key)(cause)),
        onSuccess: (rows) => {
          const row = rows[0]
          if (row === undefined) return Effect.succeedNone
          return isStatus(row.status)
            ? Effect.succeed(Option.some(recordOf(row, row.status)))
            : unknownStatus(row, "get")
        }
      }),
    purgeExpired: (now) =>
      sql
        .unsafe(text.purge, [now])
        .raw.pipe(Effect.map(affectedRows), Effect.mapError(storeError("purgeExpired", undefined)))
  }
}
