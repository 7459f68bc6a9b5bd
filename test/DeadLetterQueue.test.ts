import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect, Exit, Layer, Metric, Option, Redacted, Ref, TestClock } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as CallError from "../src/CallError.js"
import * as DeadLetterQueue from "../src/DeadLetterQueue.js"
import { describePg } from "./setup/pgTarget.js"

type MakeLayer = (options: DeadLetterQueue.Options) => Layer.Layer<DeadLetterQueue.DeadLetterQueue, unknown>

const rateLimited = CallError.fromResponse({
  status: 429,
  headers: { "x-request-id": "req_1" },
  body: { error: { message: "Rate limit reached" } }
})
const serverError = CallError.fromResponse({ status: 503, body: "upstream down" })
const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Summarise order 42" }], temperature: 0.2 }

/** Runs `body` with a queue from `makeLayer` whose alert hook records the keys it was called for. */
const withQueue = <A, E>(
  makeLayer: MakeLayer,
  body: (alerts: Effect.Effect<ReadonlyArray<string>>) => Effect.Effect<A, E, DeadLetterQueue.DeadLetterQueue>
) =>
  Effect.gen(function* () {
    const alerts = yield* Ref.make<ReadonlyArray<string>>([])
    const layer = makeLayer({ onDeadLetter: (entry) => Ref.update(alerts, (keys) => [...keys, entry.key]) })
    return yield* Effect.provide(body(Ref.get(alerts)), layer)
  })

const suite = (name: string, makeLayer: MakeLayer) =>
  describe(name, () => {
    it.effect("stores a new entry once and runs the alert hook once", () =>
      withQueue(makeLayer, (alerts) =>
        Effect.gen(function* () {
          yield* TestClock.setTime(1_000)

          const entry = yield* DeadLetterQueue.add({ key: "chatmsg:c1:m1", request, error: rateLimited, attempts: 4 })

          deepStrictEqual(entry, {
            key: "chatmsg:c1:m1",
            request,
            lastError: { tag: "RateLimited", message: rateLimited.message, status: Option.some(429) },
            attempts: 4,
            deadLetteredAt: 1_000,
            updatedAt: 1_000
          })
          deepStrictEqual(yield* DeadLetterQueue.list(), [entry])
          deepStrictEqual(yield* DeadLetterQueue.get("chatmsg:c1:m1"), Option.some(entry))
          deepStrictEqual(yield* alerts, ["chatmsg:c1:m1"])
        })
      )
    )

    it.effect("the same key dead-lettered twice stays one entry, with the last error and all attempts", () =>
      withQueue(makeLayer, (alerts) =>
        Effect.gen(function* () {
          yield* TestClock.setTime(1_000)
          yield* DeadLetterQueue.add({ key: "k", request, error: rateLimited, attempts: 4 })
          yield* TestClock.setTime(5_000)

          yield* DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 2 })

          const entries = yield* DeadLetterQueue.list()
          deepStrictEqual(
            entries.map((e) => [e.key, e.lastError.tag, e.lastError.status, e.attempts, e.deadLetteredAt, e.updatedAt]),
            [["k", "ServerError", Option.some(503), 6, 1_000, 5_000]]
          )
          deepStrictEqual(yield* alerts, ["k"])
        })
      )
    )

    it.effect("concurrent dead-lettering of one new key makes one entry and one alert", () =>
      withQueue(makeLayer, (alerts) =>
        Effect.gen(function* () {
          yield* Effect.all(
            Array.from({ length: 20 }, () =>
              DeadLetterQueue.add({ key: "race", request, error: serverError, attempts: 1 })
            ),
            { concurrency: "unbounded" }
          )

          const entries = yield* DeadLetterQueue.list()
          deepStrictEqual(
            entries.map((e) => [e.key, e.attempts]),
            [["race", 20]]
          )
          deepStrictEqual(yield* alerts, ["race"])
        })
      )
    )

    it.effect("lists oldest first, with a limit", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          for (const [key, at] of [
            ["b", 2_000],
            ["c", 3_000],
            ["a", 2_000]
          ] as const) {
            yield* TestClock.setTime(at)
            yield* DeadLetterQueue.add({ key, request, error: serverError, attempts: 1 })
          }

          const all = yield* DeadLetterQueue.list()
          const first = yield* DeadLetterQueue.list({ limit: 2 })

          deepStrictEqual(
            all.map((e) => e.key),
            ["a", "b", "c"]
          )
          deepStrictEqual(
            first.map((e) => e.key),
            ["a", "b"]
          )
        })
      )
    )

    it.effect("a successful replay gets the stored request, returns its value and removes the entry", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          yield* DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 4 })
          const seen = yield* Ref.make<ReadonlyArray<unknown>>([])

          const answer = yield* DeadLetterQueue.replay("k", (entry) =>
            Effect.as(
              Ref.update(seen, (all) => [...all, entry.request]),
              "the answer"
            )
          )

          strictEqual(answer, "the answer")
          deepStrictEqual(yield* Ref.get(seen), [request])
          deepStrictEqual(yield* DeadLetterQueue.get("k"), Option.none())
        })
      )
    )

    it.effect("a failed replay keeps the entry with the new last error and fails with the run's error", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          yield* TestClock.setTime(1_000)
          yield* DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 4 })
          yield* TestClock.setTime(9_000)

          const exit = yield* Effect.exit(DeadLetterQueue.replay("k", () => Effect.fail(rateLimited)))

          assertTrue(Exit.isFailure(exit))
          const entry = yield* DeadLetterQueue.get("k")
          deepStrictEqual(
            Option.map(entry, (e) => [e.lastError.tag, e.attempts, e.deadLetteredAt, e.updatedAt]),
            Option.some(["RateLimited", 4, 1_000, 9_000])
          )
        })
      )
    )

    it.effect("replay and discard of a key that is not there fail with DeadLetterNotFound", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          yield* DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 1 })

          yield* DeadLetterQueue.discard("k")
          const discardAgain = yield* Effect.flip(DeadLetterQueue.discard("k"))
          const replayMissing = yield* Effect.flip(DeadLetterQueue.replay("missing", () => Effect.void))

          deepStrictEqual(yield* DeadLetterQueue.list(), [])
          deepStrictEqual([discardAgain._tag, replayMissing._tag], ["DeadLetterNotFound", "DeadLetterNotFound"])
          assert.include(discardAgain.message, 'No dead letter has the key "k"')
        })
      )
    )

    it.effect("a failing alert hook does not lose the entry", () =>
      Effect.gen(function* () {
        const layer = makeLayer({ onDeadLetter: () => Effect.fail(new Error("pager is down")) })

        const entries = yield* Effect.provide(
          Effect.zipRight(
            DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 1 }),
            DeadLetterQueue.list()
          ),
          layer
        )

        deepStrictEqual(
          entries.map((e) => e.key),
          ["k"]
        )
      })
    )

    it.effect("a request with no JSON form is a typed error", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(
            DeadLetterQueue.add({ key: "k", request: { big: 1n }, error: serverError, attempts: 1 })
          )
          strictEqual(error._tag, "DeadLetterQueueError")
          deepStrictEqual(yield* DeadLetterQueue.list(), [])
        })
      )
    )

    it.effect("counts new entries in effect_idempotency_dead_letters_total", () =>
      withQueue(makeLayer, () =>
        Effect.gen(function* () {
          const before = (yield* Metric.value(DeadLetterQueue.deadLettersTotal)).count

          yield* DeadLetterQueue.add({ key: "x", request, error: serverError, attempts: 1 })
          yield* DeadLetterQueue.add({ key: "x", request, error: serverError, attempts: 1 })
          yield* DeadLetterQueue.add({ key: "y", request, error: serverError, attempts: 1 })

          strictEqual((yield* Metric.value(DeadLetterQueue.deadLettersTotal)).count - before, 2)
        })
      )
    )
  })

suite("DeadLetterQueue.layerMemory", (options) => DeadLetterQueue.layerMemory(options))

const tempDir = () => mkdtempSync(join(tmpdir(), "effect-idempotency-dlq-"))

const sqliteFile = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(Effect.sync(tempDir), (dir) =>
      Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteClient.layer({ filename: join(dir, "dlq.db") })
  )
)

suite("DeadLetterQueue.layerSql (SQLite file)", (options) =>
  DeadLetterQueue.layerSql(options).pipe(Layer.provide(sqliteFile))
)

describe("DeadLetterQueue.layerSql (SQLite file) persistence", () => {
  it.effect("creates ai_dead_letters and keeps entries across layers on the same file", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const client = SqliteClient.layer({ filename: join(dir, "dlq.db") })

      yield* Effect.provide(
        DeadLetterQueue.add({ key: "k", request, error: serverError, attempts: 3 }),
        DeadLetterQueue.layerSql().pipe(Layer.provide(client))
      )
      const again = yield* Effect.provide(
        DeadLetterQueue.list(),
        DeadLetterQueue.layerSql().pipe(Layer.provide(client))
      )
      const tables = yield* Effect.provide(
        Effect.flatMap(SqliteClient.SqliteClient, (sql) => sql`SELECT name FROM sqlite_master WHERE type = 'table'`),
        client
      )
      rmSync(dir, { recursive: true, force: true })

      deepStrictEqual(
        again.map((e) => [e.key, e.attempts, e.request]),
        [["k", 3, request]]
      )
      deepStrictEqual(tables, [{ name: "ai_dead_letters" }])
    })
  )
})

describe("DeadLetterQueue.layerSql table option", () => {
  it.effect("refuses a table name that is not a plain lowercase identifier, before any SQL runs", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const client = SqliteClient.layer({ filename: join(dir, "dlq.db") })
      const names = ["ai_dead_letters; DROP TABLE x", "Dead", "1dlq", "", "dlq-x", "d".repeat(43), 'a"b']

      const errors = yield* Effect.forEach(names, (table) =>
        Effect.flip(
          Effect.provide(DeadLetterQueue.list(), DeadLetterQueue.layerSql({ table }).pipe(Layer.provide(client)))
        )
      )
      const accepted = yield* Effect.provide(
        DeadLetterQueue.list(),
        DeadLetterQueue.layerSql({ table: "d".repeat(42) }).pipe(Layer.provide(client))
      )
      const tables = yield* Effect.provide(
        Effect.flatMap(SqliteClient.SqliteClient, (sql) => sql`SELECT name FROM sqlite_master WHERE type = 'table'`),
        client
      )
      rmSync(dir, { recursive: true, force: true })

      deepStrictEqual(
        errors.map((error) => [error._tag, (error as DeadLetterQueue.DeadLetterQueueError).operation]),
        names.map(() => ["DeadLetterQueueError", "layerSql"])
      )
      strictEqual(
        errors[0]!.message,
        'The dead-letter queue failed during layerSql: "ai_dead_letters; DROP TABLE x" is not a valid dead-letter ' +
          "table name: use 1 to 42 lowercase letters, digits and underscores, starting with a letter or underscore " +
          '(e.g. "ai_dead_letters")'
      )
      deepStrictEqual(accepted, [])
      deepStrictEqual(tables, [{ name: "d".repeat(42) }])
    })
  )
})

describePg("DeadLetterQueue.layerSql (PostgreSQL)", (url) => {
  const freshTable = () => `dlq_${randomUUID().replaceAll("-", "")}`.slice(0, 40)
  suite("PostgreSQL", (options) =>
    Layer.unwrapEffect(
      Effect.sync(() =>
        DeadLetterQueue.layerSql({ ...options, table: freshTable() }).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(url) }))
        )
      )
    )
  )
})
