/**
 * Waiting for another caller's record to change, on a Schedule and within a deadline, all on the `Clock`.
 *
 * @internal
 */
import { Clock, Duration, Effect, Option, Schedule } from "effect"
import type { IdempotencyRecord, IdempotencyStoreError, IdempotencyStoreShape } from "../IdempotencyStore.js"
import { RequestInProgress } from "./idempotencyErrors.js"

/** Quick first look (most calls finish in well under a second), then at most one store read a second. */
const defaultWaitSchedule: Schedule.Schedule<unknown> = Schedule.exponential(Duration.millis(50)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(1)))
)

export interface Waiter {
  readonly driver: Schedule.ScheduleDriver<unknown, unknown>
  /** Epoch ms after which waiting gives up; `Infinity` for no limit. */
  readonly deadline: number
}

export const makeWaiter = (
  schedule: Schedule.Schedule<unknown, unknown> | undefined,
  timeout: Duration.DurationInput | undefined
): Effect.Effect<Waiter> =>
  Effect.gen(function* () {
    const driver = yield* Schedule.driver(schedule ?? defaultWaitSchedule)
    const now = yield* Clock.currentTimeMillis
    const limit = timeout === undefined ? Infinity : Duration.toMillis(Duration.decode(timeout))
    return { driver, deadline: now + limit }
  })

/**
 * Polls the record `record` until it can be acted on: `Some` of the completed (or no longer matching) record,
 * or `None` when the key is free or its lease ended, so that a claim can be tried. Fails with
 * `RequestInProgress` when the schedule ends or the deadline passes first.
 */
export const waitForChange = (
  store: IdempotencyStoreShape,
  key: string,
  requestHash: string | undefined,
  record: IdempotencyRecord,
  waiter: Waiter
): Effect.Effect<Option.Option<IdempotencyRecord>, RequestInProgress | IdempotencyStoreError> =>
  Effect.gen(function* () {
    let leaseExpiresAt = record.leaseExpiresAt
    const inProgress = () => new RequestInProgress({ key, leaseExpiresAt })

    const poll = Effect.gen(function* () {
      while (true) {
        yield* Effect.mapError(waiter.driver.next(undefined), inProgress)

        const now = yield* Clock.currentTimeMillis
        const current = yield* store.get(key, now)
        if (Option.isNone(current)) return current

        const next = current.value
        if (next.status !== "processing") return current
        if (requestHash !== undefined && next.requestHash !== requestHash) return current
        if (next.leaseExpiresAt <= now) return Option.none()
        leaseExpiresAt = next.leaseExpiresAt
      }
    })

    const remaining = waiter.deadline - (yield* Clock.currentTimeMillis)
    if (remaining <= 0) return yield* Effect.fail(inProgress())
    if (!Number.isFinite(remaining)) return yield* poll
    return yield* Effect.timeoutFail(poll, { duration: Duration.millis(remaining), onTimeout: inProgress })
  })
