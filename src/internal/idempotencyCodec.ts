/**
 * How results live in a record: Schema-encoded, then JSON text; and how a record reads back as an `Outcome`.
 *
 * @internal
 */
import type { IdempotencyRecord } from "../IdempotencyStore.js"
import type { Outcome } from "../Idempotency.js"
import { Effect, Option, Schema } from "effect"
import { RequestInProgress, StoredValueInvalid } from "./idempotencyErrors.js"

export const encodeJson = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  value: unknown
): Effect.Effect<string, unknown, R> =>
  Schema.encodeUnknown(schema)(value).pipe(
    // A Schema whose encoded side is `undefined` (Schema.Void) has no JSON text of its own.
    Effect.flatMap((encoded) => Effect.try(() => JSON.stringify(encoded) ?? "null"))
  )

const decodeJson = <A, I, R>(
  key: string,
  schema: Schema.Schema<A, I, R>,
  text: Option.Option<string>
): Effect.Effect<A, StoredValueInvalid, R> =>
  Option.match(text, {
    onNone: () => Effect.fail(new StoredValueInvalid({ key, cause: "the record holds no stored value" })),
    onSome: (json) =>
      Effect.try(() => JSON.parse(json) as unknown).pipe(
        Effect.flatMap(Schema.decodeUnknown(schema)),
        Effect.mapError((cause) => new StoredValueInvalid({ key, cause }))
      )
  })

const decodeFailure = <F, FI, FR>(
  key: string,
  schema: Schema.Schema<F, FI, FR> | undefined,
  text: Option.Option<string>
): Effect.Effect<F, StoredValueInvalid, FR> =>
  schema === undefined
    ? Effect.fail(
        new StoredValueInvalid({ key, cause: "a failure is stored for this key but no failure Schema was given" })
      )
    : decodeJson(key, schema, text)

/** The completed outcome a record holds; `None` while it is processing. */
const completedOutcome = <A, AI, AR, F, FI, FR>(
  key: string,
  record: IdempotencyRecord,
  success: Schema.Schema<A, AI, AR>,
  failure: Schema.Schema<F, FI, FR> | undefined
): Effect.Effect<Option.Option<Outcome<A, F>>, StoredValueInvalid, AR | FR> => {
  switch (record.status) {
    case "processing":
      return Effect.succeedNone
    case "succeeded":
      return Effect.map(decodeJson(key, success, record.response), (value) =>
        Option.some({ _tag: "Succeeded" as const, value })
      )
    case "failed":
      return Effect.map(decodeFailure(key, failure, record.error), (error) =>
        Option.some({ _tag: "Failed" as const, error })
      )
  }
}

export const toOutcome = <A, AI, AR, F, FI, FR>(
  key: string,
  record: IdempotencyRecord,
  success: Schema.Schema<A, AI, AR>,
  failure: Schema.Schema<F, FI, FR> | undefined
): Effect.Effect<Outcome<A, F>, StoredValueInvalid, AR | FR> =>
  Effect.map(
    completedOutcome(key, record, success, failure),
    Option.getOrElse((): Outcome<A, F> => ({ _tag: "Processing", leaseExpiresAt: record.leaseExpiresAt }))
  )

export const settleOutcome = <A, F>(outcome: Outcome<A, F>, key: string): Effect.Effect<A, F | RequestInProgress> => {
  switch (outcome._tag) {
    case "Succeeded":
      return Effect.succeed(outcome.value)
    case "Failed":
      return Effect.fail(outcome.error)
    case "Processing":
      return Effect.fail(new RequestInProgress({ key, leaseExpiresAt: outcome.leaseExpiresAt }))
  }
}
