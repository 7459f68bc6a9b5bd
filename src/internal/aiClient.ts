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
import * as RetryBudget from "../RetryBudget.js"
import * as RetryPolicy from "../RetryPolicy.js"
import { trackOption } from "./retryBudgetTrack.js"

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

/**
 * A key HTTP carries unchanged: printable ASCII (U+0020–U+007E), at least one character, no space at either end
 * (HTTP trims header values, so `" order-42 "` would reach the provider as `"order-42"`).
 */
const sendableKey = /^[\u0021-\u007e](?:[\u0020-\u007e]*[\u0021-\u007e])?$/

/** An HTTP field name (RFC 9110 token). */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** An HTTP field value: tab, visible ASCII, space and obs-text (U+0080–U+00FF), nothing else. */
const headerValue = /^[\t\u0020-\u007e\u0080-\u00ff]*$/

const unsendable = (detail: string) => new CallError.ClientError({ detail })

/**
 * Checks what the caller supplied before anything is sent: a key or header HTTP cannot carry would otherwise fail
 * inside the HTTP client, look like a broken connection, and be retried for nothing.
 *
 * @internal
 */
export const checkCallHeaders = (
  supplied: Option.Option<string>,
  call: CallOptions
): Option.Option<CallError.ClientError> => {
  const key = Option.orElse(supplied, () => Option.fromNullable(call.idempotencyKey))
  if (Option.isSome(key) && !sendableKey.test(key.value)) {
    return Option.some(
      unsendable(
        `the Idempotency-Key ${JSON.stringify(key.value)} cannot be sent as an HTTP header: it must be 1 or more ` +
          `printable ASCII characters (U+0020–U+007E) with no space at either end; build it with ` +
          `IdempotencyKey.make, and percent-encode (encodeURIComponent) or hash business ids in other scripts`
      )
    )
  }
  for (const [name, value] of Object.entries(call.headers ?? {})) {
    if (!headerName.test(name)) {
      return Option.some(
        unsendable(`the header name ${JSON.stringify(name)} is not an HTTP token; use letters, digits and -`)
      )
    }
    if (typeof value !== "string" || !headerValue.test(value)) {
      return Option.some(
        unsendable(
          `the value of header ${JSON.stringify(name)} cannot be sent over HTTP (${JSON.stringify(value)}): ` +
            `use printable ASCII, and percent-encode other text`
        )
      )
    }
  }
  return Option.none()
}

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

    const prepareCall = (
      body: ChatCompletion.ChatCompletionRequest,
      call: CallOptions
    ): Effect.Effect<ChatCompletion.ChatCompletion, CallError.CallError> => {
      if (body.stream === true) {
        return Effect.failSync(streamRefused)
      }

      const supplied = suppliedKey(call.headers)
      const refused = checkCallHeaders(supplied, call)
      if (Option.isSome(refused)) {
        return Effect.fail(refused.value)
      }
      const key = Option.getOrElse(
        Option.orElse(supplied, () => Option.fromNullable(call.idempotencyKey)),
        () => randomUUID()
      )
      const headers = Option.isSome(supplied) ? { ...call.headers } : { ...call.headers, [idempotencyKeyHeader]: key }
      const unencoded = HttpClientRequest.post(url).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeaders(headers),
        options.apiKey === undefined ? identity : HttpClientRequest.bearerToken(options.apiKey)
      )
      const timeout = Duration.decode(call.timeout ?? options.timeout ?? defaultTimeout)

      return Effect.gen(function* () {
        const request = yield* HttpClientRequest.bodyJson(unencoded, body).pipe(
          Effect.mapError(
            (error) =>
              new CallError.ClientError({
                detail:
                  "the request body has no JSON form (a bigint, a cycle or a value JSON.stringify rejects); " +
                  "convert such values (e.g. a bigint to a string or number) before the call",
                cause: error
              })
          )
        )

        const budget = yield* Effect.serviceOption(RetryBudget.RetryBudget)

        let attempts = 0

        return yield* Effect.suspend(() => {
          attempts += 1
          return attempt(request, key, timeout)
        }).pipe(
          Effect.retry({ schedule, while: CallError.isRetryable }),
          // A success refills the shared budget that a `budget: true` schedule spends from.
          (retried) => trackOption(retried, budget),
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

    // Suspended so that each run of the returned effect makes its own key when the caller gave none.
    const createChatCompletion = (
      body: ChatCompletion.ChatCompletionRequest,
      call: CallOptions = {}
    ): Effect.Effect<ChatCompletion.ChatCompletion, CallError.CallError> =>
      Effect.suspend(() => prepareCall(body, call))

    return { createChatCompletion } as const
  })
