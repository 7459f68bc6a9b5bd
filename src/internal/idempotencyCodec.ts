/**
 * How results live in a record: Schema-encoded, then JSON text; and how a record reads back as an `Outcome`.
 *
 * A replay and a fresh call each go through here once, so the common case (a Schema that needs no services
 * and no asynchronous step) is answered synchronously: Schema's parsers hand back an `Either` for it, and only
 * a Schema that needs more runs as an effect. For the same reason these functions parse when they are called,
 * not when the returned effect runs: the engine calls them only while a call runs, from its callbacks.
 *
 * @internal
 */
import type { IdempotencyRecord } from "../IdempotencyStore.js"
import type { Outcome } from "../Idempotency.js"
import { Effect, Either, Option, ParseResult } from "effect"
import type { Schema } from "effect"
import { RequestInProgress, StoredValueInvalid } from "./idempotencyErrors.js"

/** A parser that fails with the bare issue, as `ParseResult`'s own do; callers wrap it in a `ParseError`. */
type Parse = (input: unknown) => Effect.Effect<unknown, ParseResult.ParseIssue, unknown>

const encoders = new WeakMap<Schema.Schema.Any, Parse>()
const decoders = new WeakMap<Schema.Schema.Any, Parse>()

/** The Schema's parser in one direction, built once per Schema. */
const parserOf = (cache: WeakMap<Schema.Schema.Any, Parse>, schema: Schema.Schema.Any, make: () => Parse): Parse => {
  let parse = cache.get(schema)
  if (parse === undefined) {
    parse = make()
    cache.set(schema, parse)
  }
  return parse
}

const encoderOf = (schema: Schema.Schema.Any): Parse =>
  parserOf(encoders, schema, () => ParseResult.encodeUnknown(schema) as Parse)

const decoderOf = (schema: Schema.Schema.Any): Parse =>
  parserOf(decoders, schema, () => ParseResult.decodeUnknown(schema) as Parse)

/** JSON would write NaN and the infinities as `null`, which then replays as something else: refuse them. */
const refuseNonFinite = (_key: string, value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError(`the number ${value} has no JSON form; encode it (e.g. with Schema.NonNaN or as a string)`)
  }
  return value
}

/**
 * JSON text of an encoded value. A Schema whose encoded side is `undefined` (Schema.Void) writes `null`. JSON
 * writes a non-finite number as `null`, so text without `null` in it cannot hold one; only text with it is
 * written again with the check on every value, which a replacer makes several times slower.
 */
const toJson = (encoded: unknown): Either.Either<string, unknown> => {
  try {
    const text = JSON.stringify(encoded)
    if (text === undefined) return Either.right("null")
    return Either.right(text.includes("null") ? JSON.stringify(encoded, refuseNonFinite) : text)
  } catch (cause) {
    return Either.left(cause)
  }
}

/** The JSON text of `value` encoded with `schema`; fails with the parse error or the `JSON.stringify` error. */
export const encodeJson = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  value: unknown
): Effect.Effect<string, unknown, R> => {
  let encoded: Effect.Effect<unknown, ParseResult.ParseIssue, R>
  try {
    encoded = encoderOf(schema)(value) as Effect.Effect<unknown, ParseResult.ParseIssue, R>
  } catch (cause) {
    // A transformation that throws instead of failing.
    return Either.left(cause)
  }
  if (Either.isEither(encoded)) {
    return Either.isRight(encoded)
      ? toJson(encoded.right)
      : Either.left(ParseResult.parseError(encoded.left as ParseResult.ParseIssue))
  }
  return Effect.flatMap(Effect.mapError(encoded, ParseResult.parseError), toJson)
}

const decodeJson = <A, I, R>(
  key: string,
  schema: Schema.Schema<A, I, R>,
  text: Option.Option<string>
): Effect.Effect<A, StoredValueInvalid, R> => {
  if (Option.isNone(text)) {
    return Effect.fail(new StoredValueInvalid({ key, cause: "the record holds no stored value" }))
  }
  let decoded: Effect.Effect<A, ParseResult.ParseIssue, R>
  try {
    decoded = decoderOf(schema)(JSON.parse(text.value)) as Effect.Effect<A, ParseResult.ParseIssue, R>
  } catch (cause) {
    // Not JSON, or a transformation that throws instead of failing.
    return Effect.fail(new StoredValueInvalid({ key, cause }))
  }
  if (Either.isEither(decoded)) {
    // An Either is an effect already: a Right answers as it is.
    return Either.isRight(decoded)
      ? (decoded as Either.Either<A, never>)
      : Effect.fail(
          new StoredValueInvalid({ key, cause: ParseResult.parseError(decoded.left as ParseResult.ParseIssue) })
        )
  }
  return Effect.mapError(decoded, (issue) => new StoredValueInvalid({ key, cause: ParseResult.parseError(issue) }))
}

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

/**
 * What a completed record tells a caller, as its own result: the stored value, or a failure with the stored
 * error. A record still processing fails with `RequestInProgress`.
 */
export const replay = <A, AI, AR, F, FI, FR>(
  key: string,
  record: IdempotencyRecord,
  success: Schema.Schema<A, AI, AR>,
  failure: Schema.Schema<F, FI, FR> | undefined
): Effect.Effect<A, F | StoredValueInvalid | RequestInProgress, AR | FR> => {
  switch (record.status) {
    case "succeeded":
      return decodeJson(key, success, record.response)
    case "failed":
      return Effect.flatMap(decodeFailure(key, failure, record.error), Effect.fail)
    case "processing":
      return Effect.fail(new RequestInProgress({ key, leaseExpiresAt: record.leaseExpiresAt }))
  }
}

/** The record as an `Outcome`, decoded. */
export const toOutcome = <A, AI, AR, F, FI, FR>(
  key: string,
  record: IdempotencyRecord,
  success: Schema.Schema<A, AI, AR>,
  failure: Schema.Schema<F, FI, FR> | undefined
): Effect.Effect<Outcome<A, F>, StoredValueInvalid, AR | FR> => {
  switch (record.status) {
    case "processing":
      return Effect.succeed({ _tag: "Processing", leaseExpiresAt: record.leaseExpiresAt })
    case "succeeded":
      return Effect.map(decodeJson(key, success, record.response), (value) => ({ _tag: "Succeeded", value }))
    case "failed":
      return Effect.map(decodeFailure(key, failure, record.error), (error) => ({ _tag: "Failed", error }))
  }
}
