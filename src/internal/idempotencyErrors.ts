/**
 * The errors `Idempotency` raises on its own account (the store's errors live in `IdempotencyStore`, the key's
 * in `IdempotencyKey`, the request's in `Fingerprint`). Re-exported from `Idempotency`.
 */
import { Schema } from "effect"

const instant = (epochMillis: number): string =>
  Number.isFinite(epochMillis) ? new Date(epochMillis).toISOString() : String(epochMillis)

/**
 * The key was first used with another request. Two different requests must not share a key, so nothing ran.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadMismatch extends Schema.TaggedError<PayloadMismatch>()("PayloadMismatch", {
  key: Schema.String,
  storedHash: Schema.String,
  requestHash: Schema.String
}) {
  override get message(): string {
    return (
      `The idempotency key "${this.key}" was first used with another request (fingerprint ${this.storedHash}, ` +
      `this one ${this.requestHash}), so nothing ran. Use a new key for a new request, or a fingerprint option ` +
      `that leaves out the fields that may differ between retries.`
    )
  }
}

/**
 * Another caller holds the key and is still working on it. `leaseExpiresAt` (epoch ms) is when its lease
 * ends: from then on a call with the same key may take over.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestInProgress extends Schema.TaggedError<RequestInProgress>()("RequestInProgress", {
  key: Schema.String,
  leaseExpiresAt: Schema.Number
}) {
  override get message(): string {
    return (
      `The idempotency key "${this.key}" is being processed by another caller; its lease ends at ` +
      `${instant(this.leaseExpiresAt)}. Retry after that, or pass onInProgress: "wait" to wait for its result.`
    )
  }
}

/**
 * A stored result no longer decodes with the Schema given now (the Schema changed since it was stored, the
 * row was edited, or a failure was stored but no `failure` Schema was given). Nothing ran.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoredValueInvalid extends Schema.TaggedError<StoredValueInvalid>()("StoredValueInvalid", {
  key: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return (
      `The stored result for idempotency key "${this.key}" does not decode with the given Schema: ` +
      `${String(this.cause)}. Make the Schema accept what was stored, or purge the key to run it afresh.`
    )
  }
}

/**
 * The effect succeeded but its value does not encode to JSON with the `success` Schema, so it could not be
 * stored. The claim was released: a later call runs the effect again.
 *
 * @since 0.1.0
 * @category errors
 */
export class ResponseInvalid extends Schema.TaggedError<ResponseInvalid>()("ResponseInvalid", {
  key: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return (
      `The result for idempotency key "${this.key}" could not be stored: ${String(this.cause)}. ` +
      `Fix the success Schema (its encoded side must be JSON) or the value the effect returns.`
    )
  }
}

/**
 * `Idempotency.await` found no record for the key: it was never submitted, it was released after a retryable
 * failure or an interruption, or it expired.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestNotFound extends Schema.TaggedError<RequestNotFound>()("RequestNotFound", {
  key: Schema.String
}) {
  override get message(): string {
    return (
      `There is no record for idempotency key "${this.key}": it was never submitted, was released after a ` +
      `retryable failure, or expired. Submit the request again with the same key.`
    )
  }
}
