/**
 * The provider's billing ledger, copied into the run's SQLite file at the end of each run (`ledger_idempotent`,
 * `ledger_naive`), so that every figure of the report can be checked with SQL against the same file as the
 * outputs.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { LedgerEntry } from "./Provider.js"
import type { Runner } from "./Report.js"

/**
 * The ledger table of a runner.
 *
 * @since 0.1.0
 * @category constants
 */
export const table = (runner: Runner): string => `ledger_${runner}`

const transactionally = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))

/** Rows per INSERT statement: well below SQLite's limit of bound parameters. */
const batchSize = 100

/**
 * Replaces the runner's ledger table with `entries`.
 *
 * @since 0.1.0
 * @category writes
 */
export const save = (
  runner: Runner,
  entries: ReadonlyArray<LedgerEntry>
): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const name = sql(table(runner))

    yield* sql`DROP TABLE IF EXISTS ${name}`

    yield* sql`CREATE TABLE ${name} (
      seq INTEGER PRIMARY KEY,
      action_id TEXT,
      idem_key TEXT,
      completion_id TEXT NOT NULL,
      billed_at INTEGER NOT NULL
    )`

    for (let i = 0; i < entries.length; i += batchSize) {
      const rows = entries.slice(i, i + batchSize).map((entry) => ({
        seq: entry.seq,
        action_id: entry.action,
        idem_key: entry.idempotencyKey,
        completion_id: entry.completionId,
        billed_at: entry.at
      }))
      yield* sql`INSERT INTO ${name} ${sql.insert(rows)}`
    }
  }).pipe(transactionally)

/**
 * Billed executions per action, read back from the table.
 *
 * @since 0.1.0
 * @category reads
 */
export const executionsPerAction = (
  runner: Runner
): Effect.Effect<Map<string, number>, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const rows = yield* sql<{ readonly action_id: string | null; readonly n: number }>`
      SELECT action_id, COUNT(*) AS n FROM ${sql(table(runner))} GROUP BY action_id`

    return new Map(rows.map((row) => [row.action_id ?? "", Number(row.n)]))
  })
