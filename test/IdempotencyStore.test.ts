import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { fork } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { conformance } from "../src/testing/index.js"
import { describePg } from "./setup/pgTarget.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-idempotency-store-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A SQLite client on a new file in a new temporary directory, removed when the layer is released. */
const sqliteClient = Layer.unwrapScoped(
  Effect.map(tempDir, (dir) => SqliteClient.layer({ filename: join(dir, "store.db") }))
)

const pgClient = (url: string) => PgClient.layer({ url: Redacted.make(url) })

/** A table of its own for each build, so every test starts from an empty store in the shared cluster. */
const freshTable = () => `conformance_${randomUUID().replaceAll("-", "")}`.slice(0, 48)

conformance("IdempotencyStore.layerMemory", IdempotencyStore.layerMemory)

conformance("IdempotencyStore.layerSql (SQLite file)", IdempotencyStore.layerSql().pipe(Layer.provide(sqliteClient)))

describePg("IdempotencyStore.layerSql (PostgreSQL)", (url) => {
  const layer = Layer.unwrapEffect(
    Effect.sync(() => IdempotencyStore.layerSql({ table: freshTable() }).pipe(Layer.provide(pgClient(url))))
  )
  conformance("conformance", layer)
})

interface Outcome {
  readonly round: number
  readonly tag: string
  readonly winner: string | null
}

/** A forked fixture process with a queue of the messages it sent. */
const forkClaimer = (db: string, key: string, owner: string) => {
  const child = fork(viteNode, [claimRaceFixture], {
    env: { ...process.env, STORE_DB: db, STORE_KEY: key, STORE_OWNER: owner },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const inbox: Array<unknown> = []
  const waiting: Array<(message: unknown) => void> = []
  child.on("message", (message) => {
    const resolve = waiting.shift()
    if (resolve === undefined) inbox.push(message)
    else resolve(message)
  })
  const next = (): Promise<unknown> =>
    inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve) => waiting.push(resolve))
  return { child, next }
}

const viteNode = fileURLToPath(new URL("../node_modules/vite-node/vite-node.mjs", import.meta.url))
const claimRaceFixture = fileURLToPath(new URL("./fixtures/store-claim-race.ts", import.meta.url))

describe("IdempotencyStore.layerSql across processes", () => {
  it("four processes racing for the same new keys on one SQLite file: exactly one claims each key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "effect-idempotency-race-"))
    const claimers = ["p0", "p1", "p2", "p3"].map((owner) => forkClaimer(join(dir, "store.db"), "race", owner))
    try {
      const ready = await Promise.all(claimers.map((claimer) => claimer.next()))
      deepStrictEqual(ready, [{ ready: true }, { ready: true }, { ready: true }, { ready: true }])

      for (let round = 0; round < 20; round++) {
        for (const claimer of claimers) claimer.child.send({ round })
        const outcomes = (await Promise.all(claimers.map((claimer) => claimer.next()))) as ReadonlyArray<Outcome>

        deepStrictEqual(outcomes.map((outcome) => outcome.tag).sort(), ["Claimed", "Existing", "Existing", "Existing"])
        strictEqual(new Set(outcomes.map((outcome) => outcome.winner)).size, 1)
      }
    } finally {
      for (const claimer of claimers) claimer.child.kill("SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

const claimOnce = (key: string) =>
  Effect.flatMap(IdempotencyStore.IdempotencyStore, (store) =>
    store.claim({ key, requestHash: "h", owner: "o", now: 1000, leaseExpiresAt: 2000, expiresAt: 9000 })
  )

describe("IdempotencyStore.layerSql", () => {
  it("rejects a table name it would not put into SQL", () => {
    const rejected = ["", "ai-idempotency", "AiIdempotency", "1st", "keys; DROP TABLE x", "x".repeat(49)].map(
      (table) => {
        try {
          IdempotencyStore.layerSql({ table })
          return "accepted"
        } catch (error) {
          return error instanceof IdempotencyStore.InvalidTableName ? error._tag : "other"
        }
      }
    )
    deepStrictEqual(rejected, Array(6).fill("InvalidTableName"))
    strictEqual(
      new IdempotencyStore.InvalidTableName({ table: "ai-idempotency" }).message,
      `"ai-idempotency" is not a valid idempotency table name: use 1 to 48 lowercase letters, digits and ` +
        `underscores, starting with a letter or underscore (e.g. "ai_idempotency").`
    )
  })

  it.scoped("creates the table if absent, under a custom name, and keeps records across builds", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const first = yield* Effect.provide(claimOnce("k"), IdempotencyStore.layerSql({ table: "my_keys" }))
      const second = yield* Effect.provide(claimOnce("k"), IdempotencyStore.layerSql({ table: "my_keys" }))
      deepStrictEqual([first._tag, second._tag], ["Claimed", "Existing"])

      const columns = yield* sql<{ readonly name: string; readonly type: string }>`PRAGMA table_info(my_keys)`
      deepStrictEqual(
        columns.map((column) => `${column.name} ${column.type}`),
        [
          "idem_key TEXT",
          "request_hash TEXT",
          "status TEXT",
          "response_json TEXT",
          "error_text TEXT",
          "owner_token TEXT",
          "lease_expires_at INTEGER",
          "attempts INTEGER",
          "created_at INTEGER",
          "updated_at INTEGER",
          "expires_at INTEGER"
        ]
      )
    }).pipe(Effect.provide(sqliteClient))
  )

  it.scoped("a database failure is a typed IdempotencyStoreError, not a defect", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* IdempotencyStore.IdempotencyStore
      yield* sql`DROP TABLE ai_idempotency`

      const error = yield* Effect.flip(claimOnce("k"))
      deepStrictEqual([error._tag, error.operation, error.key], ["IdempotencyStoreError", "claim", "k"])
      assert.include(error.message, "no such table: ai_idempotency")

      const purge = yield* Effect.flip(store.purgeExpired(0))
      deepStrictEqual([purge._tag, purge.operation, purge.key], ["IdempotencyStoreError", "purgeExpired", undefined])
    }).pipe(Effect.provide(IdempotencyStore.layerSql().pipe(Layer.provideMerge(sqliteClient))))
  )
})

describePg("IdempotencyStore.layerSql schema (PostgreSQL)", (url) => {
  it.scoped("stores times as BIGINT and hands them back as numbers", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const table = freshTable()
      const store = yield* Layer.build(IdempotencyStore.layerSql({ table })).pipe(
        Effect.map((context) => Context.get(context, IdempotencyStore.IdempotencyStore))
      )
      const columns = yield* sql<{ readonly column_name: string; readonly data_type: string }>`
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = ${table} AND column_name LIKE '%_at' ORDER BY column_name`
      deepStrictEqual(
        columns.map((column) => `${column.column_name} ${column.data_type}`),
        ["created_at bigint", "expires_at bigint", "lease_expires_at bigint", "updated_at bigint"]
      )

      const late = 4_102_444_800_000
      yield* store.claim({
        key: "k",
        requestHash: "h",
        owner: "o",
        now: late,
        leaseExpiresAt: late,
        expiresAt: late + 1
      })
      const record = yield* store.get("k", late)
      deepStrictEqual(
        Option.map(record, (r) => [r.createdAt, r.expiresAt, r.attempts]),
        Option.some([late, late + 1, 1])
      )
    }).pipe(Effect.provide(pgClient(url)))
  )
})
