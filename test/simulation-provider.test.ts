import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect } from "effect"
import * as Provider from "../src/simulation/Provider.js"

const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Where is my order?" }] }

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly json: any
}

const post = (provider: Provider.Provider, headers: Record<string, string>, payload: unknown = body) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(`${provider.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(payload)
    })
    return { status: response.status, headers: response.headers, json: await response.json() }
  })

/** Waits (on real I/O, not on time) until the provider has billed `count` executions. */
const billed = (provider: Provider.Provider, count: number) =>
  Effect.gen(function* () {
    while ((yield* provider.ledger).length < count) {
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    }
  })

describe("simulation/Provider", () => {
  it.scopedLive("executes a key once and replays it for the same body without billing", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0 })

      const first = yield* post(provider, { "Idempotency-Key": "order-42", [Provider.actionHeader]: "a1" })
      const second = yield* post(provider, { "idempotency-key": "order-42", [Provider.actionHeader]: "a1" })

      strictEqual(first.status, 200)
      strictEqual(second.status, 200)
      strictEqual(first.json.id, "chatcmpl-sim-42-1")
      deepStrictEqual(second.json, first.json)
      strictEqual(second.headers.get("idempotent-replayed"), "true")
      const ledger = yield* provider.ledger
      deepStrictEqual(
        ledger.map((entry) => [entry.action, entry.idempotencyKey, entry.completionId]),
        [["a1", "order-42", "chatcmpl-sim-42-1"]]
      )
      deepStrictEqual(
        (yield* provider.requests).map((r) => r.outcome),
        ["executed", "replayed"]
      )
    })
  )

  it.scopedLive("answers 422 for a key reused with a different body", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0 })

      yield* post(provider, { "Idempotency-Key": "k" })
      const other = yield* post(provider, { "Idempotency-Key": "k" }, { ...body, temperature: 0.3 })

      strictEqual(other.status, 422)
      strictEqual(other.json.error.type, "idempotency_error")
      strictEqual((yield* provider.ledger).length, 1)
    })
  )

  it.scopedLive("answers 409 for a key that is still executing", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0, latency: { min: "400 millis", max: "400 millis" } })

      const answers = yield* Effect.all(
        [post(provider, { "Idempotency-Key": "k" }), post(provider, { "Idempotency-Key": "k" })],
        {
          concurrency: 2
        }
      )

      deepStrictEqual(answers.map((a) => a.status).sort(), [200, 409])
      strictEqual((yield* provider.ledger).length, 1)
    })
  )

  it.scopedLive("bills every request that carries no key", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0 })

      const a = yield* post(provider, { [Provider.actionHeader]: "a1" })
      const b = yield* post(provider, { [Provider.actionHeader]: "a1" })

      assert.notStrictEqual(a.json.id, b.json.id)
      deepStrictEqual(
        (yield* provider.ledger).map((entry) => entry.completionId),
        ["chatcmpl-sim-42-1", "chatcmpl-sim-42-2"]
      )
    })
  )

  it.scopedLive("injects each planned status fault before executing, with Retry-After on 429", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultPlan: ["408", "429", "500", "502", "503", "504", "none"] })

      const statuses: Array<number> = []
      let retryAfter: string | null = null
      for (let i = 0; i < 7; i++) {
        const answer = yield* post(provider, { "Idempotency-Key": "k" })
        statuses.push(answer.status)
        if (answer.status === 429) retryAfter = answer.headers.get("retry-after")
      }

      deepStrictEqual(statuses, [408, 429, 500, 502, 503, 504, 200])
      strictEqual(retryAfter, "1")
      strictEqual((yield* provider.ledger).length, 1)
    })
  )

  it.scopedLive("resets the connection before executing", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultPlan: ["reset"] })

      const failed = yield* post(provider, { "Idempotency-Key": "k" }).pipe(
        Effect.as("answered"),
        Effect.catchAllDefect(() => Effect.succeed("reset"))
      )

      strictEqual(failed, "reset")
      strictEqual((yield* provider.ledger).length, 0)
      deepStrictEqual(
        (yield* provider.requests).map((r) => r.outcome),
        ["reset"]
      )
    })
  )

  it.scopedLive("executes and bills a hung request, then replays it to a retry with the same key", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultPlan: ["hang"] })
      const controller = new AbortController()

      const hung = Effect.promise(() =>
        fetch(`${provider.baseUrl}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "Idempotency-Key": "k" },
          body: JSON.stringify(body),
          signal: controller.signal
        }).then(
          () => "answered",
          () => "aborted"
        )
      )
      const fiber = yield* Effect.fork(hung)
      yield* billed(provider, 1)
      controller.abort()
      const retry = yield* post(provider, { "Idempotency-Key": "k" })

      strictEqual(yield* fiber.await.pipe(Effect.flatten), "aborted")
      strictEqual(retry.status, 200)
      strictEqual(retry.json.id, "chatcmpl-sim-42-1")
      strictEqual((yield* provider.ledger).length, 1)
      deepStrictEqual(
        (yield* provider.requests).map((r) => r.outcome),
        ["hang", "replayed"]
      )
    })
  )

  it.scopedLive("draws the same faults for the same seed, whatever the arrival order", () =>
    Effect.gen(function* () {
      const run = (order: ReadonlyArray<number>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const provider = yield* Provider.make({ faultRate: 0.3, seed: 7, faultKinds: ["500", "503"] })
            const statuses = new Map<number, number>()
            for (const i of order) {
              statuses.set(i, (yield* post(provider, { [Provider.actionHeader]: `a${i}` })).status)
            }
            return Array.from({ length: order.length }, (_, i) => statuses.get(i))
          })
        )

      const forward = yield* run([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
      const backward = yield* run([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0])

      deepStrictEqual(forward, backward)
      deepStrictEqual(forward, [200, 500, 200, 200, 500, 200, 200, 200, 200, 200, 200, 200])
    })
  )

  it.scopedLive("requires the API key when configured and serves the ledger", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0, apiKey: "sk-test" })

      const refused = yield* post(provider, {})
      yield* post(provider, { authorization: "Bearer sk-test", [Provider.actionHeader]: "a9" })
      const ledger = yield* Effect.promise(() =>
        fetch(`${provider.baseUrl}/ledger`).then((r) => r.json() as Promise<any>)
      )

      strictEqual(refused.status, 401)
      deepStrictEqual(
        ledger.entries.map((entry: Provider.LedgerEntry) => entry.action),
        ["a9"]
      )
    })
  )

  it.effect("rejects a fault rate outside [0, 1]", () =>
    Effect.gen(function* () {
      const error = yield* Effect.scoped(Provider.make({ faultRate: 1.5 })).pipe(Effect.flip)

      strictEqual(error.message, "Invalid simulated provider options: faultRate must be in [0, 1], got 1.5")
    })
  )
})
