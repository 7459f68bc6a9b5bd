import { assert, describe, it } from "@effect/vitest"
import { assertFalse, assertTrue, deepStrictEqual, notDeepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Duration, Effect, Exit, Fiber, Option, Random, Ref, Schedule, TestClock } from "effect"
import * as fc from "fast-check"
import * as CallError from "../src/CallError.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import { delaysOf } from "./retryHelpers.js"

const rateLimited = (headers: Record<string, string> = {}) => CallError.fromResponse({ status: 429, headers })
const serverError = CallError.fromResponse({ status: 503 })
const times = <A>(n: number, a: A): ReadonlyArray<A> => Array.from({ length: n }, () => a)

/** Just below 1: the largest double a `Random.next` can return. */
const almostOne = 1 - Number.EPSILON / 2

/** A call that fails with `error` every time and records the Clock time of each attempt. */
const failing = (error: unknown) =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make<ReadonlyArray<number>>([])
    const call = Effect.flatMap(TestClock.currentTimeMillis, (now) =>
      Effect.zipRight(
        Ref.update(attempts, (all) => [...all, now]),
        Effect.fail(error)
      )
    )
    return { call, attempts: Ref.get(attempts) }
  })

describe("RetryPolicy.backoffDelays", () => {
  it("states whole sequences for each jitter kind", () => {
    deepStrictEqual(
      RetryPolicy.backoffDelays({ jitter: "none" }, times(7, 0)),
      [500, 1000, 2000, 4000, 8000, 8000, 8000]
    )
    deepStrictEqual(RetryPolicy.backoffDelays({ jitter: "full" }, times(6, 0.5)), [250, 500, 1000, 2000, 4000, 4000])
    deepStrictEqual(RetryPolicy.backoffDelays({ jitter: "equal" }, times(6, 0.5)), [375, 750, 1500, 3000, 6000, 6000])
    deepStrictEqual(
      RetryPolicy.backoffDelays({ jitter: "decorrelated" }, times(6, 0.5)),
      [1000, 1750, 2875, 4562, 7093, 8000]
    )
    deepStrictEqual(
      RetryPolicy.backoffDelays({ base: "1 second", factor: 3, cap: "1 minute", jitter: "none" }, times(6, 0)),
      [1000, 3000, 9000, 27000, 60000, 60000]
    )
    deepStrictEqual(RetryPolicy.backoffDelays({ factor: 1, jitter: "none" }, times(3, 0)), [500, 500, 500])
  })

  it("jitter-bounds case: base 100 ms, cap 400 ms, draws at 0 and just below 1, stay in [0, 400]", () => {
    const options = { base: "100 millis", cap: "400 millis" } as const
    const sequences = (["none", "full", "equal", "decorrelated"] as const).map((jitter) => [
      jitter,
      RetryPolicy.backoffDelays({ ...options, jitter }, times(5, 0)),
      RetryPolicy.backoffDelays({ ...options, jitter }, times(5, almostOne))
    ])
    deepStrictEqual(sequences, [
      ["none", [100, 200, 400, 400, 400], [100, 200, 400, 400, 400]],
      ["full", [0, 0, 0, 0, 0], [99, 199, 399, 399, 399]],
      // t/2 + r·t/2 with r = 1 − 2⁻⁵³ rounds to t itself: the cap is reached, never passed
      ["equal", [50, 100, 200, 200, 200], [100, 200, 400, 400, 400]],
      ["decorrelated", [100, 100, 100, 100, 100], [300, 400, 400, 400, 400]]
    ])
  })

  it("clamps draws outside [0, 1) and an enormous attempt number", () => {
    const delay = RetryPolicy.backoffDelay({ base: "100 millis", cap: "400 millis", jitter: "full" })
    deepStrictEqual(
      [-1, 2, Number.NaN].map((random) => Duration.toMillis(delay(1, random))),
      [0, 200, 0]
    )
    strictEqual(Duration.toMillis(RetryPolicy.backoffDelay({ jitter: "none" })(5000, 0)), 8000)
    strictEqual(Duration.toMillis(RetryPolicy.backoffDelay({ base: 0, jitter: "none" })(5000, 0)), 0)
  })
})

describe("RetryPolicy properties", () => {
  const kind = fc.constantFrom("none" as const, "full" as const, "equal" as const, "decorrelated" as const)
  const shape = fc
    .record({
      base: fc.integer({ min: 0, max: 10_000 }),
      extra: fc.integer({ min: 0, max: 100_000 }),
      factor: fc.double({ min: 1, max: 4, noNaN: true })
    })
    .map(({ base, extra, factor }) => ({ base, cap: base + extra, factor }))

  it("every delay is in [0, cap], for any base, cap, factor, kind, attempt and draw", () => {
    fc.assert(
      fc.property(
        shape,
        kind,
        fc.array(fc.double({ min: 0, max: almostOne, noNaN: true }), { maxLength: 40 }),
        (s, jitter, randoms) => {
          const delays = RetryPolicy.backoffDelays({ ...s, jitter }, randoms)
          return delays.every((d) => d >= 0 && d <= s.cap && Number.isInteger(d))
        }
      )
    )
  })

  it("without jitter, each delay is factor × the previous (rounded down) until the cap", () => {
    fc.assert(
      fc.property(shape, fc.integer({ min: 1, max: 60 }), (s, n) => {
        const delays = RetryPolicy.backoffDelays({ ...s, jitter: "none" }, times(n, 0))
        return delays.every((d, i) => {
          const exact = s.base * Math.pow(s.factor, i)
          return (
            d === (exact >= s.cap ? s.cap : Math.floor(exact)) &&
            (i === 0 || d >= Math.min(s.cap, Math.floor(delays[i - 1]! * s.factor)))
          )
        })
      })
    )
  })

  it("for any seed, the schedule's delays are in [0, cap]", () => {
    fc.assert(
      fc.property(shape, kind, fc.integer(), fc.integer({ min: 0, max: 30 }), (s, jitter, seed, n) => {
        const delays = Effect.runSync(
          delaysOf(RetryPolicy.backoff({ ...s, jitter }), times(n, serverError)).pipe(
            Effect.withRandom(Random.make(seed))
          )
        )
        return delays.length === n && delays.every((d) => d >= 0 && d <= s.cap)
      })
    )
  })
})

describe("RetryPolicy.make", () => {
  it.effect("the same seeded Random gives the same delays; another seed gives others", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ maxRetries: 6 })
      const run = (seed: number) => delaysOf(policy, times(10, serverError)).pipe(Effect.withRandom(Random.make(seed)))

      const first = yield* run(42)
      const again = yield* run(42)
      const other = yield* run(7)

      deepStrictEqual(first, again)
      strictEqual(first.length, 6)
      notDeepStrictEqual(first, other)
      assertTrue(first.every((d, i) => d >= 0 && d <= Math.min(8000, 500 * 2 ** i)))
    })
  )

  it.effect("retries maxRetries times with the backoff, measured on the TestClock", () =>
    Effect.gen(function* () {
      const { call, attempts } = yield* failing(serverError)

      const fiber = yield* Effect.fork(Effect.retry(call, RetryPolicy.make({ jitter: "none" })))
      yield* TestClock.adjust("1 minute")
      const exit = yield* Fiber.await(fiber)

      deepStrictEqual(yield* attempts, [0, 500, 1500, 3500])
      deepStrictEqual(exit, Exit.fail(serverError))
    })
  )

  it.effect("never retries a fatal error, an exhausted one or something that is not a CallError", () =>
    Effect.gen(function* () {
      const errors = [
        CallError.fromResponse({ status: 400 }),
        CallError.fromResponse({ status: 401 }),
        CallError.fromResponse({ status: 503, headers: { "x-should-retry": "false" } }),
        CallError.markExhausted(serverError),
        new Error("boom"),
        "ECONNRESET"
      ]
      const counts: Array<number> = []
      for (const error of errors) {
        const { call, attempts } = yield* failing(error)
        const fiber = yield* Effect.fork(Effect.retry(call, RetryPolicy.make()))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.await(fiber)
        counts.push((yield* attempts).length)
      }
      deepStrictEqual(counts, [1, 1, 1, 1, 1, 1])
    })
  )

  it.effect("retryOn replaces the predicate", () =>
    Effect.gen(function* () {
      const { call, attempts } = yield* failing("flaky")

      const fiber = yield* Effect.fork(
        Effect.retry(call, RetryPolicy.make({ maxRetries: 2, jitter: "none", retryOn: (e: unknown) => e === "flaky" }))
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.await(fiber)

      deepStrictEqual(yield* attempts, [0, 500, 1500])
    })
  )

  it.effect("waits at least Retry-After, past the backoff cap, plus a small spread", () =>
    Effect.gen(function* () {
      const error = rateLimited({ "retry-after": "10" })
      const { call, attempts } = yield* failing(error)

      const fiber = yield* Effect.fork(
        Effect.retry(call, RetryPolicy.make({ maxRetries: 1, cap: "2 seconds" })).pipe(
          Effect.withRandom(Random.make(1))
        )
      )
      yield* TestClock.adjust("9999 millis")
      const before = yield* attempts
      yield* TestClock.adjust("1 minute")
      yield* Fiber.await(fiber)
      const [, second] = yield* attempts

      deepStrictEqual(before, [0])
      assertTrue(second! >= 10_000 && second! <= 11_000, `second attempt at ${second}`)
    })
  )

  it.effect("http-date case: a 503 with Retry-After 30 s ahead waits about 30 s; a past date waits the backoff", () =>
    Effect.gen(function* () {
      const now = Date.UTC(2026, 8, 11, 12, 0, 0)
      const ahead = CallError.fromResponse({
        status: 503,
        headers: { "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT" },
        now
      })
      const past = CallError.fromResponse({
        status: 503,
        headers: { "retry-after": "Fri, 11 Sep 2026 11:00:00 GMT" },
        now
      })
      const policy = RetryPolicy.make({ maxRetries: 1, jitter: "none" })

      const waits = yield* Effect.all([delaysOf(policy, [ahead, ahead]), delaysOf(policy, [past, past])]).pipe(
        Effect.withRandom(Random.make(3))
      )

      strictEqual(waits[0].length, 1)
      assertTrue(waits[0][0]! >= 30_000 && waits[0][0]! <= 31_000, `waited ${waits[0][0]}`)
      deepStrictEqual(waits[1], [500])
    })
  )

  it.effect("a zero Retry-After is a real zero: the backoff applies", () =>
    Effect.gen(function* () {
      const waits = yield* delaysOf(RetryPolicy.make({ jitter: "none" }), times(4, rateLimited({ "retry-after": "0" })))
      deepStrictEqual(waits, [500, 1000, 2000])
    })
  )

  it.effect("a Retry-After above maxRetryAfter stops at once with the original error; exactly the limit waits", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ maxRetryAfter: "60 seconds", jitter: "none" })
      const atLimit = yield* delaysOf(policy, times(2, rateLimited({ "retry-after": "60" }))).pipe(
        Effect.withRandom(Random.make(5))
      )
      const aboveLimit = yield* delaysOf(policy, times(2, rateLimited({ "retry-after": "61" })))
      strictEqual(atLimit.length, 2)
      assertTrue(atLimit.every((d) => d >= 60_000 && d <= 61_000))
      deepStrictEqual(aboveLimit, [])

      const tooLong = rateLimited({ "retry-after": "3600" })
      const { call, attempts } = yield* failing(tooLong)
      const exit = yield* Effect.exit(Effect.retry(call, policy))
      deepStrictEqual(exit, Exit.fail(tooLong))
      deepStrictEqual(yield* attempts, [0])
    })
  )

  it.effect("a Retry-After longer than a day stops retrying too: the longer the wait asked, the fewer retries", () =>
    Effect.gen(function* () {
      const now = Date.UTC(2026, 0, 1, 12, 0, 0)
      const asked = [
        { "retry-after": "172800" },
        { "retry-after": "Sat, 03 Jan 2026 12:00:00 GMT" },
        { "x-ratelimit-reset-requests": "25h" },
        { "retry-after-ms": "1".repeat(400) }
      ]

      const attemptCounts = yield* Effect.forEach(asked, (headers) =>
        Effect.gen(function* () {
          const error = CallError.fromResponse({ status: 429, headers, now })
          const { call, attempts } = yield* failing(error)

          const fiber = yield* Effect.fork(Effect.exit(Effect.retry(call, RetryPolicy.make())))
          yield* TestClock.adjust(Duration.days(10))

          deepStrictEqual(yield* Fiber.join(fiber), Exit.fail(error))
          return (yield* attempts).length
        })
      )

      deepStrictEqual(attemptCounts, [1, 1, 1, 1])
    })
  )

  it.effect("a deadline stops before a retry whose wait would end after it", () =>
    Effect.gen(function* () {
      const { call, attempts } = yield* failing(serverError)

      const policy = RetryPolicy.make({ maxRetries: 10, base: "1 second", jitter: "none", deadline: "5 seconds" })
      const fiber = yield* Effect.fork(Effect.retry(call, policy))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.await(fiber)

      // waits 1 s and 2 s end at 3 s; the next 4 s would end at 7 s > 5 s
      deepStrictEqual(yield* attempts, [0, 1000, 3000])
    })
  )

  it.effect("abort-during-wait case: interrupting during a 3 s Retry-After ends at once, one request sent", () =>
    Effect.gen(function* () {
      const { call, attempts } = yield* failing(rateLimited({ "retry-after-ms": "3000" }))

      const fiber = yield* Effect.fork(Effect.retry(call, RetryPolicy.make()))
      yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.interrupt(fiber)
      const endedAt = yield* TestClock.currentTimeMillis
      yield* TestClock.adjust("1 minute")

      assertTrue(Exit.isInterrupted(exit))
      strictEqual(endedAt, 100)
      deepStrictEqual(yield* attempts, [0])
    })
  )

  it("rejects bad options when the policy is built, naming the option", () => {
    const cases: ReadonlyArray<readonly [RetryPolicy.Options, string]> = [
      [{ base: -1 }, "base"],
      [{ base: "-500 millis" }, "base"],
      [{ base: "half a second" as Duration.DurationInput }, "base"],
      [{ base: "2 seconds", cap: "1 second" }, "cap"],
      [{ cap: Duration.infinity }, "cap"],
      [{ maxRetries: -1 }, "maxRetries"],
      [{ maxRetries: 1.5 }, "maxRetries"],
      [{ maxRetries: Number.NaN }, "maxRetries"],
      [{ factor: 0.5 }, "factor"],
      [{ factor: Number.POSITIVE_INFINITY }, "factor"],
      [{ jitter: "random" as RetryPolicy.Jitter }, "jitter"],
      [{ maxRetryAfter: -5 }, "maxRetryAfter"],
      [{ deadline: "-1 seconds" }, "deadline"]
    ]
    const actual = cases.map(([options]) => {
      try {
        RetryPolicy.make(options)
        return [options, "accepted"] as const
      } catch (error) {
        assert.instanceOf(error, RetryPolicy.InvalidRetryPolicy)
        return [options, (error as RetryPolicy.InvalidRetryPolicy).option] as const
      }
    })
    deepStrictEqual(actual, cases)
    assert.throws(
      () => RetryPolicy.make({ base: "2 seconds", cap: "1 second" }),
      /cap = "1 second": must be at least base \(2s\)/
    )
  })

  it("accepts the edges: zero retries, zero base, cap equal to base, factor 1, infinite retries", () => {
    const edges: ReadonlyArray<RetryPolicy.Options> = [
      { maxRetries: 0 },
      { base: 0 },
      { base: "1 second", cap: "1 second" },
      { factor: 1 },
      { maxRetries: Infinity }
    ]
    for (const options of edges) {
      assertTrue(Schedule.isSchedule(RetryPolicy.make(options)))
    }
  })
})

describe("RetryPolicy pieces compose with Schedule combinators", () => {
  it.effect("backoff + recurs + whileRetryable + respectRetryAfter", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.backoff({ base: "100 millis", jitter: "none" }).pipe(
        Schedule.intersect(Schedule.recurs(3)),
        RetryPolicy.whileRetryable,
        RetryPolicy.respectRetryAfter({ maxRetryAfter: "5 seconds" })
      )

      const plain = yield* delaysOf(policy, times(10, serverError))
      const fatal = yield* delaysOf(policy, [serverError, CallError.fromResponse({ status: 404 }), serverError])
      const waits = yield* delaysOf(policy, [
        serverError,
        rateLimited({ "retry-after-ms": "20" }),
        serverError,
        serverError
      ])

      deepStrictEqual(plain, [100, 200, 400])
      deepStrictEqual(fatal, [100])
      deepStrictEqual(waits, [100, 200, 400])
    })
  )

  it.effect("withDeadline alone bounds any schedule", () =>
    Effect.gen(function* () {
      const waits = yield* delaysOf(
        Schedule.spaced("1 second").pipe(RetryPolicy.withDeadline("3500 millis")),
        times(10, 0)
      )
      deepStrictEqual(waits, [1000, 1000, 1000])
    })
  )
})

describe("RetryPolicy.retry", () => {
  it.effect("nested-storm case: an inner layer of 2 inside an outer of 5 sends 3 attempts, not 3 × 6", () =>
    Effect.gen(function* () {
      const { call, attempts } = yield* failing(rateLimited())

      const inner = RetryPolicy.retry(call, { maxRetries: 2 })
      const outer = RetryPolicy.retry(inner, { maxRetries: 5 })
      const fiber = yield* Effect.fork(Effect.flip(outer))
      yield* TestClock.adjust("1 hour")
      const error = yield* Fiber.join(fiber)

      strictEqual((yield* attempts).length, 3)
      strictEqual((error as CallError.CallError)._tag, "RateLimited")
      assertTrue((error as CallError.CallError).exhausted)
      assertFalse(CallError.isFatal(error))
    })
  )

  it.effect("leaves a fatal error unmarked and a success untouched", () =>
    Effect.gen(function* () {
      const fatal = CallError.fromResponse({ status: 400 })
      const error = yield* Effect.flip(RetryPolicy.retry(Effect.fail(fatal), { maxRetries: 2 }))
      const value = yield* RetryPolicy.retry(Effect.succeed(1), RetryPolicy.make())

      deepStrictEqual([error._tag, error.exhausted, error.status], ["BadRequest", false, Option.some(400)])
      strictEqual(value, 1)
    })
  )

  it.effect("a retry that succeeds returns the value", () =>
    Effect.gen(function* () {
      const count = yield* Ref.make(0)
      const call = Effect.flatMap(
        Ref.updateAndGet(count, (n) => n + 1),
        (n) => (n < 3 ? Effect.fail(serverError) : Effect.succeed(`answer after ${n}`))
      )

      const fiber = yield* Effect.fork(RetryPolicy.retry(call, { jitter: "none" }))
      yield* TestClock.adjust("10 seconds")

      strictEqual(yield* Fiber.join(fiber), "answer after 3")
      deepStrictEqual(Option.some(yield* Ref.get(count)), Option.some(3))
    })
  )
})
