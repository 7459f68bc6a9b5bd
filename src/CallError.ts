/**
 * What went wrong with a call to an AI provider, as a typed union that says whether trying again can help.
 *
 * Retryable: `RequestTimeout` (408 or a client-side timeout), `NetworkError` (reset, refused, hang-up),
 * `RateLimited` (429), `ServerError` (500, 502, 503, 504 and other 5xx), `Overloaded` (529) and `Conflict` (409:
 * the provider is still running a request with the same Idempotency-Key). Fatal: `BadRequest` (400),
 * `Unauthorized` (401), `Forbidden` (403), `NotFound` (404), `Unprocessable` (422), `InvalidResponse` (a 2xx
 * whose body is not a valid answer) and `ClientError` (any other status). A provider's `x-should-retry:
 * true|false` header overrides the status (kept in `shouldRetry`).
 *
 * Every member carries the HTTP `status` (none for transport failures), the provider's own error text
 * (`providerMessage`) and error `code`, its `requestId`, and the parsed `retryAfter` where the response gave one
 * (`retry-after-ms` / `retry-after` on any response; rate-limit reset headers only on a 429, since providers send
 * them on every response).
 * Timeouts and network errors carry a `phase`: `"connect"` means the request never left the client (free to
 * retry even without an idempotency key), `"read"` means it was sent and may have been executed.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Duration, Effect, Option, Predicate, Schema } from "effect"
import * as RetryAfter from "./RetryAfter.js"
import * as internal from "./internal/retryClassify.js"

const optionalOption = <S extends Schema.Schema.Any>(schema: S) =>
  Schema.optionalWith(Schema.OptionFromNullOr(schema), { default: () => Option.none() })

/**
 * Whether a transport failure happened before the request was sent (`"connect"`) or after (`"read"`).
 *
 * @since 0.1.0
 * @category models
 */
export const Phase = Schema.Literal("connect", "read")

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = typeof Phase.Type

const fields = {
  /** HTTP status of the response; none when no response arrived. */
  status: optionalOption(Schema.Number),
  /** The provider's request id (`x-request-id` / `request-id` header, or `request_id` in the body). */
  requestId: optionalOption(Schema.String),
  /** The provider's own error message, from an OpenAI- or Anthropic-shaped body or a plain-text body. */
  providerMessage: optionalOption(Schema.String),
  /** The provider's error code or type (`"insufficient_quota"`, `"overloaded_error"`, ...). */
  code: optionalOption(Schema.String),
  /** How long the provider asked to wait, parsed by `RetryAfter.parse`. Encoded as milliseconds. */
  retryAfter: optionalOption(Schema.DurationFromMillis),
  /** The provider's explicit verdict (`x-should-retry`); when present it overrides the status. */
  shouldRetry: optionalOption(Schema.Boolean),
  /**
   * Set by `RetryPolicy.retry` when a retry layer gave up on this error: an outer layer must not retry it
   * again (that is how retry storms multiply). It does not make the error fatal for the idempotency key.
   */
  exhausted: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** What the client observed, in words (`"no complete answer within 30s"`), when it has more to say. */
  detail: Schema.optional(Schema.String),
  /** The underlying failure, for transport errors and requests that could not be sent. */
  cause: Schema.optional(Schema.Defect)
}

const transportFields = { ...fields, phase: Phase }

interface Described {
  readonly detail?: string | undefined
  readonly status: Option.Option<number>
  readonly requestId: Option.Option<string>
  readonly providerMessage: Option.Option<string>
  readonly retryAfter: Option.Option<Duration.Duration>
  readonly exhausted: boolean
}

const describe = (self: Described, what: string, advice: string): string => {
  const parts = [what]
  if (self.detail !== undefined) {
    parts.push(`Detail: ${self.detail}.`)
  }
  Option.map(self.providerMessage, (text) => parts.push(`Provider said: "${text}".`))
  Option.map(self.retryAfter, (wait) => parts.push(`It asked to wait ${Duration.format(wait)}.`))
  Option.map(self.requestId, (id) => parts.push(`Request id: ${id}.`))
  parts.push(self.exhausted ? "Retries were exhausted for this call." : advice)
  return parts.join(" ")
}

const statusText = (status: Option.Option<number>) =>
  Option.match(status, { onNone: () => "", onSome: (code) => ` (HTTP ${code})` })

/**
 * The call timed out: HTTP 408 from the provider, or a client-side timeout. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", transportFields) {
  override get message(): string {
    return this.phase === "connect"
      ? describe(
          this,
          "Connecting to the provider timed out before the request was sent.",
          "Nothing ran on the provider, so retrying is safe; check the base URL and network if it persists."
        )
      : describe(
          this,
          `The provider did not answer in time after the request was sent${statusText(this.status)}.`,
          "It may have run the request: retry only with the same Idempotency-Key, or raise the timeout."
        )
  }
}

/**
 * The connection failed: refused, unreachable, reset or hung up. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", transportFields) {
  override get message(): string {
    const detail = this.cause === undefined ? "" : ` (${internal.causeText(this.cause)})`
    return this.phase === "connect"
      ? describe(
          this,
          `Could not connect to the provider${detail}; the request was not sent.`,
          "Retrying is safe; check that the provider's address is right and reachable."
        )
      : describe(
          this,
          `The connection to the provider broke after the request was sent${detail}.`,
          "The provider may have run it: retry with the same Idempotency-Key so it is not billed twice."
        )
  }
}

/**
 * HTTP 429: the provider's rate limit was hit. Retryable, after `retryAfter` when given.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider rate-limited the call${statusText(this.status)}.`,
      "Retry later; if it persists, lower the concurrency or raise the account's rate limit."
    )
  }
}

/**
 * HTTP 5xx (other than 529): the provider failed. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider failed with a server error${statusText(this.status)}.`,
      "Retry with the same Idempotency-Key; check the provider's status page if it persists."
    )
  }
}

/**
 * HTTP 529: the provider is overloaded. Retryable, preferably with generous backoff.
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider is overloaded${statusText(this.status)}.`,
      "Retry with backoff; lower the concurrency if it persists."
    )
  }
}

/**
 * HTTP 409 from a provider that honours Idempotency-Key: a request with the same key is still running.
 * Retryable: a later attempt gets that request's result.
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider is still processing a request with the same Idempotency-Key${statusText(this.status)}.`,
      "Retry shortly with the same key to receive that request's result."
    )
  }
}

/**
 * HTTP 400: the request is malformed. Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider rejected the request as malformed${statusText(this.status)}.`,
      "Fix the request body (model, messages, parameters); retrying the same request will not help."
    )
  }
}

/**
 * HTTP 401: the credentials were missing or wrong. Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider did not accept the credentials${statusText(this.status)}.`,
      "Check the API key (is it set, current and for this provider?); retrying will not help."
    )
  }
}

/**
 * HTTP 403: the credentials lack permission. Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider refused access${statusText(this.status)}.`,
      "The API key lacks permission for this model, organisation or region; retrying will not help."
    )
  }
}

/**
 * HTTP 404: no such endpoint or model. Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider found no such endpoint or model${statusText(this.status)}.`,
      "Check the base URL and the model name; retrying will not help."
    )
  }
}

/**
 * HTTP 422: the request is well-formed but cannot be processed. Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unprocessable extends Schema.TaggedError<Unprocessable>()("Unprocessable", fields) {
  override get message(): string {
    return describe(
      this,
      `The provider could not process the request${statusText(this.status)}.`,
      "Change the request's content; retrying the same request will not help."
    )
  }
}

/**
 * The provider answered with success (2xx) but the body is not a valid answer (`reason` says why). Fatal: the
 * provider has already run and billed the request, and with the same Idempotency-Key it would send the same
 * body again.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  ...fields,
  reason: Schema.String
}) {
  override get message(): string {
    return describe(
      this,
      `The provider answered${statusText(this.status)} but the body could not be read: ${this.reason}`,
      "Check that the base URL points at an OpenAI-compatible API and that the client's response schema matches."
    )
  }
}

/**
 * Any other refusal: another 4xx, an unexpected status, or a request that could not be built or sent
 * (invalid URL, body that does not encode). Fatal.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientError extends Schema.TaggedError<ClientError>()("ClientError", fields) {
  override get message(): string {
    return Option.isSome(this.status)
      ? describe(
          this,
          `The provider refused the request${statusText(this.status)}.`,
          "Retrying the same request will not help; check the request and account."
        )
      : describe(
          this,
          `The request could not be sent${this.cause === undefined ? "" : ` (${internal.causeText(this.cause)})`}.`,
          "Fix the request or client configuration; retrying will not help."
        )
  }
}

/**
 * The union of every failure a provider call can end with.
 *
 * @since 0.1.0
 * @category models
 */
export type CallError =
  | RequestTimeout
  | NetworkError
  | RateLimited
  | ServerError
  | Overloaded
  | Conflict
  | BadRequest
  | Unauthorized
  | Forbidden
  | NotFound
  | Unprocessable
  | InvalidResponse
  | ClientError

/**
 * Schema of the union, for storing an error as JSON (the idempotency store, the dead-letter queue) and reading
 * it back as the same class.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CallError = Schema.Union(
  RequestTimeout,
  NetworkError,
  RateLimited,
  ServerError,
  Overloaded,
  Conflict,
  BadRequest,
  Unauthorized,
  Forbidden,
  NotFound,
  Unprocessable,
  InvalidResponse,
  ClientError
)

/**
 * @since 0.1.0
 * @category models
 */
export type Tag = CallError["_tag"]

/**
 * The tags that are retryable unless the provider said otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const retryableTags: ReadonlySet<Tag> = new Set<Tag>([
  "RequestTimeout",
  "NetworkError",
  "RateLimited",
  "ServerError",
  "Overloaded",
  "Conflict"
])

const allTags: ReadonlySet<string> = new Set<Tag>([
  ...retryableTags,
  "BadRequest",
  "Unauthorized",
  "Forbidden",
  "NotFound",
  "Unprocessable",
  "InvalidResponse",
  "ClientError"
])

/**
 * @since 0.1.0
 * @category guards
 */
export const isCallError = (u: unknown): u is CallError =>
  Predicate.hasProperty(u, "_tag") &&
  typeof u._tag === "string" &&
  allTags.has(u._tag) &&
  Predicate.hasProperty(u, "status") &&
  Option.isOption(u.status)

/**
 * Whether the failure itself means the request will never succeed as sent: a fatal status, or the provider's
 * `x-should-retry: false`. A fatal error is a final answer for its idempotency key. Anything that is not a
 * `CallError` is not fatal by this predicate.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFatal = (u: unknown): boolean =>
  isCallError(u) &&
  Option.getOrElse(
    Option.map(u.shouldRetry, (retry) => !retry),
    () => !retryableTags.has(u._tag)
  )

/**
 * Whether trying again can help: a retryable status or transport failure (or the provider's
 * `x-should-retry: true`), not already given up on by an inner retry layer. Anything that is not a `CallError`
 * is not retryable.
 *
 * @since 0.1.0
 * @category predicates
 * @example
 * ```ts
 * import * as CallError from "effect-idempotency/CallError"
 *
 * CallError.isRetryable(CallError.fromResponse({ status: 503 })) // true
 * CallError.isRetryable(CallError.fromResponse({ status: 400 })) // false
 * CallError.isRetryable(CallError.fromResponse({ status: 400, headers: { "x-should-retry": "true" } })) // true
 * ```
 */
export const isRetryable = (u: unknown): boolean => isCallError(u) && !u.exhausted && !isFatal(u)

/**
 * A copy of `error` marked as given up on by a retry layer, so no outer layer retries it again.
 *
 * @since 0.1.0
 * @category constructors
 */
export const markExhausted = <E extends CallError>(error: E): E =>
  error.exhausted ? error : Object.assign(Object.create(Object.getPrototypeOf(error)), error, { exhausted: true })

/**
 * A response as `fromResponse` reads it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseInput {
  readonly status: number
  readonly headers?: RetryAfter.HeadersInput | undefined
  /** The body as text or as already-parsed JSON. */
  readonly body?: unknown
  /**
   * Epoch milliseconds to measure date-valued headers from. Defaults to the response's own `date` header;
   * without either, date-valued Retry-After headers are ignored. Never read from the system clock.
   */
  readonly now?: number | undefined
}

/**
 * Builds the right member of the union from a provider response.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Duration, Option } from "effect"
 * import * as CallError from "effect-idempotency/CallError"
 *
 * const error = CallError.fromResponse({
 *   status: 429,
 *   headers: { "Retry-After": "10", "x-request-id": "req_1" },
 *   body: { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } }
 * })
 * error._tag // "RateLimited"
 * Option.map(error.retryAfter, Duration.toSeconds) // Option.some(10)
 * ```
 */
export const fromResponse = (response: ResponseInput): CallError => {
  const headers = internal.normalize(response.headers)
  const body = internal.readBody(response.body)
  const now = response.now !== undefined ? Option.some(response.now) : internal.dateHeader(headers)
  const props = {
    status: Option.some(response.status),
    requestId: Option.orElse(internal.requestIdHeader(headers), () => body.requestId),
    providerMessage: body.message,
    code: body.code,
    retryAfter: RetryAfter.parseOption(headers, now, { resetHeaders: response.status === 429 }),
    shouldRetry: Option.orElse(internal.shouldRetryHeader(headers), () => internal.codeVerdict(body.code))
  }
  switch (response.status) {
    case 400:
      return new BadRequest(props)
    case 401:
      return new Unauthorized(props)
    case 403:
      return new Forbidden(props)
    case 404:
      return new NotFound(props)
    case 408:
      return new RequestTimeout({ ...props, phase: "read" })
    case 409:
      return new Conflict(props)
    case 422:
      return new Unprocessable(props)
    case 429:
      return new RateLimited(props)
    case 529:
      return new Overloaded(props)
  }
  return response.status >= 500 && response.status <= 599 ? new ServerError(props) : new ClientError(props)
}

/**
 * {@link fromResponse} with date-valued headers measured from Effect's `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromResponseEffect = (response: Omit<ResponseInput, "now">): Effect.Effect<CallError> =>
  Effect.map(Clock.currentTimeMillis, (now) => fromResponse({ ...response, now }))

/**
 * Classifies a failure that happened instead of a response: a Node or undici socket error (ECONNREFUSED,
 * ECONNRESET, EPIPE, ETIMEDOUT, "socket hang up", ...), an abort or timeout (`AbortError`, `TimeoutError`,
 * Effect's `TimeoutException`), an @effect/platform `RequestError` / `ResponseError`, or a `Cause` of those.
 * A `CallError` is returned as it is.
 *
 * `phase` is what the caller knows about where the failure happened and wins over what the cause suggests.
 * Otherwise refusals, DNS failures and connect timeouts are `"connect"` and everything else is `"read"`, the
 * cautious reading (the request may have reached the provider). A failure that is none of the above is taken
 * as a `NetworkError` of unknown outcome: retryable, under the same idempotency key.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as CallError from "effect-idempotency/CallError"
 *
 * const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })
 * CallError.fromCause(refused) // NetworkError { phase: "connect" }
 * ```
 */
export const fromCause = (cause: unknown, phase?: Phase): CallError => {
  if (isCallError(cause)) {
    return cause
  }
  if (Cause.isCause(cause)) {
    return fromCause(Cause.squash(cause), phase)
  }
  const classified = internal.classify(cause)
  switch (classified._tag) {
    case "Response":
      return fromResponse({ status: classified.status, headers: classified.headers })
    case "Unsendable":
      return new ClientError({ cause: classified.cause })
    case "Timeout":
      return new RequestTimeout({ phase: phase ?? classified.phase, cause })
    case "Network":
      return new NetworkError({ phase: phase ?? classified.phase, cause })
  }
}
