import type { Schedule } from "effect"
import { Effect, ScheduleDecision, ScheduleIntervals } from "effect"

/**
 * Steps `schedule` once per input, starting at `start` and moving time to each chosen instant, and returns the
 * delays (ms) it chose before it stopped: the waits `Effect.retry` would sleep.
 */
export const delaysOf = <In, R>(
  schedule: Schedule.Schedule<unknown, In, R>,
  inputs: ReadonlyArray<In>,
  start = 0
): Effect.Effect<ReadonlyArray<number>, never, R> =>
  Effect.gen(function* () {
    const delays: Array<number> = []
    let state = schedule.initial
    let now = start
    for (const input of inputs) {
      const [next, , decision] = yield* schedule.step(now, input, state)
      if (ScheduleDecision.isDone(decision)) {
        break
      }
      const at = ScheduleIntervals.start(decision.intervals)
      delays.push(at - now)
      now = at
      state = next
    }
    return delays
  })
