import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
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
