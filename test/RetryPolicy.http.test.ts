import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Cause, Chunk, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as CallError from "../src/CallError.js"
import * as RetryBudget from "../src/RetryBudget.js"
import * as RetryPolicy from "../src/RetryPolicy.js"

/** A provider on 127.0.0.1 that answers every request with 429 and `headers`, and counts the requests. */
const provider = (headers: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly requests: () => number; readonly close: () => void }>((resume) => {
      let requests = 0
      const server = createServer((request, response) => {
        requests++
        request.resume()
        response.writeHead(429, { "content-type": "application/json", ...headers })
        response.end(JSON.stringify({ error: { message: "Rate limit reached", type: "requests" } }))
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(
          Effect.succeed({
            url: `http://127.0.0.1:${port}/v1/chat/completions`,
            requests: () => requests,
            close: () => server.close()
          })
        )
      })
    }),
    (server) => Effect.sync(server.close)
  )

/** One attempt: POST to the provider, a non-2xx answer becomes its CallError. */
const call = (url: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient

    const response = yield* client.post(url).pipe(Effect.mapError((error) => CallError.fromCause(error)))

    const body = yield* response.text.pipe(Effect.mapError((error) => CallError.fromCause(error, "read")))
    return yield* response.status >= 300
      ? Effect.fail(CallError.fromResponse({ status: response.status, headers: response.headers, body }))
      : Effect.succeed(body)
  })

/** Lets real I/O run until the fiber is waiting on the TestClock (or done). */
const untilSleeping = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.gen(function* () {
    for (let round = 0; round < 10_000; round++) {
      if (Option.isSome(yield* Fiber.poll(fiber)) || Chunk.isNonEmpty(yield* TestClock.sleeps())) {
        return
      }
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
  })

/** Runs every wait of the fiber on the TestClock while its requests run for real, until it ends. */
const runToEnd = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    while (Option.isNone(yield* Fiber.poll(fiber))) {
      yield* untilSleeping(fiber)
      yield* TestClock.adjust("1 hour")
    }
    return yield* Fiber.await(fiber)
  })

describe("RetryPolicy over HTTP (127.0.0.1)", () => {
  it.scoped("abort-during-wait case: a 429 with retry-after-ms 3000, interrupted at 100 ms: one request sent", () =>
    Effect.gen(function* () {
      const server = yield* provider({ "retry-after-ms": "3000" })

      const fiber = yield* Effect.fork(Effect.retry(call(server.url), RetryPolicy.make()))
      yield* untilSleeping(fiber)
      yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.interrupt(fiber)
      const interruptedAt = yield* TestClock.currentTimeMillis
      yield* TestClock.adjust("1 minute")

      assertTrue(Exit.isInterrupted(exit))
      strictEqual(interruptedAt, 100)
      strictEqual(server.requests(), 1)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("nested-storm case: an inner retry of 2 inside an outer retry of 5, always 429: 3 requests, not 18", () =>
    Effect.gen(function* () {
      const server = yield* provider({})

      const sdk = RetryPolicy.retry(call(server.url), { maxRetries: 2 })
      const client = RetryPolicy.retry(sdk, { maxRetries: 5 })
      const exit = yield* runToEnd(yield* Effect.fork(client))

      strictEqual(server.requests(), 3)
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      deepStrictEqual(
        Option.map(failure, (error): ReadonlyArray<string | boolean> => [error._tag, error.exhausted]),
        Option.some(["RateLimited", true])
      )
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("nested-storm case with plain Effect.retry layers: the shared budget bounds the requests", () =>
    Effect.gen(function* () {
      const server = yield* provider({})
      yield* Effect.repeatN(RetryBudget.recordSuccess, 29)

      const sdk = Effect.retry(call(server.url), RetryPolicy.make({ maxRetries: 2, budget: true }))
      const client = Effect.retry(sdk, RetryPolicy.make({ maxRetries: 5, budget: true }))
      yield* runToEnd(yield* Effect.fork(client))

      // 30 successes × 0.1 = 3 tokens: the first request plus one per token, not 3 × 6
      strictEqual(server.requests(), 4)
    }).pipe(Effect.provide(Layer.merge(NodeHttpClient.layerUndici, RetryBudget.layer({ minRetriesPerSecond: 0 }))))
  )
})
