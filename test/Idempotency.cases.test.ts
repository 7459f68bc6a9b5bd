/**
 * The fault cases of /work/shared/cases that concern the engine, each with its literal expected values, over
 * the memory store and the SQL store on a SQLite file.
 */
import { describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Option, Ref, Schema, TestClock } from "effect"
import * as CallError from "../src/CallError.js"
import * as Fingerprint from "../src/Fingerprint.js"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { stores } from "./fixtures/idempotencyStores.js"

const Answer = Schema.Struct({ text: Schema.String })
const key = "chatmsg:conv_782:msg_991"
const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Plan my week" }] }

const recordOf = (k: string) =>
  Effect.flatMap(IdempotencyStore.IdempotencyStore, (store) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.get(k, now))
  )

/** An error's own fields (with its `_tag`): errors that went through a fiber also carry its span. */
const fields = (error: object) => Object.fromEntries(Object.entries(error))

/** The tag and owner-free fields of the error an exit failed with. */
const failureOf = <A, E extends object>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit)
    ? Option.map(Cause.failureOption(exit.cause), (error) => {
        const { owner: _, ...rest } = fields(error)
        return rest
      })
    : Option.none()

describe.each(stores)("fault cases over %s", (_, layer) => {
  it.effect(
    "stuck-in-progress: a killed owner's 30 s claim gives RequestInProgress before 30 s and a takeover at 30 s",
    () =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore.IdempotencyStore
        const runs = yield* Ref.make(0)
        const options = { key, request, success: Answer, lease: Duration.seconds(30) }
        const work = Effect.map(
          Ref.updateAndGet(runs, (n) => n + 1),
          (n) => ({ text: `run ${n}` })
        )

        // What a process killed mid-effect leaves behind: its claim, and nothing else.
        yield* store.claim({
          key,
          requestHash: Fingerprint.hash(request),
          owner: "killed-process",
          now: 0,
          leaseExpiresAt: 30_000,
          expiresAt: 86_400_000
        })

        yield* TestClock.adjust(Duration.millis(29_999))
        const early = yield* Effect.exit(Idempotency.execute(work, options))
        yield* TestClock.adjust(Duration.millis(1))
        const taken = yield* Idempotency.execute(work, options)
        const lateWrite = yield* Effect.exit(
          store.complete({ key, owner: "killed-process", now: 31_000, response: '{"text":"late"}' })
        )

        deepStrictEqual(failureOf(early), Option.some({ _tag: "RequestInProgress", key, leaseExpiresAt: 30_000 }))
        deepStrictEqual([taken, yield* Ref.get(runs)], [{ text: "run 1" }, 1])
        deepStrictEqual(failureOf(lateWrite), Option.some({ _tag: "LeaseLost", key, operation: "complete" }))
        const record = Option.getOrThrow(yield* recordOf(key))
        deepStrictEqual(
          [record.status, record.response, record.attempts],
          ["succeeded", Option.some('{"text":"run 1"}'), 2]
        )
      }).pipe(Effect.provide(layer))
  )

  it.effect(
    "non-owner-release: A (lease 10 s) runs 12 s, B takes over at 10 s, A's write is refused, C replays B",
    () =>
      Effect.gen(function* () {
        const runs = yield* Ref.make<ReadonlyArray<string>>([])
        const run = (who: string, after: Duration.DurationInput) =>
          Effect.sleep(after).pipe(
            Effect.zipRight(Ref.update(runs, (all) => [...all, who])),
            Effect.as({ text: `answer from ${who}` })
          )
        // A stalls without heartbeats (a long GC pause, a frozen VM): its lease runs out while it works.
        const options = { key, request, success: Answer, lease: Duration.seconds(10), heartbeat: Duration.infinity }

        const a = yield* Effect.fork(Idempotency.execute(run("A", "12 seconds"), options))
        yield* TestClock.adjust("10 seconds")
        const b = yield* Idempotency.execute(run("B", 0), options)
        yield* TestClock.adjust("2 seconds")
        const aExit = yield* Fiber.await(a)
        const c = yield* Idempotency.execute(run("C", 0), options)

        deepStrictEqual(failureOf(aExit), Option.some({ _tag: "LeaseLost", key, operation: "complete" }))
        deepStrictEqual(
          [b, c, yield* Ref.get(runs)],
          [{ text: "answer from B" }, { text: "answer from B" }, ["B", "A"]]
        )
        const record = Option.getOrThrow(yield* recordOf(key))
        deepStrictEqual([record.status, record.response], ["succeeded", Option.some('{"text":"answer from B"}')])
      }).pipe(Effect.provide(layer))
  )

  it.effect("non-owner-release: A's release after a retryable failure at 12 s leaves B's claim standing", () =>
    Effect.gen(function* () {
      const options = { key, request, success: Answer, lease: Duration.seconds(10), heartbeat: Duration.infinity }
      const bStarted = yield* Deferred.make<void>()
      const bFinish = yield* Deferred.make<void>()

      const a = yield* Effect.fork(
        Idempotency.execute(
          Effect.zipRight(Effect.sleep("12 seconds"), Effect.fail(CallError.fromResponse({ status: 503 }))),
          options
        )
      )
      yield* TestClock.adjust("10 seconds")
      const b = yield* Effect.fork(
        Idempotency.execute(
          Deferred.succeed(bStarted, undefined).pipe(
            Effect.zipRight(Deferred.await(bFinish)),
            Effect.as({ text: "answer from B" })
          ),
          options
        )
      )
      yield* Deferred.await(bStarted)
      yield* TestClock.adjust("2 seconds")
      const aExit = yield* Fiber.await(a)

      deepStrictEqual(
        Option.map(failureOf(aExit), (error) => error._tag),
        Option.some("ServerError")
      )
      const held = Option.getOrThrow(yield* recordOf(key))
      deepStrictEqual([held.status, held.attempts], ["processing", 2])
      yield* Deferred.succeed(bFinish, undefined)
      deepStrictEqual(yield* Fiber.join(b), { text: "answer from B" })
      deepStrictEqual(yield* Idempotency.execute(Effect.succeed({ text: "answer from C" }), options), {
        text: "answer from B"
      })
    }).pipe(Effect.provide(layer))
  )

  it.effect("simultaneous-first-use, wait mode: 50 fibers, a 200 ms effect, one run, 50 equal answers", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const work = Ref.updateAndGet(runs, (n) => n + 1).pipe(
        Effect.tap(() => Effect.sleep("200 millis")),
        Effect.map((n) => ({ text: `run ${n}` }))
      )
      const call = Idempotency.execute(work, { key, request, success: Answer, onInProgress: "wait" })

      const all = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 50 }, () => call),
          { concurrency: "unbounded" }
        )
      )
      yield* TestClock.adjust("200 millis")
      yield* TestClock.adjust("1 second")
      const answers = yield* Fiber.join(all)

      deepStrictEqual(
        answers,
        Array.from({ length: 50 }, () => ({ text: "run 1" }))
      )
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect("simultaneous-first-use, fail mode: one run, 49 RequestInProgress with the lease end", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const work = Ref.updateAndGet(runs, (n) => n + 1).pipe(
        Effect.tap(() => Effect.sleep("200 millis")),
        Effect.map((n) => ({ text: `run ${n}` }))
      )
      const call = Effect.either(Idempotency.execute(work, { key, request, success: Answer }))

      const all = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 50 }, () => call),
          { concurrency: "unbounded" }
        )
      )
      yield* TestClock.adjust("200 millis")
      const outcomes = yield* Fiber.join(all)

      const answers = outcomes.filter(Either.isRight).map((outcome) => outcome.right)
      const refusals = outcomes.filter(Either.isLeft).map((outcome) => fields(outcome.left))
      deepStrictEqual(answers, [{ text: "run 1" }])
      deepStrictEqual(
        refusals,
        Array.from({ length: 49 }, () => ({ _tag: "RequestInProgress", key, leaseExpiresAt: 300_000 }))
      )
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect('key-order: reordered object keys replay; 1 vs "1" and a reordered array are other requests', () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const work = Effect.map(
        Ref.updateAndGet(runs, (n) => n + 1),
        (n) => ({ text: `run ${n}` })
      )
      const call = (body: unknown) => Effect.either(Idempotency.execute(work, { key, request: body, success: Answer }))

      const first = yield* call(JSON.parse('{"name":"A","addr":{"street":"S","no":1}}'))
      const reordered = yield* call(JSON.parse('{"addr":{"no":1,"street":"S"},"name":"A"}'))
      const stringNumber = yield* call(JSON.parse('{"name":"A","addr":{"street":"S","no":"1"}}'))
      const arrays = yield* Effect.all([
        Effect.either(Idempotency.execute(work, { key: "k:list", request: { tags: ["a", "b"] }, success: Answer })),
        Effect.either(Idempotency.execute(work, { key: "k:list", request: { tags: ["b", "a"] }, success: Answer }))
      ])

      deepStrictEqual([first, reordered], [Either.right({ text: "run 1" }), Either.right({ text: "run 1" })])
      deepStrictEqual(
        Either.mapLeft(stringNumber, fields),
        Either.left({
          _tag: "PayloadMismatch",
          key,
          storedHash: Fingerprint.hash({ name: "A", addr: { street: "S", no: 1 } }),
          requestHash: Fingerprint.hash({ name: "A", addr: { street: "S", no: "1" } })
        })
      )
      deepStrictEqual(
        arrays.map((outcome) => (Either.isRight(outcome) ? outcome.right.text : outcome.left._tag)),
        ["run 2", "PayloadMismatch"]
      )
      strictEqual(yield* Ref.get(runs), 2)
    }).pipe(Effect.provide(layer))
  )
})
