/**
 * Retry policies as Effect `Schedule`s, to pass to `Effect.retry`.
 *
 * `make` builds the careful default in one call: exponential backoff with jitter, at most `maxRetries`
 * retries, only for errors `CallError.isRetryable` accepts, waiting at least what a Retry-After header asks (and
 * giving up with the original error when it asks for more than `maxRetryAfter`), within an optional overall
 * `deadline`, and optionally within a shared {@link RetryBudget}. Each piece is exported on its own, so a
 * policy can also be written as a readable pipeline of Schedule combinators:
 *
 * ```ts
 * RetryPolicy.backoff({ base: "200 millis", cap: "5 seconds", jitter: "equal" }).pipe(
 *   Schedule.intersect(Schedule.recurs(4)),
 *   RetryPolicy.whileRetryable,
 *   RetryPolicy.respectRetryAfter({ maxRetryAfter: "30 seconds" }),
 *   RetryPolicy.withDeadline("1 minute"),
 *   RetryBudget.guard
 * )
 * ```
 *
 * Waits use Effect's `Clock` (so `TestClock` drives them, and interrupting a fiber ends its wait at once) and
 * jitter draws from Effect's `Random` (so `Effect.withRandom(Random.make(seed))` makes every delay
 * reproducible).
 *
 * @since 0.1.0
 */
import type { Effect as EffectNs } from "effect"
import { Duration, Effect, Metric, Option, Random, Schedule, ScheduleDecision, ScheduleInterval, Schema } from "effect"
import { dual } from "effect/Function"
import * as CallError from "./CallError.js"
import * as RetryBudget from "./RetryBudget.js"
import * as backoffInternal from "./internal/retryBackoff.js"
import * as options_ from "./internal/retryOptions.js"
import { withContinue } from "./internal/retrySchedule.js"

/**
 * How the exponential delay is randomised (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture
 * Blog, 2015), with `exp(n) = min(cap, base × factor^n)` for retry `n` (0 for the first) and `r` uniform in
 * [0, 1):
 *
 * - `"none"`: `exp(n)`. Every client retries in lockstep; use only for a single client or in tests.
 * - `"full"`: `r × exp(n)`. The default: spreads retries the most and does the least total work.
 * - `"equal"`: `exp(n)/2 + r × exp(n)/2`. Never waits less than half the exponential delay.
 * - `"decorrelated"`: `min(cap, base + r × (3 × previous − base))`, starting from `previous = base`.
 *
 * Every delay is then clamped to [0, cap] and rounded down to whole milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export type Jitter = backoffInternal.Jitter

/**
 * @since 0.1.0
 * @category models
 */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter; default 500 millis. */
  readonly base?: Duration.DurationInput | undefined
  /** Growth per retry; default 2. At least 1. */
  readonly factor?: number | undefined
  /** Longest backoff delay after jitter; default 8 seconds. At least `base`. */
  readonly cap?: Duration.DurationInput | undefined
  /** Default `"full"`. */
  readonly jitter?: Jitter | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends BackoffOptions {
  /** Retries after the first attempt; default 3 (so at most 4 attempts). A whole number, 0 or more, or Infinity. */
  readonly maxRetries?: number | undefined
  /**
   * Longest Retry-After the policy will honour; default 60 seconds. A longer one stops the retries and the
   * original error is returned, rather than sleeping for hours.
   */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /**
   * Overall limit on the time spent retrying, measured from the first failure: a retry whose wait would end
   * after it is not made. Bound the first attempt too with `Effect.timeout` around the whole call.
   */
  readonly deadline?: Duration.DurationInput | undefined
  /** Ask the shared {@link RetryBudget.RetryBudget} before each retry (the schedule then requires it). */
  readonly budget?: boolean | undefined
  /**
   * Which errors to retry; default `CallError.isRetryable` (fatal and non-`CallError` errors are not retried).
   * A predicate given here replaces the default.
   */
  readonly retryOn?: ((error: unknown) => boolean) | undefined
}

/**
 * A policy option was out of range; thrown by the constructor that was given it, so a bad policy fails where it
 * is written and not at the first retry in production.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRetryPolicy extends Schema.TaggedError<InvalidRetryPolicy>()("InvalidRetryPolicy", {
  option: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid retry policy: ${this.option} = ${this.value}: ${this.reason}.`
  }
}

const fail: options_.Fail = (option, value, reason) => {
  throw new InvalidRetryPolicy({ option, value: typeof value === "string" ? `"${value}"` : String(value), reason })
}

/**
 * The defaults of {@link make}: 3 retries, base 500 millis, factor 2, cap 8 seconds, full jitter, Retry-After
 * honoured up to 60 seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly maxRetries: number
  readonly base: Duration.Duration
  readonly factor: number
  readonly cap: Duration.Duration
  readonly jitter: Jitter
  readonly maxRetryAfter: Duration.Duration
} = options_.defaults

/**
 * The backoff as a pure function: the delay before retry `attempt` (0 for the first retry), given a draw
 * `random` in [0, 1) and, for decorrelated jitter, the `previous` delay (default: `base`). Always in [0, cap].
 * Throws {@link InvalidRetryPolicy} on bad options.
 *
 * @since 0.1.0
 * @category backoff
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import * as RetryPolicy from "effect-idempotency/RetryPolicy"
 *
 * const delay = RetryPolicy.backoffDelay({ base: "100 millis", cap: "400 millis", jitter: "equal" })
 * Duration.toMillis(delay(3, 0.5)) // min(400, 100 × 2³) = 400, then 200 + 0.5 × 200 = 300
 * ```
 */
export const backoffDelay = (
  options: BackoffOptions = {}
): ((attempt: number, random: number, previous?: Duration.DurationInput) => Duration.Duration) => {
  const resolved = options_.resolveBackoff(fail, options)
  return (attempt, random, previous) =>
    Duration.millis(
      backoffInternal.delayMillis(
        resolved,
        attempt,
        random,
        previous === undefined ? resolved.baseMillis : Duration.toMillis(previous)
      )
    )
}

/**
 * The whole sequence of delays for the given draws, one retry per draw, as whole milliseconds: what
 * {@link backoff} waits when `Random` yields `randoms`.
 *
 * @since 0.1.0
 * @category backoff
 * @example
 * ```ts
 * import * as RetryPolicy from "effect-idempotency/RetryPolicy"
 *
 * RetryPolicy.backoffDelays({ jitter: "none" }, [0, 0, 0, 0, 0, 0]) // [500, 1000, 2000, 4000, 8000, 8000]
 * ```
 */
export const backoffDelays = (options: BackoffOptions, randoms: ReadonlyArray<number>): ReadonlyArray<number> => {
  const resolved = options_.resolveBackoff(fail, options)
  const out: Array<number> = []
  let previous = resolved.baseMillis
  randoms.forEach((random, attempt) => {
    previous = backoffInternal.delayMillis(resolved, attempt, random, previous)
    out.push(previous)
  })
  return out
}

/**
 * The backoff as an endless Schedule whose output is the delay it chose. Jitter draws from `Random`. Combine it
 * with `Schedule.recurs`, {@link whileRetryable} and the other pieces; {@link make} does all of that.
 *
 * @since 0.1.0
 * @category backoff
 */
export const backoff = (options: BackoffOptions = {}): Schedule.Schedule<Duration.Duration> => {
  const resolved = options_.resolveBackoff(fail, options)
  const draw = resolved.jitter === "none" ? Effect.succeed(0) : Random.next
  return Schedule.makeWithState({ attempt: 0, previous: resolved.baseMillis }, (now, _input: unknown, state) =>
    Effect.map(draw, (random) => {
      const delay = backoffInternal.delayMillis(resolved, state.attempt, random, state.previous)
      return [
        { attempt: state.attempt + 1, previous: delay },
        Duration.millis(delay),
        ScheduleDecision.continueWith(ScheduleInterval.after(now + delay))
      ] as const
    })
  )
}

/**
 * Stops the schedule on an error that is not retryable (`CallError.isRetryable`): fatal errors, errors an inner
 * retry layer gave up on, and anything that is not a `CallError`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const whileRetryable = <Out, In, R>(self: Schedule.Schedule<Out, In, R>): Schedule.Schedule<Out, In, R> =>
  Schedule.whileInput(self, CallError.isRetryable)

/** A Retry-After wait is spread by up to 10% of itself, at most one second, so clients told the same instant do
 * not all return at once. */
const RETRY_AFTER_SPREAD_RATIO = 0.1
const RETRY_AFTER_SPREAD_MAX_MILLIS = 1000

const retryAfterMillis = (input: unknown): Option.Option<number> =>
  CallError.isCallError(input) ? Option.map(input.retryAfter, Duration.toMillis) : Option.none()

/**
 * Makes the schedule wait at least the Retry-After an error carries (`CallError.retryAfter`, from any of the
 * headers `RetryAfter.parse` reads), plus a small random spread (up to 10% of it, at most 1 second); the backoff
 * cap does not shorten it. A Retry-After longer than `maxRetryAfter` (default 60 seconds) stops the schedule,
 * so the original error is returned at once. A zero Retry-After leaves the backoff as it is.
 *
 * @since 0.1.0
 * @category combinators
 */
export const respectRetryAfter: {
  (options?: {
    readonly maxRetryAfter?: Duration.DurationInput | undefined
  }): <Out, In, R>(self: Schedule.Schedule<Out, In, R>) => Schedule.Schedule<Out, In, R>
  <Out, In, R>(
    self: Schedule.Schedule<Out, In, R>,
    options?: { readonly maxRetryAfter?: Duration.DurationInput | undefined }
  ): Schedule.Schedule<Out, In, R>
} = dual(
  (args) => Schedule.isSchedule(args[0]),
  <Out, In, R>(
    self: Schedule.Schedule<Out, In, R>,
    options?: { readonly maxRetryAfter?: Duration.DurationInput | undefined }
  ): Schedule.Schedule<Out, In, R> => {
    const maxMillis = options_.millisOption(
      fail,
      "maxRetryAfter",
      options?.maxRetryAfter ?? defaults.maxRetryAfter,
      "allowInfinite"
    )
    return withContinue(self, (input, delay) =>
      Option.match(retryAfterMillis(input), {
        onNone: () => Effect.succeed(true),
        onSome: (wait) => {
          if (wait > maxMillis) {
            return Effect.succeed(false)
          }
          if (wait <= delay) {
            return Effect.succeed(true)
          }
          const spread = Math.min(wait * RETRY_AFTER_SPREAD_RATIO, RETRY_AFTER_SPREAD_MAX_MILLIS)
          return Effect.map(Random.next, (random) => ({ delayMillis: wait + Math.floor(random * spread) }))
        }
      })
    )
  }
)

/**
 * Stops the schedule before a retry whose wait would end more than `deadline` after the schedule's first step
 * (the first failure). Time is read from `Clock`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withDeadline: {
  (deadline: Duration.DurationInput): <Out, In, R>(self: Schedule.Schedule<Out, In, R>) => Schedule.Schedule<Out, In, R>
  <Out, In, R>(self: Schedule.Schedule<Out, In, R>, deadline: Duration.DurationInput): Schedule.Schedule<Out, In, R>
} = dual(
  2,
  <Out, In, R>(
    self: Schedule.Schedule<Out, In, R>,
    deadline: Duration.DurationInput
  ): Schedule.Schedule<Out, In, R> => {
    const deadlineMillis = options_.millisOption(fail, "deadline", deadline, "allowInfinite")
    return withContinue(self, (_input, delay, { now, startedAt }) =>
      Effect.succeed(now + delay - startedAt <= deadlineMillis)
    )
  }
)

/**
 * Retries made by policies built with {@link make}, tagged with the error's `reason` (its `_tag`):
 * `effect_idempotency_retries_total`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const retriesTotal = Metric.counter("effect_idempotency_retries_total", {
  description: "Retries scheduled by effect-idempotency retry policies, by error tag",
  incremental: true
})

const reasonOf = (input: unknown): string =>
  typeof input === "object" && input !== null && "_tag" in input && typeof input._tag === "string"
    ? input._tag
    : "unknown"

/**
 * The retry policy, as a Schedule for `Effect.retry`. Its output is the delay before each retry. Throws
 * {@link InvalidRetryPolicy} when an option is out of range (negative base, cap below base, factor below 1,
 * maxRetries negative or fractional, an unknown jitter kind).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as CallError from "effect-idempotency/CallError"
 * import * as RetryPolicy from "effect-idempotency/RetryPolicy"
 *
 * declare const call: Effect.Effect<string, CallError.CallError>
 *
 * // up to 5 retries, 200 ms doubling to at most 5 s, full jitter; Retry-After up to 30 s honoured
 * const policy = RetryPolicy.make({ maxRetries: 5, base: "200 millis", cap: "5 seconds", maxRetryAfter: "30 seconds" })
 * const program = Effect.retry(call, policy)
 * ```
 */
export function make(
  options: Options & { readonly budget: true }
): Schedule.Schedule<Duration.Duration, unknown, RetryBudget.RetryBudget>
export function make(
  options?: Options & { readonly budget?: false | undefined }
): Schedule.Schedule<Duration.Duration, unknown>
export function make(options: Options): Schedule.Schedule<Duration.Duration, unknown, RetryBudget.RetryBudget>
export function make(options?: Options): Schedule.Schedule<Duration.Duration, unknown, RetryBudget.RetryBudget> {
  const o: Options = options ?? {}
  const maxRetries = options_.resolveMaxRetries(fail, o.maxRetries)
  const retryOn = o.retryOn ?? CallError.isRetryable
  let policy: Schedule.Schedule<unknown, unknown, RetryBudget.RetryBudget> = backoff(o).pipe(
    Schedule.zipLeft(Schedule.recurs(maxRetries)),
    Schedule.whileInput(retryOn),
    respectRetryAfter({ maxRetryAfter: o.maxRetryAfter })
  )
  if (o.deadline !== undefined) {
    policy = withDeadline(policy, o.deadline)
  }
  if (o.budget === true) {
    policy = RetryBudget.guard(policy)
  }
  const counted = withContinue(policy, (input) =>
    Effect.as(Metric.increment(Metric.tagged(retriesTotal, "reason", reasonOf(input))), true)
  )
  return Schedule.delays(counted)
}

/**
 * `Effect.retry` with a policy (options for {@link make}, or any Schedule), plus two things a nested setup needs:
 * an error still retryable when the policy gives up is marked `exhausted` (`CallError.markExhausted`), so an
 * outer retry layer does not retry it again and multiply the attempts; and with `budget: true` each success is
 * recorded in the {@link RetryBudget.RetryBudget}.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as CallError from "effect-idempotency/CallError"
 * import * as RetryPolicy from "effect-idempotency/RetryPolicy"
 *
 * declare const call: Effect.Effect<string, CallError.CallError>
 *
 * const inner = RetryPolicy.retry(call, { maxRetries: 2 })
 * // the outer layer sees an exhausted error and does not retry it: 3 attempts, not 3 × 6
 * const outer = RetryPolicy.retry(inner, { maxRetries: 5 })
 * ```
 */
export const retry: {
  (
    options: Options & { readonly budget: true }
  ): <A, E, R>(self: EffectNs.Effect<A, E, R>) => EffectNs.Effect<A, E, R | RetryBudget.RetryBudget>
  (
    options: Options & { readonly budget?: false | undefined }
  ): <A, E, R>(self: EffectNs.Effect<A, E, R>) => EffectNs.Effect<A, E, R>
  <Out, R2>(
    policy: Schedule.Schedule<Out, unknown, R2>
  ): <A, E, R>(self: EffectNs.Effect<A, E, R>) => EffectNs.Effect<A, E, R | R2>
  <A, E, R>(
    self: EffectNs.Effect<A, E, R>,
    options: Options & { readonly budget: true }
  ): EffectNs.Effect<A, E, R | RetryBudget.RetryBudget>
  <A, E, R>(
    self: EffectNs.Effect<A, E, R>,
    options: Options & { readonly budget?: false | undefined }
  ): EffectNs.Effect<A, E, R>
  <A, E, R, Out, R2>(
    self: EffectNs.Effect<A, E, R>,
    policy: Schedule.Schedule<Out, unknown, R2>
  ): EffectNs.Effect<A, E, R | R2>
} = dual(
  2,
  <A, E, R>(
    self: EffectNs.Effect<A, E, R>,
    policy: Options | Schedule.Schedule<unknown, unknown, RetryBudget.RetryBudget>
  ): EffectNs.Effect<A, E, R | RetryBudget.RetryBudget> => {
    const schedule: Schedule.Schedule<unknown, unknown, RetryBudget.RetryBudget> = Schedule.isSchedule(policy)
      ? policy
      : make(policy)
    const tracked = !Schedule.isSchedule(policy) && policy.budget === true ? RetryBudget.trackSuccess(self) : self
    return Effect.retry(tracked, schedule).pipe(
      Effect.mapError((error) =>
        CallError.isCallError(error) && CallError.isRetryable(error) ? (CallError.markExhausted(error) as E) : error
      ),
      Effect.withSpan("RetryPolicy.retry")
    )
  }
)
