/**
 * The whole simulation: one workload, run the idempotent way and then the naive way against a fresh fake
 * provider each, with outputs and idempotency records in one SQLite file, summed up in a `Report`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Cause, Data, Effect, Layer } from "effect"
import { existsSync } from "node:fs"
import type * as ChatCompletion from "../ChatCompletion.js"
import * as DeadLetterQueue from "../DeadLetterQueue.js"
import * as IdempotencyStore from "../IdempotencyStore.js"
import type * as Report from "./Report.js"
import * as Runner from "./Runner.js"
import * as Workload from "./Workload.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<Report.Settings, "requests"> {
  readonly requests: ReadonlyArray<ChatCompletion.ChatCompletionRequest>
  /** Where the requests came from, for the report (a path, or "generated"). */
  readonly requestsSource: string
  readonly attemptTimeout?: Runner.RunOptions["attemptTimeout"]
  readonly retry?: Runner.RunOptions["retry"]
  readonly provider?: Runner.RunOptions["provider"]
  readonly onProgress?: ((runner: Report.Runner, done: number, total: number) => Effect.Effect<void>) | undefined
}

/**
 * The simulation could not complete: the database could not be opened or written, or the provider could not
 * start.
 *
 * @since 0.1.0
 * @category errors
 */
export class SimulationError extends Data.TaggedError("SimulationError")<{
  readonly stage: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `simulation failed while ${this.stage}: ${describeCause(this.cause)}`
  }
}

/** The first line of what went wrong, without stack traces: this text ends up in a one-line CLI error. */
const describeCause = (cause: unknown): string => {
  const error = Cause.isCause(cause) ? Cause.squash(cause) : cause
  const text = error instanceof Error ? error.message : String(error)
  return text.split("\n")[0]!.trim()
}

/**
 * `--db` names a file the simulation must not reset: it is not a SQLite database, or it is one that holds tables
 * of something else (an application's own database, say). Only files the simulation created itself, marked by
 * the {@link markerTable}, or empty databases, are used.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotASimulationDatabase extends Data.TaggedError("NotASimulationDatabase")<{
  readonly path: string
  readonly reason: "NotSqlite" | "ForeignTables"
  readonly tables: ReadonlyArray<string>
}> {
  override get message(): string {
    if (this.reason === "NotSqlite") {
      return `--db ${this.path}: is not a SQLite database; pass a new file or one simulate created`
    }
    const shown = this.tables.slice(0, 3).join(", ") + (this.tables.length > 3 ? ", ..." : "")
    return (
      `--db ${this.path}: is not a simulation database (it holds ${shown} and no ${markerTable} table); ` +
      "simulate resets the tables of its database, so pass a new file or one simulate created"
    )
  }
}

/**
 * The table that marks a SQLite file as a simulation database, created in every file the simulation writes. A
 * file holding other tables without it is never reset.
 *
 * @since 0.1.0
 * @category constants
 */
export const markerTable = "effect_idempotency_simulation"

/** Tables of the idempotent path that a run starts from empty (the outputs tables are reset by the runners). */
const resetTables = ["ai_idempotency", "ai_dead_letters"]

/** Every table a simulation writes; a file holding only these (and SQLite's own) predates the marker. */
const simulationTables = new Set([
  ...resetTables,
  markerTable,
  "outputs_idempotent",
  "outputs_naive",
  "ledger_idempotent",
  "ledger_naive",
  "sqlite_sequence"
])

/** SQLite's answer when the file is not a database (SQLITE_NOTADB), or is encrypted. */
const isNotADatabase = (error: unknown): boolean => {
  const cause = (error as { readonly cause?: unknown } | null)?.cause
  const code = (cause as { readonly code?: unknown } | null)?.code
  return code === "SQLITE_NOTADB" || /file is not a database/.test(String((cause as Error | null)?.message))
}

/**
 * Checks that the simulation may reset the tables of the SQLite database in context: it is empty, carries the
 * marker table, or holds nothing but tables a simulation writes (and at least its outputs or ledger).
 */
const checkSimulationTables = (path: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const rows = yield* sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.pipe(
      Effect.catchAll(
        (error): Effect.Effect<never, NotASimulationDatabase | SimulationError> =>
          isNotADatabase(error)
            ? Effect.fail(new NotASimulationDatabase({ path, reason: "NotSqlite", tables: [] }))
            : Effect.fail(new SimulationError({ stage: `reading the tables of --db ${path}`, cause: error }))
      )
    )

    const tables = rows.map((row) => row.name)
    const foreign = tables.filter((table) => !simulationTables.has(table))
    const ownsFile =
      tables.includes(markerTable) ||
      tables.length === 0 ||
      (foreign.length === 0 && tables.some((table) => table.startsWith("outputs_") || table.startsWith("ledger_")))
    if (!ownsFile) {
      return yield* Effect.fail(new NotASimulationDatabase({ path, reason: "ForeignTables", tables: foreign }))
    }
  })

/**
 * Checks, without changing it, that `filename` may be used as the simulation's database: a missing or empty
 * file, or a SQLite database the simulation created. Fails with {@link NotASimulationDatabase} otherwise.
 *
 * @since 0.1.0
 * @category running
 */
export const checkDatabase = (filename: string): Effect.Effect<void, NotASimulationDatabase | SimulationError> =>
  Effect.scoped(
    Effect.gen(function* () {
      if (!(yield* Effect.sync(() => existsSync(filename)))) {
        return
      }

      const context = yield* Layer.build(SqliteClient.layer({ filename, readonly: true, disableWAL: true })).pipe(
        Effect.catchAllCause((cause) => Effect.fail(new SimulationError({ stage: `opening --db ${filename}`, cause })))
      )

      yield* Effect.provide(checkSimulationTables(filename), context)
    })
  ).pipe(Effect.withSpan("Simulation.checkDatabase"))

const openDatabase = (filename: string) =>
  Layer.build(SqliteClient.layer({ filename })).pipe(
    Effect.catchAllCause((cause) => Effect.fail(new SimulationError({ stage: `opening --db ${filename}`, cause }))),
    Effect.flatMap((context) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient

        yield* checkSimulationTables(filename)

        yield* sql`CREATE TABLE IF NOT EXISTS ${sql(markerTable)} (note TEXT NOT NULL)`.pipe(
          Effect.zipRight(sql`DELETE FROM ${sql(markerTable)}`),
          Effect.zipRight(
            sql`INSERT INTO ${sql(markerTable)} ${sql.insert({
              note: "written by effect-idempotency simulate; its tables are reset on every run"
            })}`
          ),
          Effect.mapError((cause) => new SimulationError({ stage: `marking --db ${filename}`, cause }))
        )

        for (const table of resetTables) {
          yield* sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(
            Effect.mapError((cause) => new SimulationError({ stage: `resetting tables in --db ${filename}`, cause }))
          )
        }

        return context
      }).pipe(Effect.provide(context))
    )
  )

const squash = (stage: string) => (cause: unknown) => new SimulationError({ stage, cause })

/**
 * Runs both ways and reports them.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<Report.Report, SimulationError | NotASimulationDatabase> =>
  Effect.scoped(
    Effect.gen(function* () {
      const actions = Workload.actions(options.actions, options.requests)
      const deliveries = Workload.deliveries(actions, { redeliveryRate: options.redeliveryRate, seed: options.seed })
      const runOptions = (runner: Report.Runner): Runner.RunOptions => ({
        deliveries,
        concurrency: options.concurrency,
        faultRate: options.faultRate,
        seed: options.seed,
        costPerCall: options.costPerCall,
        actionsPerMonth: options.actionsPerMonth,
        attemptTimeout: options.attemptTimeout,
        retry: options.retry,
        provider: options.provider,
        onProgress:
          options.onProgress === undefined
            ? undefined
            : (done: number, total: number) => options.onProgress!(runner, done, total)
      })

      yield* checkDatabase(options.db)

      const sqlContext = yield* openDatabase(options.db)

      const storeContext = yield* Layer.build(
        Layer.merge(IdempotencyStore.layerSql(), DeadLetterQueue.layerSql())
      ).pipe(
        Effect.provide(sqlContext),
        Effect.mapError(squash(`creating the idempotency and dead-letter tables in --db ${options.db}`))
      )

      const idempotent = yield* Runner.runIdempotent(runOptions("idempotent")).pipe(
        Effect.provide(storeContext),
        Effect.provide(sqlContext),
        Effect.mapError(squash("running the idempotent workload"))
      )

      const naive = yield* Runner.runNaive(runOptions("naive")).pipe(
        Effect.provide(sqlContext),
        Effect.mapError(squash("running the naive workload"))
      )

      return {
        settings: {
          actions: options.actions,
          concurrency: options.concurrency,
          faultRate: options.faultRate,
          redeliveryRate: options.redeliveryRate,
          seed: options.seed,
          db: options.db,
          requests: options.requestsSource,
          costPerCall: options.costPerCall,
          actionsPerMonth: options.actionsPerMonth
        },
        idempotent,
        naive
      }
    })
  ).pipe(Effect.withSpan("Simulation.run"))
