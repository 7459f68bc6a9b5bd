/**
 * `npm run bench`: times `Idempotency.execute` on the SQLite store against the same work written by hand with
 * `@effect/sql` and with raw better-sqlite3, all in one process on files in a fresh temporary directory.
 *
 * Variants run in rounds: each round runs one batch of every variant, in an order rotated from round to round,
 * so that the noise of a shared machine falls on all of them alike. Figures are per-op medians in
 * microseconds. Nothing here asserts a time; the run checks only that each variant did what it claims.
 *
 * Options (after `npm run bench --`): `--rounds N` (default 40), `--batch N` ops per variant per round
 * (default 200), `--warmup N` rounds (default 4), `--budget S` seconds for the measured rounds (default 35),
 * `--only a,d` to time a subset (for profiling).
 */
import { NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Console, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { loadAverage, machine } from "./machine.js"
import { report, type Measured } from "./report.js"
import { median } from "./stats.js"
import * as Variants from "./variants.js"

interface Options {
  readonly rounds: number
  readonly batch: number
  readonly warmup: number
  readonly budgetSeconds: number
  readonly only: ReadonlyArray<Variants.VariantId> | undefined
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(`--${name}`)
    return index === -1 ? undefined : argv[index + 1]
  }
  const count = (name: string, fallback: number): number => {
    const text = value(name)
    const parsed = text === undefined ? fallback : Number(text)
    if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`--${name} takes a whole number, got ${text}`)
    return parsed
  }
  const only = value("only")
  return {
    rounds: count("rounds", 40),
    batch: count("batch", 200),
    warmup: count("warmup", 4),
    budgetSeconds: count("budget", 35),
    only: only === undefined ? undefined : (only.split(",") as ReadonlyArray<Variants.VariantId>)
  }
}

/** How many stored keys the replay variants cycle through. */
const replayKeys = 64

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-idempotency-bench-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The raw variants' own file and connection, with the one pragma `SqliteClient` sets on its own. */
const rawDatabase = (filename: string, ddl: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const db = new Database(filename)
      db.pragma("journal_mode = WAL")
      for (const text of ddl) db.exec(text)
      return db
    }),
    (db) => Effect.sync(() => db.close())
  )

const collectGarbage: () => void = typeof globalThis.gc === "function" ? (globalThis.gc as () => void) : () => undefined

/** Times each op of one batch on its own; samples in microseconds. */
const timeBatch = (op: Variants.Op, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const samples = new Array<number>(keys.length)
    collectGarbage()

    if (op._tag === "Sync") {
      return yield* Effect.sync(() => {
        for (let index = 0; index < keys.length; index++) {
          const start = performance.now()
          op.run(keys[index]!)
          samples[index] = (performance.now() - start) * 1000
        }
        return samples
      })
    }

    for (let index = 0; index < keys.length; index++) {
      const start = performance.now()
      yield* op.run(keys[index]!)
      samples[index] = (performance.now() - start) * 1000
    }
    return samples
  })

const countSucceeded = (sql: SqlClient.SqlClient, table: string, prefix: string) =>
  Effect.map(
    sql<{ readonly n: number }>`
      SELECT COUNT(*) AS n FROM ${sql(table)} WHERE status = 'succeeded' AND idem_key LIKE ${prefix + "%"}`,
    (rows) => Number(rows[0]?.n ?? 0)
  )

const measure = (options: Options, dir: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ddl = yield* Variants.copySchema(sql)
    const pragmas = yield* sql<{ readonly journal: string; readonly synchronous: number; readonly version: string }>`
      SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal,
        (SELECT synchronous FROM pragma_synchronous) AS synchronous, sqlite_version() AS version`

    const db = yield* rawDatabase(join(dir, "raw.db"), ddl)
    const raw = Variants.rawStatements(db)
    const all = Variants.variants(sql, raw)
    const chosen = options.only === undefined ? all : all.filter((variant) => options.only!.includes(variant.id))

    const seeded = Array.from({ length: replayKeys }, (_, index) => `bench:seed:${index}`)
    yield* Variants.seed(seeded, raw)
    const replayed = yield* Variants.execute(seeded[0]!)
    if (JSON.stringify(replayed) !== JSON.stringify(Variants.answer)) {
      return yield* Effect.dieMessage(`replay returned ${JSON.stringify(replayed)}, not the stored answer`)
    }

    let fresh = 0
    let replay = 0
    const keysFor = (variant: Variants.Variant): ReadonlyArray<string> =>
      Array.from({ length: options.batch }, () =>
        variant.keys === "fresh" ? `bench:${variant.id}:${fresh++}` : seeded[replay++ % replayKeys]!
      )

    const runRound = (round: number) =>
      Effect.forEach(
        chosen.map((_, index) => chosen[(index + round) % chosen.length]!),
        (variant) => Effect.map(timeBatch(variant.op, keysFor(variant)), (samples) => [variant.id, samples] as const)
      )

    for (let round = 0; round < options.warmup; round++) yield* runRound(round)

    const samples = new Map<Variants.VariantId, Array<number>>(chosen.map((variant) => [variant.id, []]))
    const roundMedians = new Map<Variants.VariantId, Array<number>>(chosen.map((variant) => [variant.id, []]))
    const loadBefore = loadAverage()
    const started = performance.now()
    let rounds = 0
    while (rounds < options.rounds && performance.now() - started < options.budgetSeconds * 1000) {
      for (const [id, batch] of yield* runRound(rounds)) {
        samples.get(id)!.push(...batch)
        roundMedians.get(id)!.push(median(batch))
      }
      rounds++
    }
    const seconds = (performance.now() - started) / 1000

    const freshRuns = (id: Variants.VariantId) =>
      chosen.some((variant) => variant.id === id) ? (options.warmup + rounds) * options.batch : 0
    const stored = {
      a: yield* countSucceeded(sql, Variants.libraryTable, "bench:a:"),
      b: yield* countSucceeded(sql, Variants.handTable, "bench:b:"),
      c: db.prepare(`SELECT COUNT(*) AS n FROM ${Variants.libraryTable} WHERE idem_key LIKE 'bench:c:%'`).pluck().get(),
      g: yield* countSucceeded(sql, Variants.libraryTable, "bench:g:"),
      h: yield* countSucceeded(sql, Variants.handTable, "bench:h:")
    }
    for (const id of ["a", "b", "c", "g", "h"] as const) {
      if (Number(stored[id]) !== freshRuns(id)) {
        return yield* Effect.dieMessage(`variant ${id} stored ${stored[id]} records for ${freshRuns(id)} fresh ops`)
      }
    }

    const measured: Measured = {
      variants: chosen,
      samples,
      roundMedians,
      rounds,
      batch: options.batch,
      warmup: options.warmup,
      seconds,
      loadBefore,
      loadAfter: loadAverage(),
      sqlite: { version: pragmas[0]!.version, journal: pragmas[0]!.journal, synchronous: pragmas[0]!.synchronous },
      gc: typeof globalThis.gc === "function"
    }
    return measured
  })

const main = Effect.gen(function* () {
  const options = parseOptions(process.argv.slice(2))
  const dir = yield* tempDir
  const facts = machine()

  const store = IdempotencyStore.layerSql().pipe(
    Layer.provideMerge(SqliteClient.layer({ filename: join(dir, "effect.db") }))
  )
  const measured = yield* Effect.scoped(measure(options, dir)).pipe(Effect.provide(store))

  yield* Console.log(report(facts, measured))
})

NodeRuntime.runMain(Effect.scoped(main))
