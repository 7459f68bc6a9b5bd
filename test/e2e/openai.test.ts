/**
 * The official `openai` SDK (v6) as a real client of the fake provider on loopback: the SDK's own retries carry
 * whatever Idempotency-Key header the caller gave, so the provider bills once; without one they bill again.
 */
import { describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect } from "effect"
import OpenAI from "openai"
import * as Provider from "../../src/simulation/Provider.js"

const body = {
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content: "Summarise order 42" }]
}

const sdk = (provider: Provider.Provider, options: { defaultHeaders?: Record<string, string> } = {}) =>
  new OpenAI({
    apiKey: "sk-test",
    baseURL: provider.baseUrl,
    maxRetries: 2,
    timeout: 2_000,
    ...options
  })

const wire = (provider: Provider.Provider) =>
  Effect.map(provider.requests, (requests) =>
    requests.map((r) => ({
      key: r.headers["idempotency-key"] ?? null,
      retry: r.headers["x-stainless-retry-count"],
      outcome: r.outcome
    }))
  )

describe("openai SDK against the fake provider", () => {
  it.scopedLive(
    "repeats a per-request Idempotency-Key header on its own retries, and the provider bills once",
    () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ apiKey: "sk-test", faultPlan: ["hang", "500", "none"] })

        const completion = yield* Effect.promise(() =>
          sdk(provider).chat.completions.create(body, { headers: { "Idempotency-Key": "order-42" } })
        )

        strictEqual(completion.id, "chatcmpl-sim-42-1")
        deepStrictEqual(yield* wire(provider), [
          { key: "order-42", retry: "0", outcome: "hang" },
          { key: "order-42", retry: "1", outcome: "500" },
          { key: "order-42", retry: "2", outcome: "replayed" }
        ])
        deepStrictEqual(
          (yield* provider.ledger).map((entry) => entry.idempotencyKey),
          ["order-42"]
        )
      }),
    30_000
  )

  it.scopedLive(
    "repeats a key from defaultHeaders on its retries after a reset and a 429",
    () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({
          apiKey: "sk-test",
          retryAfter: 0,
          faultPlan: ["reset", "429", "none"]
        })

        yield* Effect.promise(() =>
          sdk(provider, { defaultHeaders: { "Idempotency-Key": "job-7" } }).chat.completions.create(body)
        )

        deepStrictEqual(
          (yield* wire(provider)).map((r) => [r.key, r.outcome]),
          [
            ["job-7", "reset"],
            ["job-7", "429"],
            ["job-7", "executed"]
          ]
        )
        strictEqual((yield* provider.ledger).length, 1)
      }),
    30_000
  )

  it.scopedLive(
    "sends no key of its own (the idempotencyKey option is not wired on the OpenAI client), so a retry after a lost answer bills twice",
    () =>
      Effect.gen(function* () {
        const provider = yield* Provider.make({ apiKey: "sk-test", faultPlan: ["hang", "none"] })

        const completion = yield* Effect.promise(() =>
          sdk(provider).chat.completions.create(body, { idempotencyKey: "order-42" })
        )

        strictEqual(completion.id, "chatcmpl-sim-42-2")
        deepStrictEqual(
          (yield* wire(provider)).map((r) => [r.key, r.outcome]),
          [
            [null, "hang"],
            [null, "executed"]
          ]
        )
        strictEqual((yield* provider.ledger).length, 2)
      }),
    30_000
  )
})
