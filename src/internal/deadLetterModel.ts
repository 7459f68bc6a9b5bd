/**
 * The dead-letter queue's data and errors, shared by the public module and the backends.
 *
 * @internal
 */
import type { Option } from "effect"
import { Schema } from "effect"

/**
 * A summary of the last error that can be stored as JSON and shown to a person.
 *
 * @since 0.1.0
 * @category models
 */
export interface LastError {
  /** The error's `_tag` (`"RateLimited"`), or its name for other errors. */
  readonly tag: string
  readonly message: string
  /** HTTP status, when the error came from a response. */
  readonly status: Option.Option<number>
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const LastError: Schema.Schema<
  LastError,
  { readonly tag: string; readonly message: string; readonly status: number | null }
> = Schema.Struct({ tag: Schema.String, message: Schema.String, status: Schema.OptionFromNullOr(Schema.Number) })

/**
 * One dead-lettered action.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  /** The action's idempotency key; unique in the queue. */
  readonly key: string
  /** The request as JSON (parsed back), for replay and inspection. */
  readonly request: unknown
  readonly lastError: LastError
  /** Attempts made for this key, added up over every time it was dead-lettered. */
  readonly attempts: number
  /** Epoch ms of the first time this key was dead-lettered. */
  readonly deadLetteredAt: number
  /** Epoch ms of the last change (a new dead-lettering or a failed replay). */
  readonly updatedAt: number
}

/**
 * What to dead-letter.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetterInput {
  readonly key: string
  /** Must be JSON-serialisable. */
  readonly request: unknown
  /** The last error; summarised with {@link summarize}. */
  readonly error: unknown
  /** Attempts made by this run. */
  readonly attempts: number
}

/**
 * The queue's backend failed, or the request could not be stored as JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeadLetterQueueError extends Schema.TaggedError<DeadLetterQueueError>()("DeadLetterQueueError", {
  operation: Schema.String,
  key: Schema.optional(Schema.String),
  cause: Schema.Defect
}) {
  override get message(): string {
    const target = this.key === undefined ? "" : ` for key "${this.key}"`
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `The dead-letter queue failed during ${this.operation}${target}: ${cause}`
  }
}

/**
 * No entry has this key (it was never dead-lettered, or was replayed or discarded already).
 *
 * @since 0.1.0
 * @category errors
 */
export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", {
  key: Schema.String
}) {
  override get message(): string {
    return (
      `No dead letter has the key "${this.key}": it may have been replayed or discarded already. ` +
      "List the queue (effect-idempotency dlq list) to see the keys it holds."
    )
  }
}
