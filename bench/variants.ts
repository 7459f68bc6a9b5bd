/**
 * The six things the benchmark times, all on SQLite files with the same table:
 *
 * - fresh action (a new key each op): (a) `Idempotency.execute`, (b) the same claim + complete written by hand
 *   with `@effect/sql`, (c) the same two statements as raw better-sqlite3 prepared statements;
 * - replay of a stored key: (d) `Idempotency.execute`, (e) one `@effect/sql` primary-key SELECT of the row,
 *   (f) the same SELECT as a raw better-sqlite3 prepared statement.
 *
 * The hand-written versions do what a careful user would write without the library: hash the request, claim
 * the key with `INSERT ... ON CONFLICT DO NOTHING RETURNING`, run the action, store its JSON with an UPDATE.
 * They skip what the library adds on top (key validation, canonical fingerprint, Schema encoding, owner
 * fencing and leases, spans and metrics), which is exactly what the ratios price.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type BetterSqlite3 from "better-sqlite3"
import { Clock, Effect, Schema } from "effect"
import { createHash } from "node:crypto"
import * as Idempotency from "../src/Idempotency.js"
import type { IdempotencyStore } from "../src/IdempotencyStore.js"

/** The table `IdempotencyStore.layerSql()` creates; the hand-written variants get a copy of its DDL. */
export const libraryTable = "ai_idempotency"
export const handTable = "hand_idempotency"

/** A small chat request and answer, as an AI call would see them. */
export const request = {
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Say hello in five words." }],
  temperature: 0
}

export const Answer = Schema.Struct({ id: Schema.String, content: Schema.String, tokens: Schema.Number })

export const answer: typeof Answer.Type = { id: "chatcmpl-bench", content: "Hello there, how are you?", tokens: 7 }

/** The action of (a), (b), (d): done at once, so the figures show the idempotency machinery alone. */
const action = Effect.succeed(answer)

/**
 * The action of (g) and (h): the same answer, delivered on a later microtask as any I/O would be, so that the
 * figures also show a call whose fiber suspends in the middle of its claim, as every real model call does.
 */
const asyncAction = Effect.promise(() => Promise.resolve(answer))

const ttlMillis = 24 * 60 * 60 * 1000
const leaseMillis = 5 * 60 * 1000

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

export type VariantId = "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h"

export type Op =
  | { readonly _tag: "Effect"; readonly run: (key: string) => Effect.Effect<unknown, unknown, IdempotencyStore> }
  | { readonly _tag: "Sync"; readonly run: (key: string) => unknown }

export interface Variant {
  readonly id: VariantId
  readonly label: string
  /** `fresh`: a key never used before on every op; `replay`: one of the keys stored during setup. */
  readonly keys: "fresh" | "replay"
  readonly op: Op
}

/** (a), (d) and (g): the library call. */
export const execute = (key: string, work: Effect.Effect<typeof Answer.Type> = action) =>
  Idempotency.execute(work, { key, request, success: Answer })

/** (b): what an Effect user would write with `@effect/sql` instead of the library. */
const handWritten = (sql: SqlClient.SqlClient, work: Effect.Effect<typeof Answer.Type>) => (key: string) =>
  Effect.gen(function* () {
    const requestHash = sha256(JSON.stringify(request))
    const now = yield* Clock.currentTimeMillis

    const claimed = yield* sql<{ readonly idem_key: string }>`
      INSERT INTO ${sql(handTable)} (idem_key, request_hash, status, lease_expires_at, attempts, created_at,
        updated_at, expires_at)
      VALUES (${key}, ${requestHash}, 'processing', ${now + leaseMillis}, 1, ${now}, ${now}, ${now + ttlMillis})
      ON CONFLICT (idem_key) DO NOTHING RETURNING idem_key`
    if (claimed.length === 0) {
      const rows = yield* sql<{ readonly response_json: string | null }>`
        SELECT response_json FROM ${sql(handTable)} WHERE idem_key = ${key}`
      return JSON.parse(rows[0]?.response_json ?? "null") as unknown
    }

    const value = yield* work

    const done = yield* Clock.currentTimeMillis
    yield* sql`
      UPDATE ${sql(handTable)} SET status = 'succeeded', response_json = ${JSON.stringify(value)}, updated_at = ${done}
      WHERE idem_key = ${key}`
    return value
  })

/** The raw better-sqlite3 statements of (c) and (f), prepared once. */
export const rawStatements = (db: BetterSqlite3.Database) => {
  const claim = db.prepare<[string, string, number, number, number, number], { idem_key: string }>(
    `INSERT INTO ${libraryTable} (idem_key, request_hash, status, lease_expires_at, attempts, created_at, ` +
      `updated_at, expires_at) VALUES (?, ?, 'processing', ?, 1, ?, ?, ?) ` +
      `ON CONFLICT (idem_key) DO NOTHING RETURNING idem_key`
  )
  const select = db.prepare<[string], { response_json: string | null }>(
    `SELECT response_json FROM ${libraryTable} WHERE idem_key = ?`
  )
  const complete = db.prepare<[string, number, string]>(
    `UPDATE ${libraryTable} SET status = 'succeeded', response_json = ?, updated_at = ? WHERE idem_key = ?`
  )
  const row = db.prepare<[string], unknown>(`SELECT * FROM ${libraryTable} WHERE idem_key = ?`)

  /** (c): claim, run, store; the same steps as (b) without Effect. */
  const claimAndComplete = (key: string): unknown => {
    const requestHash = sha256(JSON.stringify(request))
    const now = Date.now()
    if (claim.get(key, requestHash, now + leaseMillis, now, now, now + ttlMillis) === undefined) {
      return JSON.parse(select.get(key)?.response_json ?? "null") as unknown
    }
    const value = answer
    complete.run(JSON.stringify(value), Date.now(), key)
    return value
  }

  return { claimAndComplete, selectRow: (key: string): unknown => row.get(key) }
}

export const variants = (sql: SqlClient.SqlClient, raw: ReturnType<typeof rawStatements>): ReadonlyArray<Variant> => [
  {
    id: "a",
    label: "Idempotency.execute, fresh key",
    keys: "fresh",
    op: { _tag: "Effect", run: (key) => execute(key) }
  },
  {
    id: "b",
    label: "hand-written @effect/sql claim + complete",
    keys: "fresh",
    op: { _tag: "Effect", run: handWritten(sql, action) }
  },
  {
    id: "c",
    label: "raw better-sqlite3 claim + complete",
    keys: "fresh",
    op: { _tag: "Sync", run: raw.claimAndComplete }
  },
  {
    id: "d",
    label: "Idempotency.execute, replay",
    keys: "replay",
    op: { _tag: "Effect", run: (key) => execute(key) }
  },
  {
    id: "e",
    label: "@effect/sql primary-key SELECT",
    keys: "replay",
    op: { _tag: "Effect", run: (key) => sql`SELECT * FROM ${sql(libraryTable)} WHERE idem_key = ${key}` }
  },
  {
    id: "f",
    label: "raw better-sqlite3 primary-key SELECT",
    keys: "replay",
    op: { _tag: "Sync", run: raw.selectRow }
  },
  {
    id: "g",
    label: "Idempotency.execute, fresh key, asynchronous action",
    keys: "fresh",
    op: { _tag: "Effect", run: (key) => execute(key, asyncAction) }
  },
  {
    id: "h",
    label: "hand-written @effect/sql, asynchronous action",
    keys: "fresh",
    op: { _tag: "Effect", run: handWritten(sql, asyncAction) }
  }
]

/** Gives the hand-written table (and the raw file's table) exactly the DDL `layerSql` used for its own. */
export const copySchema = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const rows = yield* sql<{ readonly sql: string }>`
      SELECT sql FROM sqlite_master WHERE tbl_name = ${libraryTable} AND sql IS NOT NULL ORDER BY type DESC`
    const ddl = rows.map((row) => row.sql)

    yield* Effect.forEach(ddl, (text) => sql.unsafe(text.replaceAll(libraryTable, handTable)), { discard: true })
    return ddl
  })

/** Stores the keys the replay variants read: through the library in the SQL store, by hand in the raw file. */
export const seed = (keys: ReadonlyArray<string>, raw: ReturnType<typeof rawStatements>) =>
  Effect.forEach(
    keys,
    (key) =>
      Effect.zipRight(
        execute(key),
        Effect.sync(() => raw.claimAndComplete(key))
      ),
    { discard: true }
  )
