import { describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Effect, Exit, Option, Ref, Schema } from "effect"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"

const Answer = Schema.Struct({ text: Schema.String })
const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] }
const key = "chatmsg:conv_782:msg_991"

/** Runs `execute` with the given options; answers the defect's message (if any), how often the effect ran, and the record. */
const attempt = (
  options: Partial<Idempotency.ExecuteOptions<{ readonly text: string }, { readonly text: string }, never>>
) =>
  Effect.gen(function* () {
    const runs = yield* Ref.make(0)
    const effect = Effect.as(
      Ref.update(runs, (n) => n + 1),
      { text: "hi" }
    )

    const exit = yield* Effect.exit(Idempotency.execute(effect, { key, request, success: Answer, ...options }))

    const store = yield* IdempotencyStore.IdempotencyStore
    const record = yield* store.get(key, 0)
    const defect = Exit.isFailure(exit) ? Option.map(Cause.dieOption(exit.cause), (d) => String(d)) : Option.none()
    return { defect: Option.getOrNull(defect), runs: yield* Ref.get(runs), stored: Option.isSome(record) }
  }).pipe(Effect.provide(IdempotencyStore.layerMemory))

describe("Idempotency options", () => {
  it.effect("refuses a ttl no longer than the lease, before touching the store", () =>
    Effect.gen(function* () {
      deepStrictEqual(yield* attempt({ ttl: "1 second" }), {
        defect:
          "RuntimeException: Idempotency: the ttl option (1000 ms) must be longer than the lease (300000 ms); " +
          "a record that expires while its owner still works lets another caller run the effect again",
        runs: 0,
        stored: false
      })
    })
  )

  it.effect("refuses a ttl of zero and a ttl that is no duration, naming the option", () =>
    Effect.gen(function* () {
      deepStrictEqual(
        (yield* attempt({ ttl: 0, lease: 0 })).defect,
        "RuntimeException: Idempotency: the ttl option (0 ms) must be longer than the lease (0 ms); " +
          "a record that expires while its owner still works lets another caller run the effect again"
      )
      deepStrictEqual(
        (yield* attempt({ ttl: "bogus" as Idempotency.ExecuteOptions<never, never, never>["ttl"] & string })).defect,
        'RuntimeException: Idempotency: the ttl option must be a finite, non-negative duration such as "30 seconds"; got bogus'
      )
      deepStrictEqual(
        (yield* attempt({ lease: Number.NaN })).defect,
        'RuntimeException: Idempotency: the lease option must be a finite, non-negative duration such as "30 seconds"; got NaN'
      )
    })
  )

  it.effect("accepts a ttl longer than the lease", () =>
    Effect.gen(function* () {
      deepStrictEqual(yield* attempt({ ttl: "10 minutes", lease: "1 minute" }), { defect: null, runs: 1, stored: true })
    })
  )
})
