/**
 * A retry budget shared by every call that uses the same Layer, so that retries stay a small fraction of
 * traffic and an outage is not multiplied into a storm by callers (or nested retry layers) that each retry on
 * their own.
 *
 * It is a token bucket in the spirit of gRPC retry throttling and the SRE book's retry budgets:
 *
 * - every successful call deposits `ratio` tokens (default 0.1: one retry earned per ten successes), up to
 *   `maxTokens`;
 * - every retry withdraws one token; with less than one token the retry is refused, the error is returned as
 *   it is, and `effect_idempotency_retry_budget_exhausted_total` counts the refusal;
 * - a reserve of `minRetriesPerSecond` tokens refills continuously (by `Clock` time), so a low-traffic client
 *   that has had few successes can still retry a little.
 *
 * In a persistent outage (no successes) the retries are therefore bounded by what earlier successes deposited
 * plus the reserve: at most `requests × (1 + ratio)` attempts plus `minRetriesPerSecond` per second, whatever
 * `maxRetries` says.
 *
 * @since 0.1.0
 */
import type { Schedule } from "effect"
import { Clock, Context, Effect, Layer, Metric, Ref, Schema } from "effect"
import { track } from "./internal/retryBudgetTrack.js"
import { withContinue } from "./internal/retrySchedule.js"

/**
 * Budget options were out of range; thrown by {@link layer} when it is called.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRetryBudget extends Schema.TaggedError<InvalidRetryBudget>()("InvalidRetryBudget", {
  option: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid retry budget: ${this.option} = ${this.value}: ${this.reason}.`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryBudgetShape {
  /** Asks for one retry: `true` (and one token spent) if the budget allows it, `false` (and counted) if not. */
  readonly tryWithdraw: Effect.Effect<boolean>
  /** Records one successful call. */
  readonly deposit: Effect.Effect<void>
  /** Whole retries the budget would allow right now. */
  readonly available: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RetryBudget extends Context.Tag("effect-idempotency/RetryBudget")<RetryBudget, RetryBudgetShape>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Tokens deposited per successful call; default 0.1. In [0, 1]. */
  readonly ratio?: number | undefined
  /** Size and refill rate per second of the reserve that allows retries regardless of successes; default 10. */
  readonly minRetriesPerSecond?: number | undefined
  /** Most tokens deposits can hold, so a long healthy period cannot fund a storm later; default 100. */
  readonly maxTokens?: number | undefined
}

/**
 * Refusals by any budget: `effect_idempotency_retry_budget_exhausted_total`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const exhaustedTotal = Metric.counter("effect_idempotency_retry_budget_exhausted_total", {
  description: "Retries refused because the shared retry budget was empty",
  incremental: true
})

const check = (option: string, value: number, valid: boolean, reason: string) => {
  if (!valid) {
    throw new InvalidRetryBudget({ option, value: String(value), reason })
  }
}

/** Token counts are kept to nine decimal places, so ten deposits of 0.1 make exactly one token. */
const PRECISION = 1e9

const round = (tokens: number): number => Math.round(tokens * PRECISION) / PRECISION

interface State {
  readonly deposits: number
  readonly reserve: number
  readonly updatedAt: number
}

/**
 * The budget itself, for callers that manage its lifetime; most use {@link layer}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RetryBudgetShape> => {
  const ratio = options.ratio ?? 0.1
  const perSecond = options.minRetriesPerSecond ?? 10
  const maxTokens = options.maxTokens ?? 100
  check("ratio", ratio, Number.isFinite(ratio) && ratio >= 0 && ratio <= 1, "must be a number from 0 to 1")
  check("minRetriesPerSecond", perSecond, Number.isFinite(perSecond) && perSecond >= 0, "must be 0 or more")
  check("maxTokens", maxTokens, Number.isFinite(maxTokens) && maxTokens >= 0, "must be 0 or more")

  const refill = (state: State, now: number): State => ({
    deposits: state.deposits,
    reserve: round(Math.min(perSecond, state.reserve + (Math.max(0, now - state.updatedAt) / 1000) * perSecond)),
    updatedAt: Math.max(now, state.updatedAt)
  })

  return Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis

    const state = yield* Ref.make<State>({ deposits: 0, reserve: perSecond, updatedAt: start })

    const tryWithdraw = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis

      const allowed = yield* Ref.modify(state, (current): readonly [boolean, State] => {
        const next = refill(current, now)
        if (next.reserve >= 1) {
          return [true, { ...next, reserve: round(next.reserve - 1) }]
        }
        if (next.deposits >= 1) {
          return [true, { ...next, deposits: round(next.deposits - 1) }]
        }
        return [false, next]
      })

      if (!allowed) {
        yield* Metric.increment(exhaustedTotal)
      }
      return allowed
    }).pipe(Effect.withSpan("RetryBudget.tryWithdraw"))

    const deposit = Ref.update(state, (current) => ({
      ...current,
      deposits: round(Math.min(maxTokens, current.deposits + ratio))
    }))

    const available = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(Ref.get(state), (current) => {
        const next = refill(current, now)
        return Math.floor(next.reserve) + Math.floor(next.deposits)
      })
    )

    return { tryWithdraw, deposit, available }
  })
}

/**
 * A budget shared by everything the Layer is provided to. Throws {@link InvalidRetryBudget} when called with
 * options out of range.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as RetryBudget from "effect-idempotency/RetryBudget"
 * import * as RetryPolicy from "effect-idempotency/RetryPolicy"
 *
 * declare const call: Effect.Effect<string, unknown>
 *
 * const program = call.pipe(RetryPolicy.retry({ maxRetries: 5, budget: true }))
 * Effect.provide(program, RetryBudget.layer({ ratio: 0.1, minRetriesPerSecond: 10 }))
 * ```
 */
export const layer = (options: Options = {}): Layer.Layer<RetryBudget> => Layer.effect(RetryBudget, make(options))

/**
 * Records one successful call in the budget.
 *
 * @since 0.1.0
 * @category accessors
 */
export const recordSuccess: Effect.Effect<void, never, RetryBudget> = Effect.flatMap(
  RetryBudget,
  (budget) => budget.deposit
)

/**
 * Runs `self` and records its success in the budget. Nested layers record one success once: when an enclosing
 * `trackSuccess` (a `RetryPolicy.retry` with `budget: true`) will record it, an inner one (or an `AiClient` call,
 * which records successes into a budget in its context) does not record it again.
 *
 * @since 0.1.0
 * @category combinators
 */
export const trackSuccess = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RetryBudget> =>
  track(self, recordSuccess)

/**
 * Makes a retry schedule ask the budget before each retry it would make; a refusal stops the schedule, so the
 * last error is returned. Put it outermost, so only retries that will really happen spend a token.
 *
 * @since 0.1.0
 * @category combinators
 */
export const guard = <Out, In, R>(self: Schedule.Schedule<Out, In, R>): Schedule.Schedule<Out, In, R | RetryBudget> =>
  withContinue(self, () => Effect.flatMap(RetryBudget, (budget) => budget.tryWithdraw))
