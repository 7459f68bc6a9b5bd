/**
 * The HTTP side of `AiClient`: one attempt as a request/response exchange, its classification into
 * `CallError`, and the retry loop around it.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Clock, Duration, Effect, Option, ParseResult, Schedule, Schema } from "effect"
import type { Redacted } from "effect"
import { identity } from "effect/Function"
import { randomUUID } from "node:crypto"
import * as CallError from "../CallError.js"
import * as ChatCompletion from "../ChatCompletion.js"
import * as RetryPolicy from "../RetryPolicy.js"

/** @internal */
export const idempotencyKeyHeader = "Idempotency-Key"

/** @internal */
export interface CallOptions {
  readonly idempotencyKey?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/** @internal */
export interface ClientOptions<R = never> {
  readonly baseUrl: string
  readonly apiKey?: Redacted.Redacted | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly retry?: Schedule.Schedule<unknown, CallError.CallError, R> | undefined
}

/** @internal */
export const defaultTimeout = Duration.seconds(60)

/**
 * The key the caller already put among `headers`, whatever its case (HTTP header names are case-insensitive,
 * so `idempotency-key` and `IDEMPOTENCY-KEY` are the same header and must not be sent twice).
 *
 * @internal
 */
export const suppliedKey = (headers: Readonly<Record<string, string>> | undefined): Option.Option<string> => {
  if (headers === undefined) {
    return Option.none()
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === "idempotency-key") {
      return Option.some(value)
    }
  }
  return Option.none()
}

/** @internal */
export const completionsUrl = (baseUrl: string): string => `${baseUrl.replace(/\/+$/, "")}/chat/completions`

/**
 * Streamed completions are refused before anything is sent. A stream that breaks after some tokens reached the
 * caller cannot be retried without showing that prefix twice, and this client has no stream consumer to
 * restart; failing up front means no retry can ever duplicate part of an answer.
 */
const streamRefused = () =>
  new CallError.ClientError({
    detail: "createChatCompletion answers non-streamed requests only; remove `stream: true` from the body"
  })

const decodeCompletion = Schema.decodeUnknown(Schema.parseJson(ChatCompletion.ChatCompletion))

/** @internal */
export const make = <R = never>(options: ClientOptions<R>) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const context = yield* Effect.context<R>()
    const url = completionsUrl(options.baseUrl)
    const schedule: Schedule.Schedule<unknown, CallError.CallError, R> = options.retry ?? RetryPolicy.make()

    const attempt = (request: HttpClientRequest.HttpClientRequest, key: string, timeout: Duration.Duration) =>
      Effect.gen(function* () {
        const response = yield* client.execute(request).pipe(Effect.mapError((error) => CallError.fromCause(error)))

        const body = yield* response.text.pipe(Effect.mapError((error) => CallError.fromCause(error, "read")))

        if (response.status < 200 || response.status > 299) {
          const now = yield* Clock.currentTimeMillis
          return yield* Effect.fail(
            CallError.fromResponse({ status: response.status, headers: response.headers, body, now })
          )
        }

        return yield* decodeCompletion(body).pipe(
          Effect.mapError(
            (error) =>
              new CallError.InvalidResponse({
                status: Option.some(response.status),
                requestId: Option.fromNullable(response.headers["x-request-id"]),
                reason: ParseResult.TreeFormatter.formatErrorSync(error)
              })
          )
        )
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new CallError.RequestTimeout({
              status: Option.none(),
              requestId: Option.none(),
              phase: "read",
              detail: `no complete answer within ${Duration.format(timeout)} (Idempotency-Key ${key})`
            })
        })
      )

    const createChatCompletion = (
      body: ChatCompletion.ChatCompletionRequest,
      call: CallOptions = {}
    ): Effect.Effect<ChatCompletion.ChatCompletion, CallError.CallError> => {
      if (body.stream === true) {
        return Effect.failSync(streamRefused)
      }

      const supplied = suppliedKey(call.headers)
      const key = Option.getOrElse(
        Option.orElse(supplied, () => Option.fromNullable(call.idempotencyKey)),
        () => randomUUID()
      )
      const headers = Option.isSome(supplied) ? { ...call.headers } : { ...call.headers, [idempotencyKeyHeader]: key }
      const request = HttpClientRequest.post(url).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeaders(headers),
        options.apiKey === undefined ? identity : HttpClientRequest.bearerToken(options.apiKey),
        HttpClientRequest.bodyUnsafeJson(body)
      )
      const timeout = Duration.decode(call.timeout ?? options.timeout ?? defaultTimeout)

      return Effect.suspend(() => {
        let attempts = 0

        return Effect.suspend(() => {
          attempts += 1
          return attempt(request, key, timeout)
        }).pipe(
          Effect.retry({ schedule, while: CallError.isRetryable }),
          // Retried and given up on: an outer retry layer must not start over and multiply the attempts. A call
          // this client did not retry at all (retries disabled, or refused at once) is left for the caller.
          Effect.mapError((error) =>
            attempts > 1 && CallError.isRetryable(error) ? CallError.markExhausted(error) : error
          )
        )
      }).pipe(
        Effect.provide(context),
        Effect.withSpan("AiClient.createChatCompletion", {
          attributes: { "gen_ai.request.model": body.model, "idempotency.key": key }
        })
      )
    }

    return { createChatCompletion } as const
  })
