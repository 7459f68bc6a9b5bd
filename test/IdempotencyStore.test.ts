import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import * as IdempotencyStore from "../src/IdempotencyStore.js"

const claimAt = (now: number, owner: string, requestHash = "h1") =>
  Effect.flatMap(IdempotencyStore.IdempotencyStore, (store) =>
    store.claim({ key: "k", requestHash, owner, now, leaseExpiresAt: now + 10, expiresAt: now + 100 })
  )

describe("IdempotencyStore.layerMemory", () => {
  it.effect("claims, refuses the old owner after takeover, purges by Clock", () =>
    Effect.gen(function* () {
      const store = yield* IdempotencyStore.IdempotencyStore
      assert.strictEqual((yield* claimAt(0, "a"))._tag, "Claimed")
      assert.strictEqual((yield* claimAt(5, "b"))._tag, "Existing")

      const takeover = yield* claimAt(10, "b")
      assert.deepStrictEqual([takeover._tag, takeover.record.attempts], ["Claimed", 2])

      const lost = yield* Effect.flip(store.complete({ key: "k", owner: "a", now: 11, response: "1" }))
      assert.strictEqual(lost._tag, "LeaseLost")

      yield* store.complete({ key: "k", owner: "b", now: 12, response: "2" })
      assert.deepStrictEqual(
        Option.map(yield* store.get("k", 12), (r) => r.response),
        Option.some(Option.some("2"))
      )

      yield* TestClock.setTime(110)
      assert.strictEqual(yield* IdempotencyStore.purgeExpired, 1)
    }).pipe(Effect.provide(IdempotencyStore.layerMemory))
  )
})
