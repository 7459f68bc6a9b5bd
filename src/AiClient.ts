/**
 * An OpenAI-compatible chat completion client over `@effect/platform`'s `HttpClient`, built so that a retry
 * can never make the provider run a request twice.
 *
 * - Every attempt of one call carries the same `Idempotency-Key` header: the caller's key when given (as the
 *   `idempotencyKey` option or as a header in any letter case), otherwise one generated per call.
 * - What HTTP cannot carry is refused before anything is sent, as a fatal `ClientError` that is never retried: an
 *   empty key, a key outside printable ASCII (U+0020–U+007E) or with a space at either end (build keys with
 *   `IdempotencyKey.make`), a header name or value HTTP cannot encode, and a body with no JSON form (a bigint).
 * - Each attempt has its own timeout. A timeout is a `RequestTimeout` with `phase: "read"`: the request may have
 *   reached the provider, so the outcome is unknown and only a retry under the same key is safe.
 * - Non-2xx answers become `CallError`s through `CallError.fromResponse` (Retry-After measured from `Clock`),
 *   transport failures through `CallError.fromCause`, and a 2xx body that is not a chat completion becomes
 *   `InvalidResponse`.
 * - Retries follow a `Schedule` (default `RetryPolicy.make()`), and only ever for `CallError.isRetryable`
 *   errors, whatever the schedule says.
 *
 * The base URL includes the API version prefix, as in OpenAI's own SDKs: with `baseUrl:
 * "https://api.openai.com/v1"` the client posts to `https://api.openai.com/v1/chat/completions`.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type { Duration, Redacted, Schedule } from "effect"
import { Context, Effect, Layer } from "effect"
import type * as CallError from "./CallError.js"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/aiClient.js"

/**
 * The header that carries the idempotency key on every attempt.
 *
 * @since 0.1.0
 * @category constants
 */
export const idempotencyKeyHeader: string = internal.idempotencyKeyHeader

/**
 * Per-call options.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /**
   * The key for this call; ignored when `headers` already carries an `Idempotency-Key` (any case). Either must be
   * printable ASCII with no space at either end, or the call fails at once with a `ClientError`.
   */
  readonly idempotencyKey?: string | undefined
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Time allowed for each attempt; overrides the layer's `timeout`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AiClientShape {
  /**
   * `POST {baseUrl}/chat/completions` with `body`, retried under one idempotency key. Fails with the last
   * `CallError` when the error is fatal or the schedule gives up.
   */
  readonly createChatCompletion: (
    body: ChatCompletion.ChatCompletionRequest,
    options?: CallOptions
  ) => Effect.Effect<ChatCompletion.ChatCompletion, CallError.CallError>
}

/**
 * The client service.
 *
 * @since 0.1.0
 * @category tags
 */
export class AiClient extends Context.Tag("effect-idempotency/AiClient")<AiClient, AiClientShape>() {}

/**
 * Options of {@link layer} and {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /** The API root including its version prefix, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string
  /** Sent as `Authorization: Bearer <apiKey>` when given. */
  readonly apiKey?: Redacted.Redacted | undefined
  /** Time allowed for each attempt. Default 60 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * When to try again. Default `RetryPolicy.make()`. Only `CallError.isRetryable` errors are ever retried,
   * whatever the schedule says; pass `Schedule.stop` to disable retries. The schedule's requirements (e.g. a
   * `RetryBudget` for `RetryPolicy.make({ budget: true })`) are taken from the layer's context. When a
   * `RetryBudget` is there (or in the caller's context), every successful call is recorded in it, once even
   * inside a budgeted `RetryPolicy.retry`, so retries stay a fraction of traffic without further wiring. An error that is
   * still retryable when the schedule gives up after retrying comes back marked `exhausted`, so an outer retry
   * layer does not multiply the attempts (with retries disabled it comes back unmarked).
   */
  readonly retry?: Schedule.Schedule<unknown, CallError.CallError, R> | undefined
}

/**
 * Builds the client from an `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <R = never>(options: Options<R>) => Effect.Effect<AiClientShape, never, HttpClient.HttpClient | R> =
  internal.make

/**
 * The client as a Layer; provide an `HttpClient` (e.g. `NodeHttpClient.layerUndici` or `FetchHttpClient.layer`).
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Effect, Layer, Redacted } from "effect"
 * import { AiClient } from "effect-idempotency"
 *
 * const ClientLive = AiClient.layer({
 *   baseUrl: "https://api.openai.com/v1",
 *   apiKey: Redacted.make("sk-..."),
 *   timeout: "30 seconds"
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 *
 * const program = AiClient.createChatCompletion(
 *   { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] },
 *   { idempotencyKey: "chatmsg:conv_782:msg_991" }
 * ).pipe(Effect.provide(ClientLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(options: Options<R>): Layer.Layer<AiClient, never, HttpClient.HttpClient | R> =>
  Layer.effect(AiClient, make(options))

/**
 * Calls `createChatCompletion` on the `AiClient` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const createChatCompletion = (
  body: ChatCompletion.ChatCompletionRequest,
  options?: CallOptions
): Effect.Effect<ChatCompletion.ChatCompletion, CallError.CallError, AiClient> =>
  Effect.flatMap(AiClient, (client) => client.createChatCompletion(body, options))
