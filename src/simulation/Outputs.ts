/**
 * The outputs tables: where each runner writes the answers it delivered, one row per write. The tables have
 * no unique constraint on the action, on purpose: a duplicate write must show up as a second row, not be
 * hidden by the schema.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type * as ChatCompletion from "../ChatCompletion.js"
import type { Runner } from "./Report.js"

/**
 * The outputs table of a runner: `outputs_idempotent` or `outputs_naive`.
 *
 * @since 0.1.0
 * @category constants
 */
export const table = (runner: Runner): string => `outputs_${runner}`

/**
 * Drops and recreates the runner's outputs table, so that a run never counts an earlier run's rows.
 *
 * @since 0.1.0
 * @category schema
 */
export const reset = (runner: Runner): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const name = sql(table(runner))

    yield* sql`DROP TABLE IF EXISTS ${name}`

    yield* sql`CREATE TABLE ${name} (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      action_id TEXT NOT NULL,
      completion_id TEXT NOT NULL,
      content TEXT,
      created_at INTEGER NOT NULL
    )`
  })

/**
 * Writes one delivered answer.
 *
 * @since 0.1.0
 * @category writes
 */
export const insert = (
  runner: Runner,
  row: { readonly actionId: string; readonly completion: ChatCompletion.ChatCompletion; readonly now: number }
): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    yield* sql`INSERT INTO ${sql(table(runner))} ${sql.insert({
      action_id: row.actionId,
      completion_id: row.completion.id,
      content: row.completion.choices[0]?.message.content ?? null,
      created_at: row.now
    })}`
  })

/**
 * Row counts per action.
 *
 * @since 0.1.0
 * @category reads
 */
export const rowsPerAction = (runner: Runner): Effect.Effect<Map<string, number>, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const rows = yield* sql<{ readonly action_id: string; readonly n: number }>`
      SELECT action_id, COUNT(*) AS n FROM ${sql(table(runner))} GROUP BY action_id`

    return new Map(rows.map((row) => [row.action_id, Number(row.n)]))
  })
