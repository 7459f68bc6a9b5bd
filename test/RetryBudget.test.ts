import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect, Fiber, Metric, Ref, TestClock } from "effect"
import * as CallError from "../src/CallError.js"
import * as RetryBudget from "../src/RetryBudget.js"
import * as RetryPolicy from "../src/RetryPolicy.js"

const outage = CallError.fromResponse({ status: 429 })

const counter = Effect.gen(function* () {
  const attempts = yield* Ref.make(0)
  const failing = Effect.zipRight(
    Ref.update(attempts, (n) => n + 1),
    Effect.fail(outage)
  )
  return { failing, attempts: Ref.get(attempts) }
})

const refusals = Effect.map(Metric.value(RetryBudget.exhaustedTotal), (state) => state.count)

const succeedTimes = (n: number) =>
  Effect.forEach(Array.from({ length: n }), () => RetryPolicy.retry(Effect.void, { budget: true }), { discard: true })

/** Runs `requests` calls at once, lets the TestClock run every wait, and returns the attempts they made. */
const outageRun = (requests: number, policy: RetryPolicy.Options & { readonly budget: true }) =>
  Effect.gen(function* () {
    const { failing, attempts } = yield* counter

    const fiber = yield* Effect.fork(
      Effect.forEach(
        Array.from({ length: requests }),
        () => Effect.either(Effect.retry(failing, RetryPolicy.make(policy))),
        {
          concurrency: "unbounded"
        }
      )
    )
    yield* TestClock.adjust("1 hour")
    yield* Fiber.join(fiber)

    return yield* attempts
  })

describe("RetryBudget", () => {
  it.effect("a persistent outage makes at most requests × (1 + ratio) attempts, not requests × (1 + maxRetries)", () =>
    Effect.gen(function* () {
      yield* succeedTimes(100)
      const refusedBefore = yield* refusals

      const attempts = yield* outageRun(100, { maxRetries: 3, jitter: "none", budget: true })

      // 100 successes deposited 100 × 0.1 = 10 retries; without the budget it would be 100 × 4 = 400
      strictEqual(attempts, 110)
      strictEqual((yield* refusals) - refusedBefore, 100)
    }).pipe(Effect.provide(RetryBudget.layer({ ratio: 0.1, minRetriesPerSecond: 0 })))
  )

  it.effect("the reserve allows minRetriesPerSecond, refilled by Clock time, with no success at all", () =>
    Effect.gen(function* () {
      const attempts = yield* outageRun(100, { maxRetries: 3, jitter: "none", budget: true })

      // t=0: 100 fail, the full reserve grants 10; t=0.5 s: refilled 5, grants 5; t=1.5 s: refilled to 10,
      // grants 5; t=3.5 s: those 5 have used their 3 retries
      strictEqual(attempts, 100 + 10 + 5 + 5)
    }).pipe(Effect.provide(RetryBudget.layer({ minRetriesPerSecond: 10 })))
  )

  it.effect("nested-storm case: inner 2 and outer 5 retries over one budget make 1 + tokens attempts, not 3 × 6", () =>
    Effect.gen(function* () {
      yield* succeedTimes(50)
      const { failing, attempts } = yield* counter

      const inner = Effect.retry(failing, RetryPolicy.make({ maxRetries: 2, budget: true }))
      const outer = Effect.retry(inner, RetryPolicy.make({ maxRetries: 5, budget: true }))
      const fiber = yield* Effect.fork(Effect.either(outer))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)

      // 50 successes × 0.1 = 5 tokens: every attempt after the first spent one
      strictEqual(yield* attempts, 6)
    }).pipe(Effect.provide(RetryBudget.layer({ ratio: 0.1, minRetriesPerSecond: 0 })))
  )

  it.effect("deposits stop at maxTokens, so a long healthy period cannot fund a storm", () =>
    Effect.gen(function* () {
      const budget = yield* RetryBudget.RetryBudget

      yield* Effect.repeatN(budget.deposit, 9_999)

      strictEqual(yield* budget.available, 25)
    }).pipe(Effect.provide(RetryBudget.layer({ ratio: 0.5, minRetriesPerSecond: 0, maxTokens: 25 })))
  )

  it.effect("nested trackSuccess layers record one success once; separate calls each record theirs", () =>
    Effect.gen(function* () {
      const budget = yield* RetryBudget.RetryBudget

      yield* RetryBudget.trackSuccess(RetryBudget.trackSuccess(RetryBudget.trackSuccess(Effect.void)))
      const afterNested = yield* budget.available
      yield* RetryPolicy.retry(RetryPolicy.retry(Effect.void, { budget: true }), { budget: true })
      const afterNestedPolicies = yield* budget.available
      yield* Effect.all([RetryBudget.trackSuccess(Effect.void), RetryBudget.trackSuccess(Effect.void)])

      deepStrictEqual([afterNested, afterNestedPolicies, yield* budget.available], [1, 2, 4])
    }).pipe(Effect.provide(RetryBudget.layer({ ratio: 1, minRetriesPerSecond: 0 })))
  )

  it.effect("a withdrawal spends the reserve first, then deposits, then refuses", () =>
    Effect.gen(function* () {
      const budget = yield* RetryBudget.RetryBudget
      yield* Effect.repeatN(budget.deposit, 3)

      const grants = yield* Effect.all(Array.from({ length: 5 }, () => budget.tryWithdraw))
      yield* TestClock.adjust("500 millis")
      const later = yield* Effect.all([budget.tryWithdraw, budget.tryWithdraw])

      deepStrictEqual(grants, [true, true, true, false, false])
      deepStrictEqual(later, [true, false])
    }).pipe(Effect.provide(RetryBudget.layer({ ratio: 0.25, minRetriesPerSecond: 2 })))
  )

  it("rejects options out of range when the layer is built", () => {
    const cases: ReadonlyArray<readonly [RetryBudget.Options, string]> = [
      [{ ratio: -0.1 }, "ratio"],
      [{ ratio: 2 }, "ratio"],
      [{ ratio: Number.NaN }, "ratio"],
      [{ minRetriesPerSecond: -1 }, "minRetriesPerSecond"],
      [{ maxTokens: Number.POSITIVE_INFINITY }, "maxTokens"]
    ]
    const actual = cases.map(([options]) => {
      try {
        RetryBudget.layer(options)
        return [options, "accepted"] as const
      } catch (error) {
        assert.instanceOf(error, RetryBudget.InvalidRetryBudget)
        return [options, (error as RetryBudget.InvalidRetryBudget).option] as const
      }
    })
    deepStrictEqual(actual, cases)
  })
})
