import { assert, describe, it } from "@effect/vitest"
import { assertFalse, assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as Report from "../src/simulation/Report.js"
import * as Simulation from "../src/simulation/Simulation.js"
import * as Workload from "../src/simulation/Workload.js"

const freshDb = () => join(mkdtempSync(join(tmpdir(), "effect-idempotency-sim-")), "sim.db")

/** Short waits so that a run takes about a second; the policy's shape is what RetryPolicy.make gives. */
const quickRetry = RetryPolicy.make({ base: "5 millis", cap: "40 millis" })

const settings = (db: string, overrides: Partial<Simulation.Options> = {}): Simulation.Options => ({
  actions: 60,
  concurrency: 8,
  faultRate: 0.3,
  redeliveryRate: 0.2,
  seed: 7,
  db,
  requests: Workload.generateRequests(10, 7),
  requestsSource: "generated",
  costPerCall: 0.01,
  actionsPerMonth: 100_000,
  attemptTimeout: "2 seconds",
  retry: quickRetry,
  provider: { retryAfter: 0 },
  ...overrides
})

/** Per action, how many rows beyond the first a table holds, read with SQL from the file itself. */
const beyondFirstInFile = (file: string, table: string): number => {
  const db = new Database(file, { readonly: true })
  try {
    const row = db
      .prepare(`SELECT COALESCE(SUM(n - 1), 0) AS extra FROM (SELECT COUNT(*) AS n FROM ${table} GROUP BY action_id)`)
      .get() as { extra: number }
    return row.extra
  } finally {
    db.close()
  }
}

const countInFile = (file: string, sql: string): number => {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare(sql).get() as { n: number }).n
  } finally {
    db.close()
  }
}

describe("simulation", () => {
  it.live(
    "delivers every action exactly once the idempotent way, and not the naive way",
    () =>
      Effect.gen(function* () {
        const db = freshDb()

        const report = yield* Simulation.run(settings(db))

        strictEqual(report.idempotent.actions, 60)
        strictEqual(report.idempotent.duplicateBillableEvents, 0)
        strictEqual(report.idempotent.duplicateOutputs, 0)
        strictEqual(report.idempotent.duplicateRows, 0)
        strictEqual(report.idempotent.billableEvents, 60 - report.idempotent.deadLetters)
        assert.isAbove(report.naive.duplicateBillableEvents, 0)
        assert.isAbove(report.naive.duplicateRows, 0)
        strictEqual(report.naive.wastedCostUsd, Report.cents(report.naive.duplicateBillableEvents * 0.01))
        assertTrue(Report.isClean(report.idempotent))
        assertFalse(Report.isClean(report.naive))

        strictEqual(beyondFirstInFile(db, "ledger_idempotent"), 0)
        strictEqual(beyondFirstInFile(db, "outputs_idempotent"), 0)
        strictEqual(beyondFirstInFile(db, "ledger_naive"), report.naive.duplicateBillableEvents)
        strictEqual(beyondFirstInFile(db, "outputs_naive"), report.naive.duplicateRows)
        strictEqual(countInFile(db, "SELECT COUNT(*) AS n FROM ledger_naive"), report.naive.billableEvents)
        strictEqual(
          countInFile(db, "SELECT COUNT(*) AS n FROM ai_idempotency WHERE status = 'succeeded'"),
          60 - report.idempotent.deadLetters
        )
        strictEqual(countInFile(db, "SELECT COUNT(*) AS n FROM ai_dead_letters"), report.idempotent.deadLetters)
      }),
    60_000
  )

  it.live(
    "bills the naive way again for every request the provider ran but never answered",
    () =>
      Effect.gen(function* () {
        const db = freshDb()

        const report = yield* Simulation.run(
          settings(db, {
            concurrency: 30,
            redeliveryRate: 0,
            faultRate: 0.2,
            provider: { faultKinds: ["hang"], retryAfter: 0 }
          })
        )

        const hangs = report.naive.retriesByReason["RequestTimeout"] ?? 0
        assert.isAbove(hangs, 0)
        strictEqual(report.naive.duplicateBillableEvents, hangs)
        strictEqual(report.naive.duplicateRows, 0)
        strictEqual(report.idempotent.retriesByReason["RequestTimeout"], hangs)
        strictEqual(report.idempotent.duplicateBillableEvents, 0)
        strictEqual(report.idempotent.billableEvents, 60)
      }),
    60_000
  )

  it.live(
    "reproduces the same counts from the same seed, and resets the tables of an existing --db file",
    () =>
      Effect.gen(function* () {
        const db = freshDb()
        const counts = (run: Report.RunReport) => ({
          attempts: run.attempts,
          retriesByReason: run.retriesByReason,
          billableEvents: run.billableEvents,
          duplicateBillableEvents: run.duplicateBillableEvents,
          duplicateOutputs: run.duplicateOutputs,
          duplicateRows: run.duplicateRows,
          deadLetters: run.deadLetters
        })

        const first = yield* Simulation.run(settings(db, { faultRate: 0.15 }))
        const second = yield* Simulation.run(settings(db, { faultRate: 0.15 }))

        deepStrictEqual(counts(second.idempotent), counts(first.idempotent))
        deepStrictEqual(counts(second.naive), counts(first.naive))
        strictEqual(countInFile(db, "SELECT COUNT(*) AS n FROM outputs_idempotent"), 60 - second.idempotent.deadLetters)
      }),
    60_000
  )

  it.live("refuses a database it did not create and marks the ones it writes", () =>
    Effect.gen(function* () {
      const app = freshDb()
      const setup = new Database(app)
      setup.exec("CREATE TABLE users (id INTEGER); CREATE TABLE ai_idempotency (idem_key TEXT)")
      setup.close()
      const fresh = freshDb()

      const refused = yield* Effect.flip(Simulation.run(settings(app, { actions: 2 })))
      yield* Simulation.run(settings(fresh, { actions: 2, faultRate: 0 }))
      const again = yield* Simulation.checkDatabase(fresh).pipe(Effect.either)

      strictEqual(refused._tag, "NotASimulationDatabase")
      strictEqual(countInFile(app, "SELECT COUNT(*) AS n FROM sqlite_master"), 2)
      strictEqual(countInFile(fresh, `SELECT COUNT(*) AS n FROM ${Simulation.markerTable}`), 1)
      strictEqual(again._tag, "Right")
    })
  )

  it.live(
    "dead-letters an action whose retries run out, once per action",
    () =>
      Effect.gen(function* () {
        const db = freshDb()

        const report = yield* Simulation.run(
          settings(db, { actions: 10, redeliveryRate: 1, faultRate: 1, provider: { faultKinds: ["503"] } })
        )

        strictEqual(report.idempotent.deadLetters, 10)
        strictEqual(report.naive.deadLetters, 10)
        strictEqual(report.idempotent.billableEvents, 0)
        strictEqual(report.idempotent.attempts, 80)
        deepStrictEqual(report.idempotent.retriesByReason, { ServerError: 60 })
        strictEqual(countInFile(db, "SELECT COUNT(*) AS n FROM ai_dead_letters"), 10)
        strictEqual(report.idempotent.billedButUndelivered, 0)
        strictEqual(report.naive.billedButUndelivered, 0)
      }),
    60_000
  )

  it.live(
    "counts the billing of actions that never delivered an answer, and warns about them",
    () =>
      Effect.gen(function* () {
        const db = freshDb()

        const report = yield* Simulation.run(
          settings(db, {
            actions: 5,
            redeliveryRate: 0,
            faultRate: 1,
            costPerCall: 0.5,
            attemptTimeout: "300 millis",
            provider: { faultKinds: ["hang"], retryAfter: 0 }
          })
        )
        const table = Report.formatTable(report)
        const json = JSON.parse(Report.toJson(report))

        strictEqual(report.idempotent.deadLetters, 5)
        strictEqual(report.idempotent.duplicateBillableEvents, 0)
        strictEqual(report.idempotent.billedButUndelivered, 5)
        strictEqual(report.idempotent.undeliveredCostUsd, 2.5)
        strictEqual(report.naive.billedButUndelivered, 20)
        strictEqual(json.idempotent.billedButUndelivered, 5)
        strictEqual(json.naive.undeliveredCostUsd, 10)
        assert.match(table, /\nbilled but undelivered\s+5\s+20\n/)
        assert.include(
          table,
          `\nwarning: the idempotent run dead-lettered 5 of 5 actions; 5 billable events ($2.50) were paid for without an answer; see: effect-idempotency dlq list --db ${db}\n`
        )
        assertTrue(
          table.endsWith(
            "\nidempotent run: no duplicate billing, outputs or rows, but 5 of 5 actions FAILED and were dead-lettered."
          )
        )
      }),
    60_000
  )
})

describe("simulation/Workload", () => {
  it.effect("names the first malformed line of a requests file", () =>
    Effect.gen(function* () {
      const good = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] })

      const notJson = yield* Effect.flip(Workload.parseRequests(`${good}\n\n{"model": "m",`, "r.jsonl"))
      const notRequest = yield* Effect.flip(
        Workload.parseRequests(`${good}\n{"model": "m", "messages": []}`, "r.jsonl")
      )
      const streamed = yield* Effect.flip(
        Workload.parseRequests(
          JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }], stream: true }),
          "r.jsonl"
        )
      )
      const empty = yield* Effect.flip(Workload.parseRequests("\n  \n", "r.jsonl"))

      assert.match(notJson.message, /^--requests r\.jsonl line 3: not valid JSON \(/)
      strictEqual(
        notRequest.message,
        "--requests r.jsonl line 2: not a chat completion request (messages: messages must hold at least one message)"
      )
      strictEqual(
        streamed.message,
        "--requests r.jsonl line 1: streamed requests (stream: true) are not supported by the simulation"
      )
      strictEqual(empty.message, "--requests r.jsonl: the file holds no requests")
    })
  )

  it.effect("parses the example requests file", () =>
    Effect.gen(function* () {
      const { readFileSync } = yield* Effect.promise(() => import("node:fs"))
      const text = readFileSync(new URL("../examples/requests.jsonl", import.meta.url), "utf8")

      const requests = yield* Workload.parseRequests(text, "examples/requests.jsonl")

      strictEqual(requests.length, 50)
      deepStrictEqual(
        new Set(requests.map((r) => r.model)),
        new Set(["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"])
      )
    })
  )

  it.effect("redelivers a seeded share of actions, half overlapping the first delivery and half after all", () =>
    Effect.gen(function* () {
      const actions = Workload.actions(1000, Workload.generateRequests(5, 1))

      const queue = Workload.deliveries(actions, { redeliveryRate: 0.05, seed: 42 })
      const again = Workload.deliveries(actions, { redeliveryRate: 0.05, seed: 42 })

      const kinds = { first: 0, concurrent: 0, later: 0 }
      queue.forEach((d) => kinds[d.kind]++)
      deepStrictEqual(kinds, { first: 1000, concurrent: 20, later: 27 })
      deepStrictEqual(again, queue)
      strictEqual(actions[5]!.key, "chatmsg:conv_1:msg_5")
      strictEqual(actions[5]!.id, "conv_1/msg_5")
      const firstLater = queue.findIndex((d) => d.kind === "later")
      assertTrue(queue.slice(firstLater).every((d) => d.kind === "later"))
      const concurrentAt = queue.findIndex((d) => d.kind === "concurrent")
      strictEqual(queue[concurrentAt - 1]!.action.id, queue[concurrentAt]!.action.id)
    })
  )
})

describe("simulation/Report", () => {
  it("counts duplicates beyond the first and takes nearest-rank percentiles", () => {
    strictEqual(Report.beyondFirst([1, 3, 2, 0]), 3)
    deepStrictEqual(
      Report.distinctPerGroup([
        ["a", "x"],
        ["a", "x"],
        ["a", "y"],
        ["b", "z"]
      ]),
      new Map([
        ["a", 2],
        ["b", 1]
      ])
    )
    strictEqual(Report.percentile([5, 1, 4, 2, 3], 50), 3)
    strictEqual(Report.percentile([5, 1, 4, 2, 3], 99), 5)
    strictEqual(Report.percentile([], 50), 0)
    strictEqual(Report.cents(0.1 + 0.2), 0.3)
  })
})
