/**
 * Request fingerprints: the identity of a request, independent of how its JSON happened to be written.
 *
 * A retry of the same business action must be recognised as the same request even when a serializer wrote
 * its object keys in another order, and any real difference (`temperature: 0.2` vs `0.3`, `1` vs `"1"`, a
 * reordered message list) must give another fingerprint. `canonicalize` writes one JSON text per value:
 * object keys sorted by code point, arrays in order, no whitespace, `undefined` fields left out, `toJSON`
 * honoured (so a `Date` is its ISO string), and a bigint written as `123n`, which no number or string can
 * produce. `hash` is the SHA-256 of that text.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Effect, Schema } from "effect"
import * as internal from "./internal/fingerprint.js"

/**
 * The request holds something that is not data (a function, a symbol, a cycle, `NaN` or an infinity, a Map),
 * so it has no fingerprint. `path` points at it, e.g. `$.messages[0].content`.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnserializableRequest extends Schema.TaggedError<UnserializableRequest>()("UnserializableRequest", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `The request cannot be fingerprinted: at ${this.path}, ${this.reason}. ` +
      `Pass plain JSON data, or give a fingerprint option that picks the identifying part.`
    )
  }
}

/**
 * The canonical JSON text of `value`. Throws `UnserializableRequest` when `value` holds something that is
 * not data.
 *
 * @example
 * ```ts
 * import { Fingerprint } from "effect-idempotency"
 *
 * Fingerprint.canonicalize({ b: [2, 1], a: { y: true, x: null } })
 * // '{"a":{"x":null,"y":true},"b":[2,1]}'
 * ```
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const canonicalize = (value: unknown): string => {
  try {
    return internal.canonicalize(value)
  } catch (error) {
    throw toUnserializable(error)
  }
}

/** Whatever stopped the walk, as the typed error: a value that is not data, nesting too deep, a throwing getter. */
const toUnserializable = (error: unknown): UnserializableRequest => {
  if (error instanceof internal.CanonicalizeFailure) {
    return new UnserializableRequest({ path: error.path, reason: error.reason })
  }
  if (error instanceof RangeError) {
    return new UnserializableRequest({ path: "$", reason: "the value is nested too deeply to walk" })
  }
  const detail = error instanceof Error ? error.message : String(error)
  return new UnserializableRequest({ path: "$", reason: `reading the value threw (${detail})` })
}

/**
 * The SHA-256 (lowercase hex) of the canonical JSON of `value`. Throws `UnserializableRequest` when `value`
 * holds something that is not data; `hashEffect` fails with it instead.
 *
 * @example
 * ```ts
 * import { Fingerprint } from "effect-idempotency"
 *
 * Fingerprint.hash({ a: 1, b: 2 }) === Fingerprint.hash({ b: 2, a: 1 }) // true
 * Fingerprint.hash({ temperature: 0.2 }) === Fingerprint.hash({ temperature: 0.3 }) // false
 * ```
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const hash = (value: unknown): string => sha256Hex(canonicalize(value))

/** Node's one-shot `crypto.hash` (Node 20.12 and later) is several times cheaper than `createHash` on short text. */
const sha256Hex: (text: string) => string =
  typeof Crypto.hash === "function"
    ? (text) => Crypto.hash("sha256", text, "hex")
    : (text) => Crypto.createHash("sha256").update(text, "utf8").digest("hex")

/**
 * `hash` as an Effect that fails with `UnserializableRequest`.
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const hashEffect = (value: unknown): Effect.Effect<string, UnserializableRequest> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(hash(value))
    } catch (error) {
      return error instanceof UnserializableRequest ? Effect.fail(error) : Effect.die(error)
    }
  })
