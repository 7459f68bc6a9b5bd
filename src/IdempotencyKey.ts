/**
 * Idempotency keys: one string that names one business action.
 *
 * A key is built from business parts (`"chatmsg"`, a conversation id, a message id) joined by `":"`. Building
 * it through `make` rejects the inputs that make keys collide or break storage: empty parts, parts that
 * contain the separator (so `("a:b", "c")` and `("a", "b:c")` cannot meet), control characters, characters
 * outside printable ASCII (U+0020–U+007E, the only ones every HTTP stack sends unchanged in an `Idempotency-Key`
 * header), spaces at either end of the whole key (HTTP trims header values, so `" order-42 "` would arrive as
 * `"order-42"`), and keys longer than 255 characters. Business ids in other scripts go in hashed or
 * percent-encoded (`encodeURIComponent`).
 *
 * @since 0.1.0
 */
import type { Brand } from "effect"
import { Effect, Either, Schema } from "effect"

/**
 * A validated idempotency key.
 *
 * @since 0.1.0
 * @category models
 */
export type IdempotencyKey = string & Brand.Brand<"IdempotencyKey">

/**
 * The character that joins the parts of a key.
 *
 * @since 0.1.0
 * @category constants
 */
export const separator = ":"

/**
 * The longest key accepted, in UTF-16 code units. 255 fits an indexed `VARCHAR(255)` and the key limits of
 * the common AI providers.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLength = 255

/**
 * Why a key was rejected.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidIdempotencyKey extends Schema.TaggedError<InvalidIdempotencyKey>()("InvalidIdempotencyKey", {
  key: Schema.String,
  reason: Schema.Literal("Empty", "EmptyPart", "Separator", "ControlCharacter", "NonAscii", "Whitespace", "TooLong")
}) {
  override get message(): string {
    switch (this.reason) {
      case "Empty":
        return 'An idempotency key needs at least one part, e.g. make("chatmsg", conversationId, messageId).'
      case "EmptyPart":
        return `The idempotency key "${this.key}" has an empty part: pass a non-empty value for every part.`
      case "Separator":
        return (
          `A part of the idempotency key "${this.key}" contains the separator "${separator}": ` +
          `pass such values as separate parts or encode them first.`
        )
      case "ControlCharacter":
        return (
          `The idempotency key ${JSON.stringify(this.key)} contains a control character: ` +
          `use printable characters only.`
        )
      case "NonAscii":
        return (
          `The idempotency key ${JSON.stringify(this.key)} contains a character outside printable ASCII ` +
          `(U+0020–U+007E), which cannot travel unchanged in an HTTP header: percent-encode such parts ` +
          `(encodeURIComponent) or hash them.`
        )
      case "Whitespace":
        return (
          `The idempotency key ${JSON.stringify(this.key)} starts or ends with a space, which HTTP strips from ` +
          `header values (so it would meet the key without it): trim the key or its first and last parts.`
        )
      case "TooLong":
        return (
          `The idempotency key is ${this.key.length} characters long, over the limit of ${maxLength}: ` +
          `shorten its parts or hash the long one.`
        )
    }
  }
}

const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/

const nonAscii = /[^\u0020-\u007e]/

const checkKey = (key: string): Either.Either<IdempotencyKey, InvalidIdempotencyKey> => {
  if (key.length === 0) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "Empty" }))
  }
  if (key.split(separator).some((part) => part.length === 0)) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "EmptyPart" }))
  }
  if (controlCharacter.test(key)) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "ControlCharacter" }))
  }
  if (nonAscii.test(key)) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "NonAscii" }))
  }
  if (key.startsWith(" ") || key.endsWith(" ")) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "Whitespace" }))
  }
  if (key.length > maxLength) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "TooLong" }))
  }
  return Either.right(key as IdempotencyKey)
}

/**
 * Joins `parts` into a key, or answers why they cannot make one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEither = (...parts: ReadonlyArray<string>): Either.Either<IdempotencyKey, InvalidIdempotencyKey> => {
  const key = parts.join(separator)
  if (parts.length === 0) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "Empty" }))
  }
  if (parts.some((part) => part.length === 0)) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "EmptyPart" }))
  }
  if (parts.some((part) => part.includes(separator))) {
    return Either.left(new InvalidIdempotencyKey({ key, reason: "Separator" }))
  }
  return checkKey(key)
}

/**
 * Joins `parts` into a key. Throws `InvalidIdempotencyKey` when they cannot make one; use `makeEither` or
 * `makeEffect` to handle that as a value.
 *
 * @example
 * ```ts
 * import { IdempotencyKey } from "effect-idempotency"
 *
 * const key = IdempotencyKey.make("chatmsg", "conv_782", "msg_991")
 * // "chatmsg:conv_782:msg_991"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (...parts: ReadonlyArray<string>): IdempotencyKey =>
  Either.getOrThrowWith(makeEither(...parts), (error) => error)

/**
 * Joins `parts` into a key, failing with `InvalidIdempotencyKey` when they cannot make one.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { IdempotencyKey } from "effect-idempotency"
 *
 * const program = IdempotencyKey.makeEffect("order", "42").pipe(
 *   Effect.catchTag("InvalidIdempotencyKey", (error) => Effect.die(error.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEffect = (...parts: ReadonlyArray<string>): Effect.Effect<IdempotencyKey, InvalidIdempotencyKey> =>
  Effect.suspend(() => makeEither(...parts))

/**
 * Checks a whole key, as received from a caller (an `Idempotency-Key` header, say): separators are allowed,
 * but no segment between them may be empty.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (key: string): Effect.Effect<IdempotencyKey, InvalidIdempotencyKey> =>
  Effect.suspend(() => checkKey(key))

/**
 * The key as a Schema: decodes a string into an `IdempotencyKey` with the same checks as `validate`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IdempotencyKey: Schema.Schema<IdempotencyKey, string> = Schema.String.pipe(
  Schema.filter((key) => Either.match(checkKey(key), { onLeft: (error) => error.message, onRight: () => true })),
  Schema.brand("IdempotencyKey"),
  Schema.annotations({ identifier: "IdempotencyKey" })
)
