/**
 * How `effect-idempotency dlq replay` re-runs a dead letter: the stored chat completion request is sent again
 * through `Idempotency.execute` under the entry's own key, on the idempotency store in the same `--db` file,
 * with the same `Idempotency-Key` header. A request the provider did run (and bill) before is answered from the
 * store or replayed by the provider; it is never billed twice.
 *
 * The provider is named by the environment, never assumed: `EFFECT_IDEMPOTENCY_BASE_URL` (the API root with its
 * version prefix, e.g. `https://api.openai.com/v1`) and, optionally, `EFFECT_IDEMPOTENCY_API_KEY`; an empty value
 * counts as unset. Each request may take 15 seconds and the whole replay, retries included, 60 seconds.
 *
 * @since 0.1.0
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, Data, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as AiClient from "../AiClient.js"
import * as ChatCompletion from "../ChatCompletion.js"
import type * as DeadLetterQueue from "../DeadLetterQueue.js"
import * as Idempotency from "../Idempotency.js"
import * as IdempotencyStore from "../IdempotencyStore.js"

/**
 * The environment variable naming the provider to replay against.
 *
 * @since 0.1.0
 * @category constants
 */
export const baseUrlVariable = "EFFECT_IDEMPOTENCY_BASE_URL"

/**
 * The environment variable holding the provider's API key.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "EFFECT_IDEMPOTENCY_API_KEY"

/**
 * A replay was asked for but no provider is configured.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplayNotConfigured extends Data.TaggedError("ReplayNotConfigured")<{ readonly key: string }> {
  override get message(): string {
    return `cannot replay "${this.key}": set ${baseUrlVariable} to the provider's API root (e.g. http://127.0.0.1:8080/v1)`
  }
}

/**
 * The dead letter's request is not a chat completion request, so this command cannot re-send it.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotAChatRequest extends Data.TaggedError("NotAChatRequest")<{ readonly key: string }> {
  override get message(): string {
    return `cannot replay "${this.key}": its stored request is not a chat completion request`
  }
}

/**
 * The replay did not finish within its time bound. The entry is kept, with this as its last error.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplayTimedOut extends Data.TaggedError("ReplayTimedOut")<{
  readonly key: string
  readonly after: Duration.Duration
}> {
  override get message(): string {
    return (
      `cannot replay "${this.key}": no answer from the provider within ${Duration.format(this.after)}; the entry ` +
      "is kept, try again later (the same key is sent, so a request the provider did run is not billed twice)"
    )
  }
}

/**
 * Time one replay request may take before it counts as timed out (the client's own default is 60 seconds).
 *
 * @since 0.1.0
 * @category constants
 */
export const attemptTimeout: Duration.Duration = Duration.seconds(15)

/**
 * Time a whole replay may take, retries and their waits included; a person is waiting at the terminal.
 *
 * @since 0.1.0
 * @category constants
 */
export const totalTimeout: Duration.Duration = Duration.seconds(60)

/** A variable that is unset, empty or only blanks is not configured. */
const nonBlank = (name: string) =>
  Config.option(Config.string(name)).pipe(Effect.orDie, Effect.map(Option.filter((value) => value.trim() !== "")))

const baseUrl = (key: string) =>
  Effect.flatMap(
    nonBlank(baseUrlVariable),
    Option.match({ onNone: () => Effect.fail(new ReplayNotConfigured({ key })), onSome: Effect.succeed })
  )

const chatRequest = (entry: DeadLetterQueue.DeadLetter) =>
  Schema.decodeUnknown(ChatCompletion.ChatCompletionRequest)(entry.request).pipe(
    Effect.mapError(() => new NotAChatRequest({ key: entry.key }))
  )

/**
 * What must hold before a replay is tried: a provider is configured and the entry holds a chat completion request.
 * The dlq command runs it before `DeadLetterQueue.replay`, so that a failure here leaves the entry, and the error
 * it records, as they were.
 *
 * @since 0.1.0
 * @category replay
 */
export const check = (entry: DeadLetterQueue.DeadLetter): Effect.Effect<void, ReplayNotConfigured | NotAChatRequest> =>
  Effect.zipRight(baseUrl(entry.key), chatRequest(entry))

/**
 * Builds the function that re-runs one dead letter, with its time bounds (default {@link attemptTimeout} per
 * request and {@link totalTimeout} in all). Needs the `SqlClient` of the `--db` file (the dlq command provides it).
 *
 * @since 0.1.0
 * @category replay
 */
export const makeRerun =
  (bounds: { readonly attemptTimeout?: Duration.DurationInput; readonly totalTimeout?: Duration.DurationInput } = {}) =>
  (entry: DeadLetterQueue.DeadLetter): Effect.Effect<ChatCompletion.ChatCompletion, unknown, SqlClient.SqlClient> =>
    Effect.gen(function* () {
      const url = yield* baseUrl(entry.key)

      const apiKey = yield* nonBlank(apiKeyVariable)

      const request = yield* chatRequest(entry)

      const client = AiClient.layer({
        baseUrl: url,
        apiKey: Option.getOrUndefined(Option.map(apiKey, Redacted.make)),
        timeout: bounds.attemptTimeout ?? attemptTimeout
      }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      const total = Duration.decode(bounds.totalTimeout ?? totalTimeout)
      return yield* AiClient.createChatCompletion(request, { idempotencyKey: entry.key }).pipe(
        Idempotency.execute({ key: entry.key, request, success: ChatCompletion.ChatCompletion }),
        Effect.provide(Layer.merge(client, IdempotencyStore.layerSql())),
        Effect.timeoutFail({ duration: total, onTimeout: () => new ReplayTimedOut({ key: entry.key, after: total }) })
      )
    }).pipe(Effect.withSpan("Cli.replayDeadLetter"))

/**
 * Re-runs one dead letter with the default time bounds.
 *
 * @since 0.1.0
 * @category replay
 */
export const rerun = makeRerun()
