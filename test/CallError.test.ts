import { assert, describe, it } from "@effect/vitest"
import { assertFalse, assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Duration, Effect, Option, Schema, TestClock } from "effect"
import * as CallError from "../src/CallError.js"

const millis = (error: CallError.CallError) => Option.map(error.retryAfter, Duration.toMillis)

describe("CallError.fromResponse", () => {
  it("maps each status to its member and retryability", () => {
    const table: ReadonlyArray<readonly [number, CallError.Tag, boolean]> = [
      [400, "BadRequest", false],
      [401, "Unauthorized", false],
      [403, "Forbidden", false],
      [404, "NotFound", false],
      [408, "RequestTimeout", true],
      [409, "Conflict", true],
      [410, "ClientError", false],
      [413, "ClientError", false],
      [422, "Unprocessable", false],
      [429, "RateLimited", true],
      [500, "ServerError", true],
      [501, "ServerError", true],
      [502, "ServerError", true],
      [503, "ServerError", true],
      [504, "ServerError", true],
      [529, "Overloaded", true],
      [302, "ClientError", false]
    ]
    const actual = table.map(([status]) => {
      const error = CallError.fromResponse({ status })
      return [status, error._tag, CallError.isRetryable(error)] as const
    })
    deepStrictEqual(actual, table)
  })

  it("keeps the OpenAI error message, code and request id", () => {
    const error = CallError.fromResponse({
      status: 429,
      headers: { "Retry-After": "10", "X-Request-Id": "req_abc" },
      body: '{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}}'
    })
    strictEqual(error._tag, "RateLimited")
    deepStrictEqual(error.providerMessage, Option.some("Rate limit reached for gpt-4o"))
    deepStrictEqual(error.code, Option.some("rate_limit_exceeded"))
    deepStrictEqual(error.requestId, Option.some("req_abc"))
    deepStrictEqual(error.status, Option.some(429))
    deepStrictEqual(millis(error), Option.some(10_000))
    assert.include(error.message, "Rate limit reached for gpt-4o")
    assert.include(error.message, "req_abc")
  })

  it("keeps the Anthropic error message from parsed JSON and the request-id header", () => {
    const error = CallError.fromResponse({
      status: 529,
      headers: new Headers({ "request-id": "req_01X" }),
      body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }
    })
    strictEqual(error._tag, "Overloaded")
    deepStrictEqual(error.providerMessage, Option.some("Overloaded"))
    deepStrictEqual(error.code, Option.some("overloaded_error"))
    deepStrictEqual(error.requestId, Option.some("req_01X"))
  })

  it("reads a plain-text body as the message and tolerates a body that is not JSON", () => {
    deepStrictEqual(
      CallError.fromResponse({ status: 502, body: "Bad Gateway" }).providerMessage,
      Option.some("Bad Gateway")
    )
    deepStrictEqual(
      CallError.fromResponse({ status: 502, body: "{not json" }).providerMessage,
      Option.some("{not json")
    )
    deepStrictEqual(CallError.fromResponse({ status: 502, body: "" }).providerMessage, Option.none())
  })

  it("lets x-should-retry override the status, in any case", () => {
    const table: ReadonlyArray<readonly [number, string, boolean, boolean]> = [
      [400, "true", true, false],
      [500, "false", false, true],
      [429, "FALSE", false, true],
      [503, "maybe", true, false]
    ]
    const actual = table.map(([status, value]) => {
      const error = CallError.fromResponse({ status, headers: { "X-Should-Retry": value } })
      return [status, value, CallError.isRetryable(error), CallError.isFatal(error)] as const
    })
    deepStrictEqual(actual, table)
  })

  it("does not retry a 429 for an exhausted quota, unless the provider says to", () => {
    const quota = {
      error: { message: "You exceeded your current quota", type: "insufficient_quota", code: "insufficient_quota" }
    }
    assertFalse(CallError.isRetryable(CallError.fromResponse({ status: 429, body: quota })))
    assertTrue(
      CallError.isRetryable(CallError.fromResponse({ status: 429, body: quota, headers: { "x-should-retry": "true" } }))
    )
  })

  it("measures an HTTP-date Retry-After from `now`, else from the response's date header", () => {
    const headers = { "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT" }
    const now = Date.UTC(2026, 8, 11, 12, 0, 0)
    deepStrictEqual(millis(CallError.fromResponse({ status: 503, headers, now })), Option.some(30_000))
    deepStrictEqual(
      millis(CallError.fromResponse({ status: 503, headers: { ...headers, Date: "Fri, 11 Sep 2026 12:00:10 GMT" } })),
      Option.some(20_000)
    )
    deepStrictEqual(millis(CallError.fromResponse({ status: 503, headers })), Option.none())
  })

  it("reads rate-limit reset headers as a wait only on a 429", () => {
    const headers = { "x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0" }
    deepStrictEqual(millis(CallError.fromResponse({ status: 429, headers })), Option.some(360_000))
    deepStrictEqual(millis(CallError.fromResponse({ status: 503, headers })), Option.none())
    deepStrictEqual(
      millis(CallError.fromResponse({ status: 503, headers: { ...headers, "retry-after": "2" } })),
      Option.some(2000)
    )
  })

  it.effect("fromResponseEffect measures dates from the Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 8, 11, 12, 0, 0))

      const error = yield* CallError.fromResponseEffect({
        status: 503,
        headers: { "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT" }
      })

      deepStrictEqual(millis(error), Option.some(30_000))
    })
  )

  it("round-trips through the schema as JSON", () => {
    const error = CallError.fromResponse({
      status: 429,
      headers: { "retry-after-ms": "1500", "x-request-id": "req_1" },
      body: { error: { message: "slow down" } }
    })
    const json = JSON.parse(JSON.stringify(Schema.encodeSync(CallError.CallError)(error)))
    deepStrictEqual(json, {
      _tag: "RateLimited",
      status: 429,
      requestId: "req_1",
      providerMessage: "slow down",
      code: null,
      retryAfter: 1500,
      shouldRetry: null,
      exhausted: false
    })
    const decoded = Schema.decodeUnknownSync(CallError.CallError)(json)
    assert.instanceOf(decoded, CallError.RateLimited)
    deepStrictEqual(millis(decoded), Option.some(1500))
  })
})

describe("CallError.fromCause", () => {
  const nodeError = (message: string, props: Record<string, unknown>) => Object.assign(new Error(message), props)

  it("classifies transport failures with their phase", () => {
    const table: ReadonlyArray<readonly [unknown, CallError.Tag, "connect" | "read" | "none"]> = [
      [
        nodeError("connect ECONNREFUSED 127.0.0.1:9", { code: "ECONNREFUSED", syscall: "connect" }),
        "NetworkError",
        "connect"
      ],
      [nodeError("getaddrinfo ENOTFOUND api.invalid", { code: "ENOTFOUND" }), "NetworkError", "connect"],
      [nodeError("read ECONNRESET", { code: "ECONNRESET", syscall: "read" }), "NetworkError", "read"],
      [nodeError("write EPIPE", { code: "EPIPE" }), "NetworkError", "read"],
      [nodeError("socket hang up", {}), "NetworkError", "read"],
      [nodeError("connect ETIMEDOUT", { code: "ETIMEDOUT", syscall: "connect" }), "RequestTimeout", "connect"],
      [nodeError("read ETIMEDOUT", { code: "ETIMEDOUT", syscall: "read" }), "RequestTimeout", "read"],
      [nodeError("Connect Timeout Error", { code: "UND_ERR_CONNECT_TIMEOUT" }), "RequestTimeout", "connect"],
      [nodeError("Headers Timeout Error", { code: "UND_ERR_HEADERS_TIMEOUT" }), "RequestTimeout", "read"],
      [new DOMException("This operation was aborted", "AbortError"), "RequestTimeout", "read"],
      [new DOMException("The operation timed out", "TimeoutError"), "RequestTimeout", "read"],
      [new Cause.TimeoutException("timed out"), "RequestTimeout", "read"],
      [
        new TypeError("fetch failed", { cause: nodeError("connect ECONNREFUSED", { code: "ECONNREFUSED" }) }),
        "NetworkError",
        "connect"
      ],
      [
        { _tag: "RequestError", reason: "Transport", cause: nodeError("read ECONNRESET", { code: "ECONNRESET" }) },
        "NetworkError",
        "read"
      ],
      [
        { _tag: "RequestError", reason: "Transport", cause: nodeError("x", { code: "ECONNREFUSED" }) },
        "NetworkError",
        "connect"
      ],
      [new Error("something nobody expected"), "NetworkError", "read"]
    ]
    const actual = table.map(([cause]) => {
      const error = CallError.fromCause(cause)
      return [cause, error._tag, "phase" in error ? error.phase : "none"] as const
    })
    deepStrictEqual(actual, table)
  })

  it("lets the caller's phase win", () => {
    const error = CallError.fromCause(new Cause.TimeoutException(), "connect")
    strictEqual(error._tag, "RequestTimeout")
    strictEqual((error as CallError.RequestTimeout).phase, "connect")
  })

  it("treats a request that could not be built as fatal", () => {
    const error = CallError.fromCause({
      _tag: "RequestError",
      reason: "InvalidUrl",
      cause: new TypeError("Invalid URL")
    })
    strictEqual(error._tag, "ClientError")
    assertTrue(CallError.isFatal(error))
    assert.include(error.message, "Invalid URL")
  })

  it("treats a header the HTTP stack refused to encode as fatal: nothing was sent", () => {
    const error = CallError.fromCause({
      _tag: "RequestError",
      reason: "Transport",
      cause: nodeError("invalid idempotency-key header", { code: "UND_ERR_INVALID_ARG" })
    })
    strictEqual(error._tag, "ClientError")
    assertTrue(CallError.isFatal(error))
    assert.include(error.message, "UND_ERR_INVALID_ARG: invalid idempotency-key header")
    strictEqual(CallError.fromCause(nodeError("Invalid character", { code: "ERR_INVALID_CHAR" }))._tag, "ClientError")
  })

  it("reads a status-code ResponseError as the response", () => {
    const error = CallError.fromCause({
      _tag: "ResponseError",
      reason: "StatusCode",
      response: { status: 429, headers: { "retry-after": "2" } }
    })
    strictEqual(error._tag, "RateLimited")
    deepStrictEqual(millis(error), Option.some(2000))
  })

  it("unwraps a Cause and returns a CallError unchanged", () => {
    const original = CallError.fromResponse({ status: 503 })
    strictEqual(CallError.fromCause(original), original)
    strictEqual(CallError.fromCause(Cause.fail(original)), original)
  })

  it("says for which phase a retry is safe", () => {
    assert.include(CallError.fromCause(nodeError("x", { code: "ECONNREFUSED" })).message, "request was not sent")
    assert.include(CallError.fromCause(nodeError("x", { code: "ECONNRESET" })).message, "same Idempotency-Key")
  })
})

describe("CallError predicates", () => {
  it("isCallError accepts members and rejects look-alikes", () => {
    assertTrue(CallError.isCallError(CallError.fromResponse({ status: 500 })))
    assertFalse(CallError.isCallError({ _tag: "ServerError" }))
    assertFalse(CallError.isCallError(new Error("ServerError")))
    assertFalse(CallError.isRetryable("ECONNRESET"))
    assertFalse(CallError.isFatal(undefined))
  })

  it("markExhausted stops retries without making the error fatal", () => {
    const error = CallError.fromResponse({ status: 503 })
    const marked = CallError.markExhausted(error)
    assert.instanceOf(marked, CallError.ServerError)
    deepStrictEqual([CallError.isRetryable(marked), CallError.isFatal(marked)], [false, false])
    deepStrictEqual([CallError.isRetryable(error), error.exhausted], [true, false])
  })

  it("InvalidResponse is fatal and says what to check", () => {
    const error = new CallError.InvalidResponse({ status: Option.some(200), reason: "Expected choices" })
    assertTrue(CallError.isFatal(error))
    assert.include(error.message, "Expected choices")
  })
})
