/**
 * Model-based property test of the engine: random schedules of calls (failing fast or waiting, succeeding,
 * failing fatally or retryably, dying), crashes (interrupting a caller), crashed processes (a claim left
 * behind by an owner that never comes back), clock advances and purges, over three keys, on the memory store
 * and on a SQLite file.
 *
 * Invariants:
 * 1. per key, the effect's side effect happens at most once per ttl window: a side effect only happens after
 *    the record of the previous one has expired;
 * 2. every completed call (value or stored fatal error) returns what the run of its window stored first.
 */
import { describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Data,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schema,
  TestClock,
  TestContext
} from "effect"
import fc from "fast-check"
import * as Fingerprint from "../src/Fingerprint.js"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { stores } from "./fixtures/idempotencyStores.js"

const ttl = 60_000
const lease = 5_000
const keys = ["order:0", "order:1", "order:2"] as const
const request = { action: "charge", amount: 42 }

type Op =
  | {
      readonly _tag: "Execute"
      readonly key: number
      readonly mode: "fail" | "wait"
      readonly millis: number
      readonly result: "ok" | "fatal" | "retryable" | "defect"
    }
  | { readonly _tag: "Crash"; readonly pick: number }
  | { readonly _tag: "CrashedProcess"; readonly key: number }
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Purge" }

const keyIndex = fc.integer({ min: 0, max: keys.length - 1 })

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      _tag: fc.constant("Execute" as const),
      key: keyIndex,
      mode: fc.constantFrom("fail" as const, "wait" as const),
      // Up to 12 s, longer than the lease: only heartbeats keep such a run's claim.
      millis: fc.integer({ min: 0, max: 48 }).map((n) => n * 250),
      result: fc.constantFrom("ok" as const, "ok" as const, "fatal" as const, "retryable" as const, "defect" as const)
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Crash" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("CrashedProcess" as const), key: keyIndex }) },
  {
    weight: 3,
    arbitrary: fc.record({
      _tag: fc.constant("Advance" as const),
      millis: fc.constantFrom(100, 1_000, 2_500, 6_000, 30_000, 61_000)
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Purge" as const) }) }
)

const Result = Schema.Struct({ run: Schema.Number })

class Fatal extends Schema.TaggedError<Fatal>()("Fatal", { run: Schema.Number }) {}

class Retryable extends Data.TaggedError("Retryable")<{}> {}

/** One side effect: the run of call number `run` on `key`, started at `startedAt`, in a record that expires at `windowEnd`. */
interface SideEffect {
  readonly run: number
  readonly key: string
  readonly startedAt: number
  readonly windowEnd: number
}

interface Call {
  readonly key: string
  readonly fiber: Fiber.RuntimeFiber<readonly [Exit.Exit<{ readonly run: number }, unknown>, number]>
}

const check = (condition: boolean, message: string) => {
  if (!condition) throw new Error(message)
}

const scenario = (ops: ReadonlyArray<Op>) =>
  Effect.gen(function* () {
    const store = yield* IdempotencyStore.IdempotencyStore
    const sideEffects = yield* Ref.make<ReadonlyArray<SideEffect>>([])
    const calls: Array<Call> = []

    /** The effect of call `run`: works for `millis`, then commits its side effect and its result at once. */
    const work = (run: number, key: string, millis: number, result: Extract<Op, { _tag: "Execute" }>["result"]) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const record = yield* store.get(key, startedAt)
        const windowEnd = Option.getOrThrow(record).expiresAt
        yield* Effect.sleep(Duration.millis(millis))

        if (result === "retryable") return yield* Effect.fail(new Retryable())
        if (result === "defect") return yield* Effect.die("boom")
        return yield* Effect.uninterruptible(
          Effect.zipRight(
            Ref.update(sideEffects, (all) => [...all, { run, key, startedAt, windowEnd }]),
            result === "ok" ? Effect.succeed({ run }) : Effect.fail(new Fatal({ run }))
          )
        )
      })

    for (const [index, step] of ops.entries()) {
      switch (step._tag) {
        case "Execute": {
          const key = keys[step.key]!
          const call = Idempotency.execute(work(calls.length, key, step.millis, step.result), {
            key,
            request,
            success: Result,
            failure: Fatal,
            isFatal: (error) => error instanceof Fatal,
            ttl: Duration.millis(ttl),
            lease: Duration.millis(lease),
            heartbeat: Duration.millis(lease / 3),
            onInProgress: step.mode
          })
          const fiber = yield* Effect.fork(Effect.zip(Effect.exit(call), Clock.currentTimeMillis))
          calls.push({ key, fiber })
          break
        }
        case "Crash": {
          const running = yield* Effect.filter(calls, (call) => Effect.map(Fiber.poll(call.fiber), Option.isNone))
          if (running.length > 0) yield* Fiber.interrupt(running[step.pick % running.length]!.fiber)
          break
        }
        case "CrashedProcess": {
          const now = yield* Clock.currentTimeMillis
          yield* store.claim({
            key: keys[step.key]!,
            requestHash: Fingerprint.hash(request),
            owner: `crashed-process-${index}`,
            now,
            leaseExpiresAt: now + lease,
            expiresAt: now + ttl
          })
          break
        }
        case "Advance":
          yield* TestClock.adjust(Duration.millis(step.millis))
          break
        case "Purge":
          yield* IdempotencyStore.purgeExpired
          break
      }
    }

    for (let round = 0; round < 30; round++) {
      const running = yield* Effect.filter(calls, (call) => Effect.map(Fiber.poll(call.fiber), Option.isNone))
      if (running.length === 0) break
      yield* TestClock.adjust("1 minute")
    }
    // A caller crashed before it began has no exit of its own: its fiber's interruption stands for it.
    const outcomes = yield* Effect.forEach(calls, (call) =>
      Effect.map(Fiber.await(call.fiber), (exit) =>
        Exit.isSuccess(exit) ? exit.value : ([Exit.failCause(exit.cause), Number.NaN] as const)
      )
    )
    const logged = yield* Ref.get(sideEffects)

    // A run whose caller was interrupted in the very instant its side effect committed is lost by Effect's
    // interruption model itself (the value never reaches the engine), so the engine releases the key.
    const interruptedRuns = new Set(outcomes.flatMap(([exit], run) => (Exit.isInterrupted(exit) ? [run] : [])))
    const counted = logged.filter((sideEffect) => !interruptedRuns.has(sideEffect.run))

    for (const key of keys) {
      const ofKey = counted.filter((sideEffect) => sideEffect.key === key).sort((a, b) => a.startedAt - b.startedAt)
      for (let i = 1; i < ofKey.length; i++) {
        check(
          ofKey[i]!.startedAt >= ofKey[i - 1]!.windowEnd,
          `${key}: run ${ofKey[i]!.run} started at ${ofKey[i]!.startedAt}, inside the window of run ` +
            `${ofKey[i - 1]!.run} (until ${ofKey[i - 1]!.windowEnd})`
        )
      }
    }

    const byRun = new Map(logged.map((sideEffect) => [sideEffect.run, sideEffect]))
    outcomes.forEach(([exit, finishedAt], index) => {
      const key = calls[index]!.key
      const answered = Exit.isSuccess(exit)
        ? Option.some(exit.value.run)
        : Option.flatMap(Cause.failureOption(exit.cause), (error) =>
            error instanceof Fatal ? Option.some(error.run) : Option.none()
          )
      if (Exit.isFailure(exit) && Option.isNone(answered)) {
        const error = Cause.failureOption(exit.cause)
        const allowed = Option.match(error, {
          onNone: () => Cause.isInterruptedOnly(exit.cause) || Cause.isDie(exit.cause),
          onSome: (e) => e instanceof Retryable || e instanceof Idempotency.RequestInProgress
        })
        check(allowed, `call ${index} on ${key} failed unexpectedly: ${Cause.pretty(exit.cause)}`)
        return
      }
      const run = Option.getOrThrow(answered)
      const stored = byRun.get(run)
      check(
        stored !== undefined && stored.key === key,
        `call ${index} on ${key} answered with run ${run}, never stored`
      )
      check(
        finishedAt < stored!.windowEnd,
        `call ${index} on ${key} answered at ${finishedAt} with run ${run}, whose record expired at ${stored!.windowEnd}`
      )
    })
  })

describe.each(stores)("Idempotency.execute model over %s", (_, layer) => {
  it(
    "per key: at most one side effect per ttl window, and every completed call returns the stored first",
    () =>
      fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) =>
          Effect.runPromise(
            scenario(ops).pipe(Effect.provide(Layer.merge(layer, TestContext.TestContext)), Effect.orDie)
          )
        ),
        { numRuns: 50 }
      ),
    120_000
  )
})
