/**
 * How `effect-idempotency dlq replay` re-runs a dead letter: the stored chat completion request is sent again
 * through `Idempotency.execute` under the entry's own key, on the idempotency store in the same `--db` file,
 * with the same `Idempotency-Key` header. A request the provider did run (and bill) before is answered from the
 * store or replayed by the provider; it is never billed twice.
 *
 * The provider is named by the environment, never assumed: `EFFECT_IDEMPOTENCY_BASE_URL` (the API root with its
 * version prefix, e.g. `https://api.openai.com/v1`) and, optionally, `EFFECT_IDEMPOTENCY_API_KEY`.
 *
 * @since 0.1.0
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, Data, Effect, Layer, Option, Schema } from "effect"
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
 * Re-runs one dead letter. Needs the `SqlClient` of the `--db` file (the dlq command provides it).
 *
 * @since 0.1.0
 * @category replay
 */
export const rerun = (
  entry: DeadLetterQueue.DeadLetter
): Effect.Effect<ChatCompletion.ChatCompletion, unknown, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const baseUrl = yield* Config.option(Config.string(baseUrlVariable)).pipe(
      Effect.orDie,
      Effect.flatMap(
        Option.match({ onNone: () => Effect.fail(new ReplayNotConfigured({ key: entry.key })), onSome: Effect.succeed })
      )
    )
    const apiKey = yield* Config.option(Config.redacted(apiKeyVariable)).pipe(Effect.orDie)

    const request = yield* Schema.decodeUnknown(ChatCompletion.ChatCompletionRequest)(entry.request).pipe(
      Effect.mapError(() => new NotAChatRequest({ key: entry.key }))
    )

    const client = AiClient.layer({ baseUrl, apiKey: Option.getOrUndefined(apiKey) }).pipe(
      Layer.provide(NodeHttpClient.layerUndici)
    )
    return yield* AiClient.createChatCompletion(request, { idempotencyKey: entry.key }).pipe(
      Idempotency.execute({ key: entry.key, request, success: ChatCompletion.ChatCompletion }),
      Effect.provide(Layer.merge(client, IdempotencyStore.layerSql()))
    )
  }).pipe(Effect.withSpan("Cli.replayDeadLetter"))
