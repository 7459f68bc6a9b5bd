/**
 * Schedule wrappers that see a schedule's decision and the input (the error) together, which the stock
 * combinators do not offer: Retry-After, deadlines, budgets and per-retry metrics.
 *
 * @internal
 */
import type { Effect as EffectNs } from "effect"
import { Effect, Schedule, ScheduleDecision, ScheduleInterval, ScheduleIntervals } from "effect"

/** What a wrapper decides about a retry the inner schedule wants to make. */
export type Verdict = boolean | { readonly delayMillis: number }

/**
 * Wraps `self` so that, whenever it wants to continue after `delayMillis`, `decide` may stop it (`false`), let
 * it be (`true`), or move the next attempt (`{ delayMillis }`). `decide` also sees when the schedule started.
 *
 * @internal
 */
export const withContinue = <Out, In, R, R2>(
  self: Schedule.Schedule<Out, In, R>,
  decide: (
    input: In,
    delayMillis: number,
    context: { readonly now: number; readonly startedAt: number }
  ) => EffectNs.Effect<Verdict, never, R2>
): Schedule.Schedule<Out, In, R | R2> =>
  Schedule.makeWithState<readonly [unknown, number | undefined], In, Out, R | R2>(
    [self.initial, undefined],
    (now, input, [inner, startedAt]) =>
      Effect.flatMap(self.step(now, input, inner), ([next, out, decision]) => {
        const started = startedAt ?? now
        if (ScheduleDecision.isDone(decision)) {
          return Effect.succeed([[next, started], out, decision] as const)
        }
        const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
        return Effect.map(decide(input, delay, { now, startedAt: started }), (verdict) => {
          if (verdict === true) {
            return [[next, started], out, decision] as const
          }
          if (verdict === false) {
            return [[next, started], out, ScheduleDecision.done] as const
          }
          const interval = ScheduleInterval.after(now + Math.max(0, verdict.delayMillis))
          return [[next, started], out, ScheduleDecision.continueWith(interval)] as const
        })
      })
  )
