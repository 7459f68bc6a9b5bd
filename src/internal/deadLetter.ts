/**
 * The behaviour shared by every dead-letter backend: summaries, the alert hook, replay and discard over a few
 * primitive operations.
 *
 * @internal
 */
import { Cause, Clock, Effect, Metric, Option, Predicate } from "effect"
import type { DeadLetterQueueShape } from "../DeadLetterQueue.js"
import type { DeadLetter, LastError } from "./deadLetterModel.js"
import { DeadLetterNotFound, DeadLetterQueueError } from "./deadLetterModel.js"
import * as CallError from "../CallError.js"

/** @internal */
export interface Backend {
  /** Inserts a new entry, or adds to the one held for `entry.key`; says which it did. */
  readonly upsert: (
    entry: Omit<DeadLetter, "request"> & { readonly requestJson: string }
  ) => Effect.Effect<{ readonly entry: DeadLetter; readonly isNew: boolean }, DeadLetterQueueError>
  readonly list: (limit: number | undefined) => Effect.Effect<ReadonlyArray<DeadLetter>, DeadLetterQueueError>
  readonly get: (key: string) => Effect.Effect<Option.Option<DeadLetter>, DeadLetterQueueError>
  /** Removes the entry; `false` when there was none. */
  readonly remove: (key: string) => Effect.Effect<boolean, DeadLetterQueueError>
  /** Replaces the last error of an existing entry. */
  readonly recordError: (key: string, lastError: LastError, now: number) => Effect.Effect<void, DeadLetterQueueError>
}

/** @internal */
export const deadLettersTotal = Metric.counter("effect_idempotency_dead_letters_total", {
  description: "Actions put in the dead-letter queue (new entries only)",
  incremental: true
})

/** @internal */
export const summarize = (error: unknown): LastError => {
  if (CallError.isCallError(error)) {
    return { tag: error._tag, message: error.message, status: error.status }
  }
  const message =
    Predicate.hasProperty(error, "message") && typeof error.message === "string" ? error.message : String(error)
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") {
    return { tag: error._tag, message, status: Option.none() }
  }
  const name = error instanceof Error ? error.name : "Unknown"
  return { tag: name, message, status: Option.none() }
}

/** @internal */
export const requestJson = (key: string, request: unknown): Effect.Effect<string, DeadLetterQueueError> =>
  Effect.try({
    try: () => {
      const json = JSON.stringify(request)
      if (json === undefined) {
        throw new Error("the request has no JSON form (undefined, a function or a symbol)")
      }
      return json
    },
    catch: (cause) => new DeadLetterQueueError({ operation: "add", key, cause })
  })

/** @internal */
export const parseRequest = (json: string): unknown => JSON.parse(json)

/** @internal */
export const fromBackend = <R>(
  backend: Backend,
  onDeadLetter: ((entry: DeadLetter) => Effect.Effect<void, unknown, R>) | undefined
): Effect.Effect<DeadLetterQueueShape, never, R> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<R>()

    const alert = (entry: DeadLetter) =>
      onDeadLetter === undefined
        ? Effect.void
        : onDeadLetter(entry).pipe(
            Effect.provide(context),
            Effect.catchAllCause((cause) =>
              Effect.logWarning(
                `The dead-letter alert hook failed for key "${entry.key}"; the entry is stored.`,
                Cause.pretty(cause)
              )
            ),
            Effect.withSpan("DeadLetterQueue.onDeadLetter")
          )

    const add: DeadLetterQueueShape["add"] = (input) =>
      Effect.gen(function* () {
        const json = yield* requestJson(input.key, input.request)

        const now = yield* Clock.currentTimeMillis

        const { entry, isNew } = yield* backend.upsert({
          key: input.key,
          requestJson: json,
          lastError: summarize(input.error),
          attempts: input.attempts,
          deadLetteredAt: now,
          updatedAt: now
        })

        if (isNew) {
          yield* Metric.increment(deadLettersTotal)
          yield* alert(entry)
        }
        return entry
      }).pipe(Effect.withSpan("DeadLetterQueue.add", { attributes: { "idempotency.key": input.key } }))

    const found = (key: string) =>
      Effect.flatMap(
        backend.get(key),
        Option.match({
          onNone: () => Effect.fail(new DeadLetterNotFound({ key })),
          onSome: Effect.succeed
        })
      )

    const replay: DeadLetterQueueShape["replay"] = (key, run) =>
      Effect.gen(function* () {
        const entry = yield* found(key)

        const result = yield* Effect.either(run(entry))

        if (result._tag === "Left") {
          const now = yield* Clock.currentTimeMillis
          yield* backend.recordError(key, summarize(result.left), now)
          return yield* Effect.fail(result.left)
        }

        yield* backend.remove(key)
        return result.right
      }).pipe(Effect.withSpan("DeadLetterQueue.replay", { attributes: { "idempotency.key": key } }))

    const discard: DeadLetterQueueShape["discard"] = (key) =>
      Effect.flatMap(backend.remove(key), (removed) =>
        removed ? Effect.void : Effect.fail(new DeadLetterNotFound({ key }))
      ).pipe(Effect.withSpan("DeadLetterQueue.discard", { attributes: { "idempotency.key": key } }))

    return {
      add,
      list: (options) => backend.list(options?.limit).pipe(Effect.withSpan("DeadLetterQueue.list")),
      get: (key) => backend.get(key).pipe(Effect.withSpan("DeadLetterQueue.get")),
      replay,
      discard
    }
  })
