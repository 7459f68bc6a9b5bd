import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Schedule, TestClock, Tracer } from "effect"
import type { Scope } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as AiClient from "../src/AiClient.js"
import * as RetryBudget from "../src/RetryBudget.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import * as CallError from "../src/CallError.js"
import type * as ChatCompletion from "../src/ChatCompletion.js"
import * as Provider from "../src/simulation/Provider.js"

const body: ChatCompletion.ChatCompletionRequest = {
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Summarise order 42" }]
}

/** The provider answers at once: its latency sleeps would otherwise wait on the TestClock. */
const instant = { latency: { min: 0, max: 0 } } as const

const clientFor = <R = never>(
  baseUrl: string,
  options: Omit<AiClient.Options<R>, "baseUrl"> = {}
): Effect.Effect<AiClient.AiClientShape, never, Scope.Scope | R> =>
  Layer.build(AiClient.layer({ baseUrl, ...options }).pipe(Layer.provide(NodeHttpClient.layerUndici))).pipe(
    Effect.map((context) => Context.get(context, AiClient.AiClient))
  )

/** Lets real I/O (the HTTP exchange on loopback) make progress; it measures no time. */
const ioTick = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))

/**
 * Runs `effect` while moving the TestClock a second at a time, so that retry waits pass without real sleeps.
 * The per-attempt timeout in these tests is a day, so moving the clock never times out a request in flight.
 */
const withClockRunning = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) {
        return yield* done.value
      }
      yield* ioTick
      yield* TestClock.adjust(Duration.seconds(1))
    }
  })

/** Waits (on I/O) until some fiber sleeps on the TestClock, then moves the clock by `duration`. */
const adjustOnceSleeping = (duration: Duration.DurationInput) =>
  Effect.gen(function* () {
    while ((yield* TestClock.sleeps()).length === 0) {
      yield* ioTick
    }
    yield* TestClock.adjust(duration)
  })

const outcomes = (provider: Provider.Provider) =>
  Effect.map(provider.requests, (requests) => requests.map((r) => r.outcome))

const keysOnTheWire = (provider: Provider.Provider) =>
  Effect.map(provider.requests, (requests) => requests.map((r) => r.headers["idempotency-key"]))

const failure = <A>(effect: Effect.Effect<A, CallError.CallError>) => Effect.flip(effect)

describe("AiClient", () => {
  describe("caller-key-kept", () => {
    it.scoped("sends the caller's key on every attempt when the client retries twice", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["500", "503", "none"] })
        const client = yield* clientFor(provider.baseUrl, { timeout: "1 day" })

        const completion = yield* withClockRunning(client.createChatCompletion(body, { idempotencyKey: "order-42" }))

        strictEqual(completion.id, "chatcmpl-sim-42-1")
        deepStrictEqual(yield* keysOnTheWire(provider), ["order-42", "order-42", "order-42"])
        deepStrictEqual(yield* outcomes(provider), ["500", "503", "executed"])
      })
    )

    it.scoped("counts a key given as a header in any letter case as supplied, and sends it once", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["502", "504", "none"] })
        const client = yield* clientFor(provider.baseUrl, { timeout: "1 day" })

        yield* withClockRunning(
          client.createChatCompletion(body, { idempotencyKey: "ignored", headers: { "IdEmPoTeNcY-kEy": "order-42" } })
        )

        deepStrictEqual(yield* keysOnTheWire(provider), ["order-42", "order-42", "order-42"])
      })
    )

    it.scoped("keeps a generated key across the attempts of one call and changes it between calls", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["500", "none", "none", "none"] })
        const client = yield* clientFor(provider.baseUrl, { timeout: "1 day" })
        const call = client.createChatCompletion(body)

        yield* withClockRunning(call)
        yield* client.createChatCompletion(body)
        yield* call

        const [first, retry, other, rerun] = yield* keysOnTheWire(provider)
        assert.match(first!, /^[0-9a-f-]{36}$/)
        strictEqual(retry, first)
        assert.notStrictEqual(other, first)
        assert.notStrictEqual(rerun, first)
      })
    )
  })

  describe("classification", () => {
    const classify = (fault: Provider.Fault) =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: [fault] })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.stop })

        const error = yield* failure(client.createChatCompletion(body, { idempotencyKey: "k" }))

        return {
          tag: error._tag,
          status: Option.getOrNull(error.status),
          phase: "phase" in error ? error.phase : null,
          requestId: Option.getOrNull(error.requestId),
          retryAfterMs: Option.getOrNull(Option.map(error.retryAfter, Duration.toMillis)),
          exhausted: error.exhausted
        }
      })

    it.scoped("maps each provider fault to its CallError", () =>
      Effect.gen(function* () {
        const results = yield* Effect.forEach(["408", "429", "500", "502", "503", "504", "reset"] as const, classify)

        deepStrictEqual(results, [
          {
            tag: "RequestTimeout",
            status: 408,
            phase: "read",
            requestId: "req_sim_1",
            retryAfterMs: null,
            exhausted: false
          },
          {
            tag: "RateLimited",
            status: 429,
            phase: null,
            requestId: "req_sim_1",
            retryAfterMs: 1000,
            exhausted: false
          },
          {
            tag: "ServerError",
            status: 500,
            phase: null,
            requestId: "req_sim_1",
            retryAfterMs: null,
            exhausted: false
          },
          {
            tag: "ServerError",
            status: 502,
            phase: null,
            requestId: "req_sim_1",
            retryAfterMs: null,
            exhausted: false
          },
          {
            tag: "ServerError",
            status: 503,
            phase: null,
            requestId: "req_sim_1",
            retryAfterMs: null,
            exhausted: false
          },
          {
            tag: "ServerError",
            status: 504,
            phase: null,
            requestId: "req_sim_1",
            retryAfterMs: null,
            exhausted: false
          },
          { tag: "NetworkError", status: null, phase: "read", requestId: null, retryAfterMs: null, exhausted: false }
        ])
      })
    )

    it.scoped("fails a key reused with another body as Unprocessable, without retrying it", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(5) })

        yield* client.createChatCompletion(body, { idempotencyKey: "k" })
        const error = yield* failure(
          client.createChatCompletion({ ...body, temperature: 0.3 }, { idempotencyKey: "k" })
        )

        strictEqual(error._tag, "Unprocessable")
        deepStrictEqual(yield* outcomes(provider), ["executed", "mismatch"])
      })
    )

    it.scoped("fails a wrong API key as Unauthorized and sends the key as a bearer token", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0, apiKey: "sk-right" })
        const wrong = yield* clientFor(provider.baseUrl, { apiKey: Redacted.make("sk-wrong") })
        const right = yield* clientFor(`${provider.baseUrl}/`, { apiKey: Redacted.make("sk-right") })

        const error = yield* failure(wrong.createChatCompletion(body))
        const completion = yield* right.createChatCompletion(body)

        strictEqual(error._tag, "Unauthorized")
        strictEqual(completion.object, "chat.completion")
        deepStrictEqual(
          (yield* provider.requests).map((r) => r.headers["authorization"]),
          ["Bearer sk-wrong", "Bearer sk-right"]
        )
      })
    )

    it.scopedLive("fails a key still executing at the provider as Conflict", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ faultRate: 0, latency: { min: "300 millis", max: "300 millis" } })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.stop })

        const results = yield* Effect.all(
          [
            Effect.either(client.createChatCompletion(body, { idempotencyKey: "k" })),
            Effect.either(client.createChatCompletion(body, { idempotencyKey: "k" }))
          ],
          { concurrency: 2 }
        )

        deepStrictEqual(results.map((r) => (r._tag === "Left" ? r.left._tag : "ok")).sort(), ["Conflict", "ok"])
      })
    )

    it.scoped("fails a 2xx body that is not a chat completion as InvalidResponse", () =>
      Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.async<ReturnType<typeof createServer>>((resume) => {
            const server = createServer((_req, res) => {
              res.writeHead(200, { "content-type": "application/json", "x-request-id": "req_bad" })
              res.end(JSON.stringify({ id: 7, choices: "none" }))
            })
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
        )
        const port = (server.address() as AddressInfo).port
        const client = yield* clientFor(`http://127.0.0.1:${port}/v1`, { retry: Schedule.recurs(3) })

        const error = yield* failure(client.createChatCompletion(body))

        strictEqual(error._tag, "InvalidResponse")
        deepStrictEqual(error.status, Option.some(200))
        deepStrictEqual(error.requestId, Option.some("req_bad"))
      })
    )

    it.scoped("marks an error the client retried and gave up on as exhausted", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["500", "500", "500"] })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(2) })

        const error = yield* failure(client.createChatCompletion(body))

        strictEqual(error._tag, "ServerError")
        assertTrue(error.exhausted)
        strictEqual((yield* provider.requests).length, 3)
      })
    )
  })

  describe("unsendable requests", () => {
    it.scoped("refuses a caller key or header HTTP cannot carry at once, as a fatal ClientError, sending nothing", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(3) })
        const calls: ReadonlyArray<AiClient.CallOptions> = [
          { idempotencyKey: "chatmsg:конв" },
          { idempotencyKey: "chatmsg:\u{1F600}" },
          { idempotencyKey: "a\u2028b" },
          { idempotencyKey: "" },
          { idempotencyKey: " order-42 " },
          { headers: { "Idempotency-Key": "" } },
          { headers: { "idempotency-key": "café" } },
          { headers: { "x-trace": "конв" } },
          { headers: { "x trace": "1" } },
          { headers: { "x-trace": "a\r\nx-injected: 1" } }
        ]

        const errors = yield* Effect.forEach(calls, (call) => failure(client.createChatCompletion(body, call)))

        deepStrictEqual(
          errors.map((error) => [error._tag, CallError.isFatal(error)]),
          calls.map(() => ["ClientError", true])
        )
        assert.include(errors[0]!.message, "percent-encode (encodeURIComponent) or hash business ids")
        strictEqual((yield* provider.requests).length, 0)
      })
    )

    it.scoped("fails a body with no JSON form (a bigint) as a fatal ClientError, not a defect", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(3) })
        const withBigint = { ...body, seed: 42n } as unknown as ChatCompletion.ChatCompletionRequest

        const error = yield* failure(client.createChatCompletion(withBigint, { idempotencyKey: "order-42" }))
        strictEqual(error._tag, "ClientError")
        assert.include(error.message, "the request body has no JSON form")
        strictEqual((yield* provider.requests).length, 0)
      })
    )

    it.scoped("sends a printable ASCII key with inner spaces and symbols unchanged", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(3) })

        yield* client.createChatCompletion(body, { idempotencyKey: "order 42:~!%D0%BA" })

        deepStrictEqual(yield* keysOnTheWire(provider), ["order 42:~!%D0%BA"])
      })
    )
  })

  describe("retry budget", () => {
    it.scoped("records each success into the budget in its context, so a later outage can spend it", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({
          ...instant,
          faultRate: 0,
          faultPlan: ["none", "none", "none", "none", "none", "503", "503", "503", "503", "503", "503"]
        })
        const context = yield* Layer.build(
          AiClient.layer({
            baseUrl: provider.baseUrl,
            retry: RetryPolicy.make({ budget: true, maxRetries: 10, base: "1 millis", cap: "1 millis" })
          }).pipe(
            Layer.provideMerge(RetryBudget.layer({ ratio: 1, minRetriesPerSecond: 0 })),
            Layer.provide(NodeHttpClient.layerUndici)
          )
        )
        const client = Context.get(context, AiClient.AiClient)
        const budget = Context.get(context, RetryBudget.RetryBudget)

        yield* Effect.forEach([1, 2, 3, 4, 5], () => client.createChatCompletion(body), { discard: true })
        const afterSuccesses = yield* budget.available

        const error = yield* failure(withClockRunning(client.createChatCompletion(body)))

        strictEqual(afterSuccesses, 5)
        strictEqual(error._tag, "ServerError")
        deepStrictEqual(yield* outcomes(provider), [
          ...Array.from({ length: 5 }, () => "executed"),
          ...Array.from({ length: 6 }, () => "503")
        ])
        strictEqual(yield* budget.available, 0)
      })
    )

    it.scoped("records one success once when a budgeted RetryPolicy.retry wraps the client", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const context = yield* Layer.build(
          AiClient.layer({ baseUrl: provider.baseUrl }).pipe(
            Layer.provideMerge(RetryBudget.layer({ ratio: 1, minRetriesPerSecond: 0 })),
            Layer.provide(NodeHttpClient.layerUndici)
          )
        )
        const client = Context.get(context, AiClient.AiClient)
        const budget = Context.get(context, RetryBudget.RetryBudget)

        yield* RetryPolicy.retry(client.createChatCompletion(body), { budget: true }).pipe(Effect.provide(context))

        strictEqual(yield* budget.available, 1)
      })
    )
  })

  describe("stream-mid-retry", () => {
    it.scoped("refuses a streamed request before sending it, so no retry can repeat a delivered prefix", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl, { retry: Schedule.recurs(3) })

        const error = yield* failure(client.createChatCompletion({ ...body, stream: true }, { idempotencyKey: "k" }))

        strictEqual(error._tag, "ClientError")
        assert.include(error.message, "remove `stream: true` from the body")
        strictEqual((yield* provider.requests).length, 0)
      })
    )
  })

  describe("tracing", () => {
    it.scoped("runs each call in an AiClient.createChatCompletion span carrying the key", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultRate: 0 })
        const client = yield* clientFor(provider.baseUrl)
        const native = yield* Effect.tracer
        const spans: Array<readonly [string, unknown]> = []
        const recording = Tracer.make({
          context: native.context,
          span: (name, parent, context, links, startTime, kind, options) => {
            const span = native.span(name, parent, context, links, startTime, kind, options)
            spans.push([name, span.attributes])
            return span
          }
        })

        yield* client.createChatCompletion(body, { idempotencyKey: "order-42" }).pipe(Effect.withTracer(recording))

        const own = spans.find(([name]) => name === "AiClient.createChatCompletion")
        assert.isDefined(own)
        strictEqual((own![1] as Map<string, unknown>).get("idempotency.key"), "order-42")
      })
    )
  })

  describe("timeouts", () => {
    it.scoped("times out an accepted request as RequestTimeout read, and a retry under the key bills nothing", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["hang"] })
        const client = yield* clientFor(provider.baseUrl, { timeout: "5 seconds", retry: Schedule.stop })

        const fiber = yield* Effect.fork(client.createChatCompletion(body, { idempotencyKey: "order-42" }))
        while ((yield* provider.ledger).length === 0) {
          yield* ioTick
        }
        yield* TestClock.adjust("5 seconds")
        const exit = yield* Fiber.await(fiber)
        const replay = yield* client.createChatCompletion(body, { idempotencyKey: "order-42" })

        assertTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(exit)
        strictEqual(error._tag, "RequestTimeout")
        strictEqual("phase" in error ? error.phase : null, "read")
        deepStrictEqual(error.status, Option.none())
        strictEqual(replay.id, "chatcmpl-sim-42-1")
        strictEqual((yield* provider.ledger).length, 1)
        deepStrictEqual(yield* outcomes(provider), ["hang", "replayed"])
      })
    )

    it.scoped("retries a timed-out attempt under the same key with the default policy", () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ ...instant, faultPlan: ["hang", "none"] })
        const client = yield* clientFor(provider.baseUrl, { timeout: "1 minute" })

        const fiber = yield* Effect.fork(client.createChatCompletion(body, { idempotencyKey: "order-42" }))
        while ((yield* provider.ledger).length === 0) {
          yield* ioTick
        }
        yield* TestClock.adjust("1 minute")
        yield* adjustOnceSleeping("8 seconds")
        const completion = yield* Fiber.join(fiber)

        strictEqual(completion.id, "chatcmpl-sim-42-1")
        deepStrictEqual(yield* keysOnTheWire(provider), ["order-42", "order-42"])
        deepStrictEqual(yield* outcomes(provider), ["hang", "replayed"])
        strictEqual((yield* provider.ledger).length, 1)
      })
    )
  })
})
