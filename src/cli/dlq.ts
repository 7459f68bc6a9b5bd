/**
 * `effect-idempotency dlq`: look at the dead-letter queue in a SQLite file and act on it.
 *
 * - `dlq list [--db FILE] [--json] [--limit N]`: the entries, oldest first.
 * - `dlq replay KEY [--db FILE]`: re-runs the entry through the rerun function the CLI was built with (the
 *   main CLI passes one that goes through `Idempotency.execute` with the entry's key, so a replay can never
 *   bill twice); a successful replay removes the entry.
 * - `dlq discard KEY [--db FILE]`: removes the entry without re-running it.
 *
 * The queue is the `ai_dead_letters` table of `--db` (default `.sim/simulate.db`, the file `simulate` writes). A
 * missing file, a file that is not a SQLite database, or one without that table is an error: the file is never
 * turned into a queue, and its journal mode is left as it is.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Data, Effect, Option } from "effect"
import * as DeadLetterQueue from "../DeadLetterQueue.js"
import { Output } from "./Output.js"

/**
 * The SQLite file the CLI uses when `--db` is not given: the one `simulate` writes, under `.sim/` in the working
 * directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDb = ".sim/simulate.db"

/**
 * `--db` names a file that does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseNotFound extends Data.TaggedError("DatabaseNotFound")<{ readonly path: string }> {
  override get message(): string {
    return `--db ${this.path}: no such database file; pass the file the application writes its dead letters to`
  }
}

/**
 * `--db` names a file that is not a SQLite database.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotADatabase extends Data.TaggedError("NotADatabase")<{ readonly path: string }> {
  override get message(): string {
    return `--db ${this.path}: is not a SQLite database; pass the file the application writes its dead letters to`
  }
}

/**
 * `--db` names a SQLite database without the dead-letter table. The dlq commands never create it: reading a
 * queue must not change the file.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoDeadLetterTable extends Data.TaggedError("NoDeadLetterTable")<{
  readonly path: string
  readonly table: string
}> {
  override get message(): string {
    return (
      `no dead-letter table in ${this.path} (${this.table}); pass the file the application writes its dead ` +
      "letters to"
    )
  }
}

/**
 * `dlq replay` was asked for, but this command was built without a way to re-run entries.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplayUnavailable extends Data.TaggedError("ReplayUnavailable")<{ readonly key: string }> {
  override get message(): string {
    return (
      `cannot replay "${this.key}": this dlq command was built without a rerun function; ` +
      "use the effect-idempotency binary, or build the command with Dlq.makeCommand({ rerun })"
    )
  }
}

/**
 * How `dlq replay` re-runs an entry. It runs with the `SqlClient` of `--db` in context (so it can open the
 * idempotency store in the same file) and should send `entry.request` through `Idempotency.execute` with
 * `entry.key`, so that a request the provider did run is not billed again.
 *
 * @since 0.1.0
 * @category models
 */
export type Rerun<R> = (
  entry: DeadLetterQueue.DeadLetter,
  context: { readonly db: string }
) => Effect.Effect<unknown, unknown, R>

const db = Options.file("db").pipe(
  Options.withDefault(defaultDb),
  Options.withDescription(`SQLite file holding the ai_dead_letters table (default ${defaultDb}).`)
)

const key = Args.text({ name: "key" }).pipe(Args.withDescription("Idempotency key of the entry."))

const withQueue = <A, E, R>(path: string, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem

    const exists = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))
    if (!exists) {
      return yield* Effect.fail(new DatabaseNotFound({ path }))
    }

    const client = SqliteClient.layer({ filename: path, disableWAL: true })
    return yield* Effect.provide(
      Effect.zipRight(checkQueueTable(path), Effect.provide(body, DeadLetterQueue.layerSql())),
      client
    ).pipe(
      Effect.catchAllDefect((defect) =>
        isNotADatabase(defect) ? Effect.fail(new NotADatabase({ path })) : Effect.die(defect)
      )
    )
  })

/** The table `DeadLetterQueue.layerSql()` keeps its entries in. */
const queueTable = "ai_dead_letters"

/** SQLite's answer when the file is not a database (SQLITE_NOTADB), directly or as the cause of a `SqlError`. */
const isNotADatabase = (error: unknown): boolean => {
  for (let current = error, depth = 0; current !== null && typeof current === "object" && depth < 3; depth++) {
    if ((current as { readonly code?: unknown }).code === "SQLITE_NOTADB") {
      return true
    }
    current = (current as { readonly cause?: unknown }).cause
  }
  return false
}

/**
 * Checks, before the queue's layer would create it, that the file is a SQLite database holding the dead-letter
 * table: the dlq commands read and change an existing queue and never turn a file into one.
 */
const checkQueueTable = (path: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const rows = yield* sql<{ readonly name: string }>`
      SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${queueTable}`.pipe(
      Effect.catchAll(
        (error): Effect.Effect<never, NotADatabase | SqlError> =>
          isNotADatabase(error) ? Effect.fail(new NotADatabase({ path })) : Effect.fail(error)
      )
    )

    if (rows.length === 0) {
      return yield* Effect.fail(new NoDeadLetterTable({ path, table: queueTable }))
    }
  })

const isoTime = (millis: number): string => new Date(millis).toISOString()

const formatEntry = (entry: DeadLetterQueue.DeadLetter): string => {
  const status = Option.match(entry.lastError.status, { onNone: () => "-", onSome: String })
  return [
    entry.key,
    `attempts=${entry.attempts}`,
    `error=${entry.lastError.tag}`,
    `status=${status}`,
    `since=${isoTime(entry.deadLetteredAt)}`,
    `updated=${isoTime(entry.updatedAt)}`,
    `message=${JSON.stringify(entry.lastError.message)}`
  ].join("  ")
}

const toJson = (entry: DeadLetterQueue.DeadLetter) => ({
  key: entry.key,
  request: entry.request,
  lastError: { ...entry.lastError, status: Option.getOrNull(entry.lastError.status) },
  attempts: entry.attempts,
  deadLetteredAt: isoTime(entry.deadLetteredAt),
  updatedAt: isoTime(entry.updatedAt)
})

const list = Command.make(
  "list",
  {
    db,
    json: Options.boolean("json").pipe(Options.withDescription("Print the entries as a JSON array.")),
    limit: Options.integer("limit").pipe(Options.optional, Options.withDescription("Show at most this many entries."))
  },
  (options) =>
    withQueue(
      options.db,
      Effect.gen(function* () {
        const output = yield* Output

        const entries = yield* DeadLetterQueue.list({ limit: Option.getOrUndefined(options.limit) })

        if (options.json) {
          return yield* output.stdout(`${JSON.stringify(entries.map(toJson), null, 2)}\n`)
        }
        if (entries.length === 0) {
          return yield* output.stdout(`No dead letters in ${options.db}.\n`)
        }
        yield* output.stdout(entries.map((entry) => `${formatEntry(entry)}\n`).join(""))
      })
    )
).pipe(Command.withDescription("List the dead letters, oldest first."))

const discard = Command.make("discard", { db, key }, (options) =>
  withQueue(
    options.db,
    Effect.gen(function* () {
      const output = yield* Output

      yield* DeadLetterQueue.discard(options.key)

      yield* output.stdout(`Discarded ${options.key}; it will not be replayed.\n`)
    })
  )
).pipe(Command.withDescription("Remove a dead letter without re-running it."))

const replay = <R>(rerun: Rerun<R> | undefined, check: Rerun<R> | undefined) =>
  Command.make("replay", { db, key }, (options) =>
    withQueue(
      options.db,
      Effect.gen(function* () {
        const output = yield* Output

        if (rerun === undefined) {
          return yield* Effect.fail(new ReplayUnavailable({ key: options.key }))
        }

        const entry = yield* DeadLetterQueue.get(options.key)
        if (check !== undefined && Option.isSome(entry)) {
          yield* check(entry.value, { db: options.db })
        }

        yield* DeadLetterQueue.replay(options.key, (entry) => rerun(entry, { db: options.db }))

        yield* output.stdout(`Replayed ${options.key}: it succeeded and was removed from the queue.\n`)
      })
    )
  ).pipe(Command.withDescription("Re-run a dead letter through the idempotent path; remove it when it succeeds."))

/**
 * Builds the `dlq` command. `rerun` says how `dlq replay` re-runs an entry; without it, `replay` fails with
 * {@link ReplayUnavailable}. `check`, when given, runs first: a failure there (the provider is not configured,
 * say) is reported without touching the entry, whereas a failure of `rerun` is recorded as its last error.
 *
 * @since 0.1.0
 * @category commands
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Dlq from "effect-idempotency/cli/dlq"
 *
 * const dlq = Dlq.makeCommand({
 *   rerun: (entry, { db }) => Effect.logInfo(`would re-send ${entry.key} using ${db}`)
 * })
 * ```
 */
export const makeCommand = <R = never>(
  options: { readonly rerun?: Rerun<R> | undefined; readonly check?: Rerun<R> | undefined } = {}
) =>
  Command.make("dlq").pipe(
    Command.withDescription("Inspect, replay or discard dead-lettered AI calls."),
    Command.withSubcommands([list, replay(options.rerun, options.check), discard])
  )

/**
 * The `dlq` command without a rerun function: `list` and `discard` work, `replay` explains what is missing.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = makeCommand()
