/**
 * Accepted vs completed: `submit` starts the work and returns, `poll` reads the record, `await` waits for it.
 */
import { describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Ref, Schema, TestClock } from "effect"
import * as CallError from "../src/CallError.js"
import * as Fingerprint from "../src/Fingerprint.js"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { stores } from "./fixtures/idempotencyStores.js"

const Report = Schema.Struct({ month: Schema.String, total: Schema.BigInt })
const key = "report:2024-06"
const request = { month: "2024-06" }

/** An error's own fields (with its `_tag`): errors that went through a fiber also carry its span. */
const fields = (error: object) => Object.fromEntries(Object.entries(error))

const failureOf = <A, E extends object>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.map(Cause.failureOption(exit.cause), fields) : Option.none()

/** Work that starts, then waits for `finish`, counting its runs. */
const gated = Effect.gen(function* () {
  const started = yield* Deferred.make<void>()
  const finish = yield* Deferred.make<void>()
  const runs = yield* Ref.make(0)
  const work = Ref.update(runs, (n) => n + 1).pipe(
    Effect.zipRight(Deferred.succeed(started, undefined)),
    Effect.zipRight(Deferred.await(finish)),
    Effect.as({ month: "2024-06", total: 1_234n })
  )
  return { started, finish, runs, work }
})

describe.each(stores)("Idempotency.submit / poll / await over %s", (_, layer) => {
  it.scoped("submit returns Processing at once; await and poll give the value later, without a second run", () =>
    Effect.gen(function* () {
      const { started, finish, runs, work } = yield* gated

      const accepted = yield* Idempotency.submit(work, { key, request, success: Report })
      yield* Deferred.await(started)
      const polledEarly = yield* Idempotency.poll(key, { success: Report })

      const waiting = yield* Effect.fork(Idempotency.await(key, { success: Report }))
      yield* TestClock.adjust("1 second")
      assertTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* Deferred.succeed(finish, undefined)
      yield* TestClock.adjust("1 second")

      const awaited = yield* Fiber.join(waiting)
      const polledLate = yield* Idempotency.poll(key, { success: Report })
      const resubmitted = yield* Idempotency.submit(work, { key, request, success: Report })

      deepStrictEqual(accepted, { _tag: "Processing", leaseExpiresAt: 300_000 })
      deepStrictEqual(polledEarly, Option.some({ _tag: "Processing", leaseExpiresAt: 300_000 }))
      deepStrictEqual(awaited, { month: "2024-06", total: 1_234n })
      deepStrictEqual(polledLate, Option.some({ _tag: "Succeeded", value: { month: "2024-06", total: 1_234n } }))
      deepStrictEqual(resubmitted, { _tag: "Succeeded", value: { month: "2024-06", total: 1_234n } })
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.scoped("a stored fatal failure reads back as Failed, and await fails with it", () =>
    Effect.gen(function* () {
      const rejected = CallError.fromResponse({ status: 422 })
      const options = { key, request, success: Report, failure: CallError.CallError }

      yield* Idempotency.submit(Effect.fail(rejected), options)
      yield* TestClock.adjust("1 millis")

      const polled = yield* Idempotency.poll(key, options)
      const awaited = yield* Effect.exit(Idempotency.await(key, options))
      const resubmitted = yield* Idempotency.submit(Effect.die("must not run"), options)

      deepStrictEqual(
        Option.map(polled, (outcome) => (outcome._tag === "Failed" ? fields(outcome.error) : outcome._tag)),
        Option.some(fields(rejected))
      )
      deepStrictEqual(failureOf(awaited), Option.some(fields(rejected)))
      deepStrictEqual(resubmitted._tag === "Failed" ? fields(resubmitted.error) : resubmitted, fields(rejected))
    }).pipe(Effect.provide(layer))
  )

  it.scoped("submit while another caller holds the key reports its lease and runs nothing", () =>
    Effect.gen(function* () {
      const { started, runs, work } = yield* gated
      yield* Idempotency.submit(work, { key, request, success: Report, lease: "1 minute" })
      yield* Deferred.await(started)
      yield* TestClock.adjust("10 seconds")

      const second = yield* Idempotency.submit(work, { key, request, success: Report })
      const mismatch = yield* Effect.exit(
        Idempotency.submit(work, { key, request: { month: "2024-07" }, success: Report })
      )

      deepStrictEqual(second, { _tag: "Processing", leaseExpiresAt: 60_000 })
      deepStrictEqual(
        failureOf(mismatch),
        Option.some({
          _tag: "PayloadMismatch",
          key,
          storedHash: Fingerprint.hash(request),
          requestHash: Fingerprint.hash({ month: "2024-07" })
        })
      )
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect("closing the scope that holds submitted work interrupts it and releases the key", () =>
    Effect.gen(function* () {
      const { started, runs, work } = yield* gated
      const interrupted = yield* Deferred.make<void>()

      const accepted = yield* Effect.scoped(
        Effect.gen(function* () {
          const outcome = yield* Idempotency.submit(
            Effect.onInterrupt(work, () => Deferred.succeed(interrupted, undefined)),
            { key, request, success: Report }
          )
          yield* Deferred.await(started)
          return outcome
        })
      )
      yield* Deferred.await(interrupted)

      deepStrictEqual(accepted, { _tag: "Processing", leaseExpiresAt: 300_000 })
      deepStrictEqual(yield* Idempotency.poll(key, { success: Report }), Option.none())
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect("await fails with RequestNotFound for an unknown key, and poll gives None", () =>
    Effect.gen(function* () {
      const awaited = yield* Effect.exit(Idempotency.await("report:unknown", { success: Report }))

      deepStrictEqual(failureOf(awaited), Option.some({ _tag: "RequestNotFound", key: "report:unknown" }))
      deepStrictEqual(yield* Idempotency.poll("report:unknown", { success: Report }), Option.none())
    }).pipe(Effect.provide(layer))
  )

  it.scoped("await gives up with RequestInProgress after waitTimeout, or at once when the owner's lease lapsed", () =>
    Effect.gen(function* () {
      const store = yield* IdempotencyStore.IdempotencyStore
      const { started, work } = yield* gated
      yield* Idempotency.submit(work, { key, request, success: Report })
      yield* Deferred.await(started)
      yield* store.claim({
        key: "report:abandoned",
        requestHash: "h",
        owner: "crashed",
        now: 0,
        leaseExpiresAt: 1_000,
        expiresAt: 86_400_000
      })

      const waiting = yield* Effect.fork(Idempotency.await(key, { success: Report, waitTimeout: "5 seconds" }))
      yield* TestClock.adjust("4999 millis")
      assertTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* TestClock.adjust("1 millis")
      const timedOut = yield* Fiber.await(waiting)
      const abandoned = yield* Effect.exit(Idempotency.await("report:abandoned", { success: Report }))

      deepStrictEqual(failureOf(timedOut), Option.some({ _tag: "RequestInProgress", key, leaseExpiresAt: 300_000 }))
      deepStrictEqual(
        failureOf(abandoned),
        Option.some({ _tag: "RequestInProgress", key: "report:abandoned", leaseExpiresAt: 1_000 })
      )
    }).pipe(Effect.provide(layer))
  )

  it.scoped("submit takes over a lapsed claim in the background", () =>
    Effect.gen(function* () {
      const store = yield* IdempotencyStore.IdempotencyStore
      yield* store.claim({
        key,
        requestHash: Fingerprint.hash(request),
        owner: "crashed",
        now: 0,
        leaseExpiresAt: 1_000,
        expiresAt: 86_400_000
      })
      yield* TestClock.adjust("1 second")

      const accepted = yield* Idempotency.submit(Effect.succeed({ month: "2024-06", total: 7n }), {
        key,
        request,
        success: Report
      })
      const waiting = yield* Effect.fork(Idempotency.await(key, { success: Report }))
      yield* TestClock.adjust("1 second")
      const value = yield* Fiber.join(waiting)

      deepStrictEqual(
        [accepted, value],
        [
          { _tag: "Processing", leaseExpiresAt: 301_000 },
          { month: "2024-06", total: 7n }
        ]
      )
    }).pipe(Effect.provide(layer))
  )
})
