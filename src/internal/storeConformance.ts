/**
 * The cases of the store conformance suite. Each case is an Effect over `IdempotencyStore` that fails (with an
 * assertion error) when the store breaks the contract written in `IdempotencyStore.ts`.
 *
 * @internal
 */
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect, Option, TestClock } from "effect"
import type { ClaimRequest, ClaimResult, IdempotencyRecord } from "../IdempotencyStore.js"
import { IdempotencyStore, purgeExpired } from "../IdempotencyStore.js"

/** A realistic epoch: past 2^31 ms, so a store that keeps times in 32-bit integers fails. */
export const t0 = 1_767_225_600_000

const lease = 10_000

const ttl = 86_400_000

export interface Case {
  readonly name: string
  readonly run: (key: string) => Effect.Effect<void, unknown, IdempotencyStore>
}

const claimAt = (key: string, owner: string, now: number, overrides: Partial<ClaimRequest> = {}) =>
  Effect.flatMap(IdempotencyStore, (store) =>
    store.claim({
      key,
      requestHash: "hash-a",
      owner,
      now,
      leaseExpiresAt: now + lease,
      expiresAt: now + ttl,
      ...overrides
    })
  )

const claimed = (result: ClaimResult): { readonly record: IdempotencyRecord; readonly takeover: boolean } => {
  strictEqual(result._tag, "Claimed", `expected Claimed, got ${result._tag}`)
  return result as Extract<ClaimResult, { _tag: "Claimed" }>
}

const existing = (result: ClaimResult): IdempotencyRecord => {
  strictEqual(result._tag, "Existing", `expected Existing, got ${result._tag}`)
  return result.record
}

const leaseLostBy = <A, E, R>(write: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(write), (error) => {
    const lost = error as { readonly _tag?: string; readonly owner?: string; readonly operation?: string }
    return [lost._tag, lost.owner, lost.operation]
  })

const getAt = (key: string, now: number) => Effect.flatMap(IdempotencyStore, (store) => store.get(key, now))

const processing = (key: string, owner: string, now: number, attempts = 1): IdempotencyRecord => ({
  key,
  requestHash: "hash-a",
  status: "processing",
  response: Option.none(),
  error: Option.none(),
  owner: Option.some(owner),
  leaseExpiresAt: now + lease,
  attempts,
  createdAt: now,
  updatedAt: now,
  expiresAt: now + ttl
})

const claimCases: ReadonlyArray<Case> = [
  {
    name: "claims a new key as processing, owned by the caller, attempt 1",
    run: (key) =>
      Effect.gen(function* () {
        const result = claimed(yield* claimAt(key, "owner-a", t0))

        strictEqual(result.takeover, false)
        deepStrictEqual(result.record, processing(key, "owner-a", t0))
        deepStrictEqual(yield* getAt(key, t0), Option.some(processing(key, "owner-a", t0)))
      })
  },
  {
    name: "answers Existing with the unchanged record while the lease runs",
    run: (key) =>
      Effect.gen(function* () {
        yield* claimAt(key, "owner-a", t0)

        const record = existing(yield* claimAt(key, "owner-b", t0 + lease - 1))
        deepStrictEqual(record, processing(key, "owner-a", t0))
      })
  },
  {
    name: "takes over a processing record once its lease has ended, for the same request only",
    run: (key) =>
      Effect.gen(function* () {
        yield* claimAt(key, "owner-a", t0)

        const other = existing(yield* claimAt(key, "owner-b", t0 + lease, { requestHash: "hash-b" }))
        deepStrictEqual(other, processing(key, "owner-a", t0))

        const result = claimed(yield* claimAt(key, "owner-b", t0 + lease))
        strictEqual(result.takeover, true)
        deepStrictEqual(result.record, {
          ...processing(key, "owner-b", t0 + lease, 2),
          createdAt: t0
        })
      })
  },
  {
    name: "a lease of zero is reclaimable at once",
    run: (key) =>
      Effect.gen(function* () {
        yield* claimAt(key, "owner-a", t0, { leaseExpiresAt: t0 })

        const result = claimed(yield* claimAt(key, "owner-b", t0, { leaseExpiresAt: t0 }))
        deepStrictEqual(
          [result.takeover, result.record.attempts, result.record.owner],
          [true, 2, Option.some("owner-b")]
        )
      })
  },
  {
    name: "never takes over a completed or failed record, even after its lease",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)
        yield* store.complete({ key, owner: "owner-a", now: t0 + 1, response: `{"answer":42}` })

        const done = existing(yield* claimAt(key, "owner-b", t0 + lease * 3))
        deepStrictEqual(
          [done.status, done.response, done.owner, done.attempts, done.updatedAt],
          ["succeeded", Option.some(`{"answer":42}`), Option.none(), 1, t0 + 1]
        )

        yield* claimAt(`${key}:failed`, "owner-a", t0)
        yield* store.fail({ key: `${key}:failed`, owner: "owner-a", now: t0 + 2, error: `{"_tag":"BadRequest"}` })

        const failed = existing(yield* claimAt(`${key}:failed`, "owner-b", t0 + lease * 3))
        deepStrictEqual(
          [failed.status, failed.error, failed.response, failed.owner],
          ["failed", Option.some(`{"_tag":"BadRequest"}`), Option.none(), Option.none()]
        )
      })
  }
]

const ownerCases: ReadonlyArray<Case> = [
  {
    name: "fencing: after a takeover the old owner's writes are refused and the new owner's result stands",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)
        yield* claimAt(key, "owner-b", t0 + lease)
        const late = { key, owner: "owner-a", now: t0 + lease + 2 }

        const refused = yield* Effect.all([
          leaseLostBy(store.complete({ ...late, response: `"a"` })),
          leaseLostBy(store.fail({ ...late, error: `"a"` })),
          leaseLostBy(store.release(late)),
          leaseLostBy(store.heartbeat({ ...late, leaseExpiresAt: t0 + lease * 9 }))
        ])
        deepStrictEqual(refused, [
          ["LeaseLost", "owner-a", "complete"],
          ["LeaseLost", "owner-a", "fail"],
          ["LeaseLost", "owner-a", "release"],
          ["LeaseLost", "owner-a", "heartbeat"]
        ])

        yield* store.complete({ key, owner: "owner-b", now: t0 + lease + 3, response: `"b"` })

        const third = existing(yield* claimAt(key, "owner-c", t0 + lease * 5))
        deepStrictEqual([third.status, third.response], ["succeeded", Option.some(`"b"`)])
      })
  },
  {
    name: "the owner completes, fails or releases once; later writes and strangers are refused",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)

        deepStrictEqual(yield* leaseLostBy(store.complete({ key, owner: "owner-x", now: t0, response: "1" })), [
          "LeaseLost",
          "owner-x",
          "complete"
        ])
        yield* store.complete({ key, owner: "owner-a", now: t0 + 1, response: "1" })
        deepStrictEqual(yield* leaseLostBy(store.fail({ key, owner: "owner-a", now: t0 + 2, error: "2" })), [
          "LeaseLost",
          "owner-a",
          "fail"
        ])
        deepStrictEqual(yield* leaseLostBy(store.release({ key: `${key}:absent`, owner: "owner-a", now: t0 })), [
          "LeaseLost",
          "owner-a",
          "release"
        ])
      })
  },
  {
    name: "release deletes the record, so the next claim starts afresh",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)
        yield* store.release({ key, owner: "owner-a", now: t0 + 1 })

        deepStrictEqual(yield* getAt(key, t0 + 1), Option.none())
        const again = claimed(yield* claimAt(key, "owner-b", t0 + 2, { requestHash: "hash-b" }))
        deepStrictEqual([again.takeover, again.record.attempts, again.record.requestHash], [false, 1, "hash-b"])
      })
  },
  {
    name: "heartbeat extends the lease, postponing takeover",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)
        yield* store.heartbeat({ key, owner: "owner-a", now: t0 + 5_000, leaseExpiresAt: t0 + 30_000 })

        const held = existing(yield* claimAt(key, "owner-b", t0 + 29_999))
        deepStrictEqual(
          [held.leaseExpiresAt, held.updatedAt, held.owner],
          [t0 + 30_000, t0 + 5_000, Option.some("owner-a")]
        )
        strictEqual(claimed(yield* claimAt(key, "owner-b", t0 + 30_000)).takeover, true)
      })
  }
]

const expiryCases: ReadonlyArray<Case> = [
  {
    name: "an expired record is gone: the key is fresh again (attempts back to 1, any request)",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* claimAt(key, "owner-a", t0)
        const takeover = claimed(yield* claimAt(key, "owner-b", t0 + lease))
        yield* store.complete({ key, owner: "owner-b", now: t0 + lease + 1, response: "1" })
        const expiry = takeover.record.expiresAt
        strictEqual(expiry, t0 + lease + ttl)

        existing(yield* claimAt(key, "owner-c", expiry - 1, { requestHash: "hash-b" }))
        const fresh = claimed(yield* claimAt(key, "owner-c", expiry, { requestHash: "hash-b" }))
        strictEqual(fresh.takeover, false)
        deepStrictEqual(fresh.record, { ...processing(key, "owner-c", expiry), requestHash: "hash-b" })
        deepStrictEqual(yield* leaseLostBy(store.complete({ key, owner: "owner-b", now: expiry, response: "2" })), [
          "LeaseLost",
          "owner-b",
          "complete"
        ])
      })
  },
  {
    name: "get hides an expired record and a missing key",
    run: (key) =>
      Effect.gen(function* () {
        yield* claimAt(key, "owner-a", t0)

        assertTrue(Option.isSome(yield* getAt(key, t0 + ttl - 1)))
        deepStrictEqual(yield* getAt(key, t0 + ttl), Option.none())
        deepStrictEqual(yield* getAt(`${key}:absent`, t0), Option.none())
      })
  },
  {
    name: "purgeExpired deletes exactly the expired records and counts them",
    run: (key) =>
      Effect.gen(function* () {
        const store = yield* IdempotencyStore
        yield* Effect.forEach([1, 2, 3], (i) => claimAt(`${key}:${i}`, "owner-a", t0, { expiresAt: t0 + i * 1000 }))

        strictEqual(yield* store.purgeExpired(t0 + 2000), 2)
        strictEqual(yield* store.purgeExpired(t0 + 2000), 0)
        assertTrue(Option.isSome(yield* getAt(`${key}:3`, t0 + 2000)))
        const reclaimed = claimed(yield* claimAt(`${key}:1`, "owner-b", t0 + 2000))
        strictEqual(reclaimed.record.attempts, 1)
      })
  },
  {
    name: "the purgeExpired accessor reads the Clock",
    run: (key) =>
      Effect.gen(function* () {
        yield* Effect.forEach([1, 2, 3], (i) => claimAt(`${key}:${i}`, "owner-a", t0, { expiresAt: t0 + i * 1000 }))
        yield* TestClock.setTime(t0 + 1000)

        strictEqual(yield* purgeExpired, 1)
        yield* TestClock.adjust("2 seconds")
        strictEqual(yield* purgeExpired, 2)
      })
  }
]

const concurrencyCase = (fibers: number): Case => ({
  name: `${fibers} fibers claiming one new key at once: exactly one is Claimed`,
  run: (key) =>
    Effect.gen(function* () {
      const owners = Array.from({ length: fibers }, (_, i) => `owner-${i}`)
      const results = yield* Effect.all(
        owners.map((owner) => claimAt(key, owner, t0)),
        { concurrency: "unbounded" }
      )

      const winners = results.filter((result) => result._tag === "Claimed")
      strictEqual(winners.length, 1)
      const winner = Option.getOrThrow(winners[0]!.record.owner)
      const seen = new Set(results.map((result) => Option.getOrUndefined(result.record.owner)))
      deepStrictEqual([...seen], [winner])
    })
})

/** Every case of the contract, with `fibers` concurrent claimers in the race case. */
export const cases = (fibers: number): ReadonlyArray<Case> => [
  ...claimCases,
  ...ownerCases,
  ...expiryCases,
  concurrencyCase(fibers)
]
