/**
 * Recording successes in a retry budget once per call, however many layers (`RetryPolicy.retry`, `AiClient`)
 * each would record it.
 *
 * @internal
 */
import { Effect, FiberRef, Option } from "effect"
import { globalValue } from "effect/GlobalValue"

/** Set while an outer layer will record the success, so inner layers do not deposit it a second time. */
const recordedOutside = globalValue(Symbol.for("effect-idempotency/RetryBudget/recordedOutside"), () =>
  FiberRef.unsafeMake(false)
)

/**
 * Runs `self` and, on success, calls `deposit`, unless an enclosing `track` will deposit for the same success.
 *
 * @internal
 */
export const track = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  deposit: Effect.Effect<void, never, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.flatMap(FiberRef.get(recordedOutside), (outside) =>
    outside ? self : Effect.tap(Effect.locally(self, recordedOutside, true), () => deposit)
  )

/**
 * `track` with the deposit going to the budget in `budget`, when there is one.
 *
 * @internal
 */
export const trackOption = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  budget: Option.Option<{ readonly deposit: Effect.Effect<void> }>
): Effect.Effect<A, E, R> => (Option.isSome(budget) ? track(self, budget.value.deposit) : self)
