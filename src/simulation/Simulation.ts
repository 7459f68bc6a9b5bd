/**
 * The whole simulation: one workload, run the idempotent way and then the naive way against a fresh fake
 * provider each, with outputs and idempotency records in one SQLite file, summed up in a `Report`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Cause, Data, Effect, Layer } from "effect"
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
export interface Options {
  readonly actions: number
  readonly concurrency: number
  readonly faultRate: number
  readonly redeliveryRate: number
  readonly seed: number
  /** SQLite file; the simulation's tables in it are reset at the start. */
  readonly db: string
  readonly requests: ReadonlyArray<ChatCompletion.ChatCompletionRequest>
  /** Where the requests came from, for the report (a path, or "generated"). */
  readonly requestsSource: string
  readonly costPerCall: number
  readonly actionsPerMonth: number
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

/** Tables of the idempotent path that a run starts from empty (the outputs tables are reset by the runners). */
const resetTables = ["ai_idempotency", "ai_dead_letters"]

const openDatabase = (filename: string) =>
  Layer.build(SqliteClient.layer({ filename })).pipe(
    Effect.catchAllCause((cause) => Effect.fail(new SimulationError({ stage: `opening --db ${filename}`, cause }))),
    Effect.flatMap((context) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient

        for (const table of resetTables) {
          yield* sql`DROP TABLE IF EXISTS ${sql(table)}`
        }

        return context
      }).pipe(
        Effect.provide(context),
        Effect.mapError((cause) => new SimulationError({ stage: `resetting tables in --db ${filename}`, cause }))
      )
    )
  )

const squash = (stage: string) => (cause: unknown) => new SimulationError({ stage, cause })

/**
 * Runs both ways and reports them.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<Report.Report, SimulationError> =>
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
