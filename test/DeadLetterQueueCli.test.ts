import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Effect, Exit, Layer, Option, Ref } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as CallError from "../src/CallError.js"
import * as DeadLetterQueue from "../src/DeadLetterQueue.js"
import * as Dlq from "../src/cli/dlq.js"
import * as Output from "../src/cli/Output.js"

const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }

/** A SQLite file in a new temporary directory holding two dead letters; removed afterwards. */
const seededDb = Effect.acquireRelease(
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "effect-idempotency-dlq-cli-"))
    const db = join(dir, "app.db")

    yield* Effect.provide(
      Effect.gen(function* () {
        yield* DeadLetterQueue.add({
          key: "order-41",
          request,
          error: CallError.fromResponse({ status: 503, body: "upstream down" }),
          attempts: 4
        })
        yield* DeadLetterQueue.add({
          key: "order-42",
          request,
          error: CallError.fromResponse({ status: 429 }),
          attempts: 2
        })
      }),
      DeadLetterQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: db })))
    )

    return { dir, db }
  }),
  ({ dir }) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const keysIn = (db: string) =>
  Effect.provide(
    Effect.map(DeadLetterQueue.list(), (entries) => entries.map((entry) => entry.key)),
    DeadLetterQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: db })))
  )

const runDlq = <R>(command: ReturnType<typeof Dlq.makeCommand<R>>, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const capture = Output.makeCapture()
    const exit = yield* Command.run(Command.make("app").pipe(Command.withSubcommands([command])), {
      name: "app",
      version: "0.0.0"
    })(["node", "app", "dlq", ...args]).pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Layer.succeed(Output.Output, capture))),
      Effect.exit
    )
    return { exit, out: capture.out.join("") }
  })

const tagOf = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: () => "defect",
        onSome: (error) => (error as { readonly _tag: string })._tag
      })
  })

describe("dlq command", () => {
  it.scoped("list prints one line per entry, oldest first, and --json the whole entries", () =>
    Effect.gen(function* () {
      const { db } = yield* seededDb

      const text = yield* runDlq(Dlq.command, ["list", "--db", db])
      const json = yield* runDlq(Dlq.command, ["list", "--db", db, "--json", "--limit", "1"])

      assertTrue(Exit.isSuccess(text.exit))
      const lines = text.out.trim().split("\n")
      deepStrictEqual(
        lines.map((line) => line.split("  ").slice(0, 4)),
        [
          ["order-41", "attempts=4", "error=ServerError", "status=503"],
          ["order-42", "attempts=2", "error=RateLimited", "status=429"]
        ]
      )
      const parsed = JSON.parse(json.out) as ReadonlyArray<{ key: string; request: unknown; lastError: unknown }>
      deepStrictEqual(
        parsed.map((entry) => [entry.key, entry.request]),
        [["order-41", request]]
      )
    })
  )

  it.scoped("discard removes the entry", () =>
    Effect.gen(function* () {
      const { db } = yield* seededDb

      const result = yield* runDlq(Dlq.command, ["discard", "order-41", "--db", db])

      assertTrue(Exit.isSuccess(result.exit))
      strictEqual(result.out, "Discarded order-41; it will not be replayed.\n")
      deepStrictEqual(yield* keysIn(db), ["order-42"])
    })
  )

  it.scoped("replay hands the entry and --db to the rerun function and removes the entry when it succeeds", () =>
    Effect.gen(function* () {
      const { db } = yield* seededDb
      const reruns = yield* Ref.make<ReadonlyArray<readonly [string, unknown, string]>>([])
      const command = Dlq.makeCommand({
        rerun: (entry, context) =>
          Ref.update(reruns, (all) => [...all, [entry.key, entry.request, context.db] as const])
      })

      const result = yield* runDlq(command, ["replay", "order-42", "--db", db])

      assertTrue(Exit.isSuccess(result.exit))
      deepStrictEqual(yield* Ref.get(reruns), [["order-42", request, db]])
      deepStrictEqual(yield* keysIn(db), ["order-41"])
    })
  )

  it.scoped("a failed replay keeps the entry with the new error", () =>
    Effect.gen(function* () {
      const { db } = yield* seededDb
      const command = Dlq.makeCommand({ rerun: () => Effect.fail(CallError.fromResponse({ status: 401 })) })

      const result = yield* runDlq(command, ["replay", "order-42", "--db", db])

      assertTrue(Exit.isFailure(result.exit))
      const entry = yield* Effect.provide(
        DeadLetterQueue.get("order-42"),
        DeadLetterQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: db })))
      )
      deepStrictEqual(
        Option.map(entry, (e) => e.lastError.tag),
        Option.some("Unauthorized")
      )
    })
  )

  it.scoped("a failed check leaves the entry and its last error as they were, and does not rerun", () =>
    Effect.gen(function* () {
      const { db } = yield* seededDb
      const reruns = yield* Ref.make(0)
      const command = Dlq.makeCommand({
        rerun: () => Ref.update(reruns, (n) => n + 1),
        check: (entry) => Effect.fail(new Error(`not configured for ${entry.key}`))
      })
      const lastErrorOf = Effect.provide(
        Effect.map(
          DeadLetterQueue.get("order-42"),
          Option.map((e) => [e.lastError.tag, e.lastError.message])
        ),
        DeadLetterQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: db })))
      )
      const before = yield* lastErrorOf

      const result = yield* runDlq(command, ["replay", "order-42", "--db", db])

      assertTrue(Exit.isFailure(result.exit))
      strictEqual(yield* Ref.get(reruns), 0)
      deepStrictEqual(yield* lastErrorOf, before)
      deepStrictEqual(
        Option.map(before, ([tag]) => tag),
        Option.some("RateLimited")
      )
    })
  )

  it.scoped("never turns a file into a queue: an empty file, a text file and a database without the table", () =>
    Effect.gen(function* () {
      const { dir } = yield* seededDb
      const empty = join(dir, "empty.db")
      const text = join(dir, "notes.txt")
      const other = join(dir, "other.db")
      writeFileSync(empty, "")
      writeFileSync(text, "not a database\n")
      yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE users (id INTEGER)`),
        SqliteClient.layer({ filename: other, disableWAL: true })
      )

      const results = yield* Effect.forEach([empty, text, other], (db) => runDlq(Dlq.command, ["list", "--db", db]))
      const discarded = yield* runDlq(Dlq.command, ["discard", "order-41", "--db", empty])

      deepStrictEqual(
        [...results, discarded].map(({ exit }) => tagOf(exit)),
        ["NoDeadLetterTable", "NotADatabase", "NoDeadLetterTable", "NoDeadLetterTable"]
      )
      strictEqual(readFileSync(empty, "utf8"), "")
      strictEqual(readFileSync(text, "utf8"), "not a database\n")
      const tables = yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master`),
        SqliteClient.layer({ filename: other, disableWAL: true })
      )
      deepStrictEqual(
        tables.map((row) => row.name),
        ["users"]
      )
      strictEqual(
        Exit.match(results[0]!.exit, {
          onSuccess: () => "",
          onFailure: (cause) => String((Option.getOrThrow(Cause.failureOption(cause)) as Error).message)
        }),
        `no dead-letter table in ${empty} (ai_dead_letters); pass the file the application writes its dead letters to`
      )
    })
  )

  it.scoped("fails with a typed error for a missing key, a missing file, or no rerun function", () =>
    Effect.gen(function* () {
      const { dir, db } = yield* seededDb
      const withRerun = Dlq.makeCommand({ rerun: () => Effect.void })

      const missingKey = yield* runDlq(withRerun, ["replay", "order-99", "--db", db])
      const missingFile = yield* runDlq(Dlq.command, ["list", "--db", join(dir, "nope.db")])
      const noRerun = yield* runDlq(Dlq.command, ["replay", "order-42", "--db", db])

      const tags = [missingKey, missingFile, noRerun].map(({ exit }) => tagOf(exit))
      deepStrictEqual(tags, ["DeadLetterNotFound", "DatabaseNotFound", "ReplayUnavailable"])
      deepStrictEqual(yield* keysIn(db), ["order-41", "order-42"])
    })
  )
})
