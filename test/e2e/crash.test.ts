/**
 * A process that claimed a key on a SQLite file is SIGKILLed in the middle of its effect. Another process
 * (this one) is refused until the dead owner's lease ends, then takes the key over and runs the effect once.
 *
 * The child runs on the real clock, with a 300 ms lease that its heartbeat keeps extending while it lives.
 * Once it is dead its last lease end is fixed in the file, and this process sets its `TestClock` to either
 * side of that instant, so no real waiting decides the outcome.
 */
import { describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Effect, Exit, Layer, Option, Ref, Schema, TestClock } from "effect"
import { fork, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Idempotency from "../../src/Idempotency.js"
import * as IdempotencyStore from "../../src/IdempotencyStore.js"

const viteNode = fileURLToPath(new URL("../../node_modules/vite-node/vite-node.mjs", import.meta.url))
const crashOwner = fileURLToPath(new URL("../fixtures/crash-owner.ts", import.meta.url))

const key = "chatmsg:conv_1:msg_1"
const request = { prompt: "Summarise the contract" }

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-idempotency-crash-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The fixture process, killed when the scope closes if it is still alive. */
const spawnOwner = (db: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      fork(viteNode, [crashOwner], {
        env: { ...process.env, CRASH_DB: db, CRASH_KEY: key, CRASH_LEASE_MS: "300" },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
    ),
    (child) => Effect.sync(() => (child.exitCode === null && child.signalCode === null ? child.kill("SIGKILL") : true))
  )

const nextMessage = (child: ChildProcess) =>
  Effect.async<unknown>((resume) => {
    child.once("message", (message) => resume(Effect.succeed(message)))
  })

const killHard = (child: ChildProcess) =>
  Effect.async<NodeJS.Signals | null>((resume) => {
    child.once("exit", (_code, signal) => resume(Effect.succeed(signal)))
    child.kill("SIGKILL")
  })

const sqliteStore = (db: string) =>
  IdempotencyStore.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: db })))

const failureOf = <A, E extends object>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit)
    ? Option.map(Cause.failureOption(exit.cause), (e) => Object.fromEntries(Object.entries(e)))
    : Option.none()

/** What this process sees of the key while the owner lives, once it is killed, and at its lease end. */
const afterStart = (child: ChildProcess) =>
  Effect.gen(function* () {
    const store = yield* IdempotencyStore.IdempotencyStore
    const runs = yield* Ref.make(0)
    const call = Effect.exit(
      Idempotency.execute(
        Effect.as(
          Ref.update(runs, (n) => n + 1),
          "summary"
        ),
        { key, request, success: Schema.String, lease: "300 millis" }
      )
    )

    const alive = Option.getOrThrow(yield* store.get(key, 0))
    yield* TestClock.setTime(alive.createdAt)
    const whileAlive = yield* call

    strictEqual(yield* killHard(child), "SIGKILL")
    const left = Option.getOrThrow(yield* store.get(key, 0))
    yield* TestClock.setTime(left.leaseExpiresAt - 1)
    const beforeLeaseEnd = yield* call
    yield* TestClock.setTime(left.leaseExpiresAt)
    const atLeaseEnd = yield* call
    const replay = yield* call

    deepStrictEqual(
      Option.map(failureOf(whileAlive), (error) => error._tag),
      Option.some("RequestInProgress")
    )
    deepStrictEqual([left.status, left.response, left.attempts], ["processing", Option.none(), 1])
    deepStrictEqual(
      failureOf(beforeLeaseEnd),
      Option.some({ _tag: "RequestInProgress", key, leaseExpiresAt: left.leaseExpiresAt })
    )
    deepStrictEqual([atLeaseEnd, replay, yield* Ref.get(runs)], [Exit.succeed("summary"), Exit.succeed("summary"), 1])
    const taken = Option.getOrThrow(yield* store.get(key, left.leaseExpiresAt))
    deepStrictEqual([taken.status, taken.response, taken.attempts], ["succeeded", Option.some('"summary"'), 2])
  })

describe("a SIGKILLed owner on a SQLite file", () => {
  it.scoped("holds the key until its lease ends; then another process takes over and runs once", () =>
    Effect.gen(function* () {
      const db = join(yield* tempDir, "store.db")
      const child = yield* spawnOwner(db)
      deepStrictEqual(yield* nextMessage(child), { started: true })

      yield* Effect.provide(afterStart(child), sqliteStore(db))
    })
  )
})
