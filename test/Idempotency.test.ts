import { assert, describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import {
  Cause,
  Clock,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Metric,
  Option,
  Ref,
  Schema,
  TestClock,
  Tracer
} from "effect"
import * as CallError from "../src/CallError.js"
import * as Fingerprint from "../src/Fingerprint.js"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { executions } from "../src/internal/idempotency.js"
import { stores } from "./fixtures/idempotencyStores.js"

const Answer = Schema.Struct({ text: Schema.String })
const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] }
const key = "chatmsg:conv_782:msg_991"

/** An effect that counts its runs in `runs` and answers with the run number. */
const answer = (runs: Ref.Ref<number>, label = "answer") =>
  Effect.map(
    Ref.updateAndGet(runs, (n) => n + 1),
    (n) => ({ text: `${label} #${n}` })
  )

const recordOf = (k: string) =>
  Effect.flatMap(IdempotencyStore.IdempotencyStore, (store) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.get(k, now))
  )

/**
 * Forks a caller that claims `key` and holds it until `finish` is opened, then answers with `work`. Returns
 * once that caller is inside its effect.
 */
const holdKey = (work: Effect.Effect<{ readonly text: string }>, lease?: Duration.DurationInput) =>
  Effect.gen(function* () {
    const started = yield* Deferred.make<void>()
    const finish = yield* Deferred.make<void>()
    const gated = Deferred.succeed(started, undefined).pipe(
      Effect.zipRight(Deferred.await(finish)),
      Effect.zipRight(work)
    )
    const owner = yield* Effect.fork(
      Idempotency.execute(gated, { key, request, success: Answer, ...(lease === undefined ? {} : { lease }) })
    )
    yield* Deferred.await(started)
    return { owner, finish }
  })

/** How many records the store holds (deletes them all: use last). */
const drainedCount = Effect.flatMap(IdempotencyStore.IdempotencyStore, (store) =>
  store.purgeExpired(Number.MAX_SAFE_INTEGER)
)

/** An error's own fields (with its `_tag`): errors that went through a fiber also carry its span. */
const fields = (error: object) => Object.fromEntries(Object.entries(error))

/** The fields of the error an exit failed with, if it failed with one. */
const failureFields = <A, E extends object>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.map(Cause.failureOption(exit.cause), fields) : Option.none()

/** The tag and key of an error, for errors whose union does not guarantee a key. */
const tagAndKey = (error: { readonly _tag: string }) => [error._tag, "key" in error ? error.key : undefined]

class Ambiguous extends Data.TaggedError("Ambiguous")<{}> {}

class Address extends Schema.Class<Address>("Address")({ street: Schema.String, no: Schema.Number }) {}

class Invoice extends Schema.Class<Invoice>("Invoice")({
  issuedAt: Schema.Date,
  total: Schema.BigInt,
  note: Schema.OptionFromNullOr(Schema.String),
  address: Address,
  lines: Schema.Array(Schema.Struct({ sku: Schema.String, due: Schema.Option(Schema.Date) }))
}) {}

describe.each(stores)("Idempotency.execute over %s", (_, layer) => {
  it.effect("runs the first call and stores its encoded value", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)

      const value = yield* Idempotency.execute(answer(runs), { key, request, success: Answer })

      deepStrictEqual(value, { text: "answer #1" })
      const record = Option.getOrThrow(yield* recordOf(key))
      deepStrictEqual(
        [record.status, record.response, record.requestHash, record.expiresAt],
        ["succeeded", Option.some('{"text":"answer #1"}'), Fingerprint.hash(request), 86_400_000]
      )
    }).pipe(Effect.provide(layer))
  )

  it.effect("replays the stored value without running the effect, also in pipe form", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)

      const first = yield* Idempotency.execute(answer(runs), { key, request, success: Answer })
      yield* TestClock.adjust("1 hour")
      const second = yield* answer(runs).pipe(Idempotency.execute({ key, request, success: Answer }))

      deepStrictEqual([first, second, yield* Ref.get(runs)], [{ text: "answer #1" }, { text: "answer #1" }, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("fails with PayloadMismatch carrying both hashes when the key meets another request", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const other = { ...request, temperature: 0.3 }

      yield* Idempotency.execute(answer(runs), { key, request, success: Answer })
      const error = yield* Effect.flip(Idempotency.execute(answer(runs), { key, request: other, success: Answer }))

      deepStrictEqual(
        fields(error),
        fields(
          new Idempotency.PayloadMismatch({
            key,
            storedHash: Fingerprint.hash(request),
            requestHash: Fingerprint.hash(other)
          })
        )
      )
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect("identifies the request by the fingerprint option when one is given", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const options = (transportId: string) => ({
        key,
        request: { ...request, transportId },
        fingerprint: ({ transportId: _, ...rest }: typeof request & { transportId: string }) => rest,
        success: Answer
      })

      yield* Idempotency.execute(answer(runs), options("t-1"))
      const replayed = yield* Idempotency.execute(answer(runs), options("t-2"))

      deepStrictEqual([replayed, yield* Ref.get(runs)], [{ text: "answer #1" }, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("fails fast with RequestInProgress carrying the lease end while another caller works", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const { owner, finish } = yield* holdKey(answer(runs), "30 seconds")

      yield* TestClock.adjust("5 seconds")
      const error = yield* Effect.flip(Idempotency.execute(answer(runs), { key, request, success: Answer }))

      deepStrictEqual(fields(error), fields(new Idempotency.RequestInProgress({ key, leaseExpiresAt: 30_000 })))
      yield* Deferred.succeed(finish, undefined)
      deepStrictEqual([yield* Fiber.join(owner), yield* Ref.get(runs)], [{ text: "answer #1" }, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("waits for the owner and replays its value in wait mode", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const { owner, finish } = yield* holdKey(answer(runs))
      const waiter = yield* Effect.fork(
        Idempotency.execute(answer(runs), { key, request, success: Answer, onInProgress: "wait" })
      )

      yield* TestClock.adjust("3 seconds")
      assertTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* Deferred.succeed(finish, undefined)
      yield* TestClock.adjust("1 second")

      deepStrictEqual(
        [yield* Fiber.join(owner), yield* Fiber.join(waiter), yield* Ref.get(runs)],
        [{ text: "answer #1" }, { text: "answer #1" }, 1]
      )
    }).pipe(Effect.provide(layer))
  )

  it.effect("gives up waiting with RequestInProgress once waitTimeout passes", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      yield* holdKey(answer(runs))
      const waiter = yield* Effect.fork(
        Idempotency.execute(answer(runs), {
          key,
          request,
          success: Answer,
          onInProgress: "wait",
          waitTimeout: "2 seconds"
        })
      )

      yield* TestClock.adjust("1999 millis")
      assertTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* TestClock.adjust("1 millis")

      const exit = yield* Fiber.await(waiter)
      deepStrictEqual(
        failureFields(exit),
        Option.some(fields(new Idempotency.RequestInProgress({ key, leaseExpiresAt: 300_000 })))
      )
      strictEqual(yield* Ref.get(runs), 0)
    }).pipe(Effect.provide(layer))
  )

  it.effect("in wait mode takes over once a crashed owner's lease ends", () =>
    Effect.gen(function* () {
      const store = yield* IdempotencyStore.IdempotencyStore
      const runs = yield* Ref.make(0)
      yield* store.claim({
        key,
        requestHash: Fingerprint.hash(request),
        owner: "crashed",
        now: 0,
        leaseExpiresAt: 30_000,
        expiresAt: 86_400_000
      })

      const waiter = yield* Effect.fork(
        Idempotency.execute(answer(runs), { key, request, success: Answer, onInProgress: "wait" })
      )
      yield* TestClock.adjust("29 seconds")
      strictEqual(yield* Ref.get(runs), 0)
      yield* TestClock.adjust("2 seconds")

      deepStrictEqual([yield* Fiber.join(waiter), yield* Ref.get(runs)], [{ text: "answer #1" }, 1])
      strictEqual(Option.getOrThrow(yield* recordOf(key)).attempts, 2)
    }).pipe(Effect.provide(layer))
  )

  it.effect("makes an expired key fresh again, and purgeExpired removes it", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const run = Idempotency.execute(answer(runs), { key, request, success: Answer, ttl: "1 hour" })

      const first = yield* run
      yield* TestClock.adjust(Duration.millis(3_599_999))
      const beforeExpiry = yield* run
      yield* TestClock.adjust("1 millis")
      const afterExpiry = yield* run

      deepStrictEqual(
        [first, beforeExpiry, afterExpiry],
        [{ text: "answer #1" }, { text: "answer #1" }, { text: "answer #2" }]
      )
      yield* TestClock.adjust("1 hour")
      strictEqual(yield* IdempotencyStore.purgeExpired, 1)
      assertTrue(Option.isNone(yield* recordOf(key)))
    }).pipe(Effect.provide(layer))
  )

  it.effect("extends the lease with heartbeats while the effect runs, when asked to", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const owner = yield* Effect.fork(
        Idempotency.execute(Effect.zipRight(Effect.sleep("25 seconds"), answer(runs)), {
          key,
          request,
          success: Answer,
          lease: "10 seconds",
          heartbeat: "3333 millis"
        })
      )

      yield* TestClock.adjust("20 seconds")
      const error = yield* Effect.flip(Idempotency.execute(answer(runs), { key, request, success: Answer }))
      // Beats every 3333 ms; the last one before 20 s was at 19998 ms.
      deepStrictEqual(fields(error), fields(new Idempotency.RequestInProgress({ key, leaseExpiresAt: 29_998 })))

      yield* TestClock.adjust("5 seconds")
      deepStrictEqual([yield* Fiber.join(owner), yield* Ref.get(runs)], [{ text: "answer #1" }, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("leaves the lease as claimed without a heartbeat option: a longer run is taken over", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const owner = yield* Effect.fork(
        Idempotency.execute(Effect.zipRight(Effect.sleep("25 seconds"), answer(runs, "slow")), {
          key,
          request,
          success: Answer,
          lease: "10 seconds"
        })
      )

      yield* TestClock.adjust("9999 millis")
      const held = Option.getOrThrow(yield* recordOf(key))
      yield* TestClock.adjust("1 millis")
      const taker = yield* Idempotency.execute(answer(runs, "taker"), { key, request, success: Answer })
      yield* TestClock.adjust("15 seconds")

      const exit = yield* Fiber.await(owner)
      deepStrictEqual([held.leaseExpiresAt, held.updatedAt], [10_000, 0])
      deepStrictEqual(
        Option.map(failureFields(exit), ({ owner: _, ...rest }) => rest),
        Option.some({ _tag: "LeaseLost", key, operation: "complete" })
      )
      deepStrictEqual([taker, yield* Ref.get(runs)], [{ text: "taker #1" }, 2])
    }).pipe(Effect.provide(layer))
  )

  it.effect("interrupts the work and fails with LeaseLost when a heartbeat finds the key taken over", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make(false)
      const runs = yield* Ref.make(0)
      const slow = Effect.sleep("60 seconds").pipe(
        Effect.zipRight(answer(runs, "slow")),
        Effect.onInterrupt(() => Ref.set(interrupted, true))
      )
      const owner = yield* Effect.fork(
        Idempotency.execute(slow, { key, request, success: Answer, lease: "10 seconds", heartbeat: "15 seconds" })
      )

      yield* TestClock.adjust("10 seconds")
      const taker = yield* Idempotency.execute(answer(runs, "taker"), { key, request, success: Answer })
      yield* TestClock.adjust("5 seconds")

      const exit = yield* Fiber.await(owner)
      deepStrictEqual(
        Option.map(failureFields(exit), ({ owner: _, ...rest }) => rest),
        Option.some({ _tag: "LeaseLost", key, operation: "heartbeat" })
      )
      deepStrictEqual([taker, yield* Ref.get(interrupted), yield* Ref.get(runs)], [{ text: "taker #1" }, true, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("treats a zero lease as reclaimable at once, not as no lease", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const first = yield* holdKey(answer(runs), 0)

      const second = yield* Idempotency.execute(answer(runs), { key, request, success: Answer, lease: 0 })

      deepStrictEqual([second, yield* Ref.get(runs)], [{ text: "answer #1" }, 1])
      yield* Fiber.interrupt(first.owner)
      strictEqual(Option.getOrThrow(yield* recordOf(key)).status, "succeeded")
    }).pipe(Effect.provide(layer))
  )

  it.effect("stores a fatal failure and replays it as the same typed error without running", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const rejected = CallError.fromResponse({ status: 400, body: { error: { message: "bad model" } } })
      const call = Effect.zipRight(
        Ref.update(runs, (n) => n + 1),
        Effect.fail(rejected)
      )
      const options = { key, request, success: Answer, failure: CallError.CallError }

      const first = yield* Effect.flip(Idempotency.execute(call, options))
      const replayed = yield* Effect.flip(Idempotency.execute(call, options))

      deepStrictEqual(fields(first), fields(rejected))
      deepStrictEqual([fields(replayed), yield* Ref.get(runs)], [fields(rejected), 1])
      assert.instanceOf(replayed, CallError.BadRequest)
      strictEqual(Option.getOrThrow(yield* recordOf(key)).status, "failed")
    }).pipe(Effect.provide(layer))
  )

  it.effect(
    "releases the key after a retryable failure, a defect, an interruption, or a fatal error with no failure Schema",
    () =>
      Effect.gen(function* () {
        const runs = yield* Ref.make(0)
        const failing = [
          Effect.fail(CallError.fromResponse({ status: 503 })),
          Effect.die(new Error("boom")),
          Effect.interrupt,
          Effect.fail(CallError.fromResponse({ status: 400 }))
        ]

        for (const failure of failing) {
          const exit = yield* Effect.exit(
            Idempotency.execute(
              Effect.zipRight(
                Ref.update(runs, (n) => n + 1),
                failure
              ),
              { key, request, success: Answer }
            )
          )
          assertTrue(Exit.isFailure(exit))
          assertTrue(Option.isNone(yield* recordOf(key)))
        }

        const value = yield* Idempotency.execute(answer(runs), { key, request, success: Answer })
        deepStrictEqual(value, { text: "answer #5" })
      }).pipe(Effect.provide(layer))
  )

  it.effect("releases the key when the caller is interrupted mid-effect", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const { owner } = yield* holdKey(answer(runs))

      yield* Fiber.interrupt(owner)

      assertTrue(Option.isNone(yield* recordOf(key)))
      deepStrictEqual(yield* Idempotency.execute(answer(runs), { key, request, success: Answer }), {
        text: "answer #1"
      })
    }).pipe(Effect.provide(layer))
  )

  it.effect("keeps an outcome-unknown claim until its lease ends, then asks recover before running", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const recovered = yield* Ref.make<ReadonlyArray<string>>([])
      const options = {
        key,
        request,
        success: Answer,
        lease: Duration.seconds(30),
        isOutcomeUnknown: (error: Ambiguous) => error._tag === "Ambiguous",
        recover: (k: string) =>
          Effect.as(
            Ref.update(recovered, (keys) => [...keys, k]),
            Option.some({ text: "from the provider" })
          )
      }

      const first = yield* Effect.flip(
        Idempotency.execute(
          Effect.zipRight(
            Ref.update(runs, (n) => n + 1),
            Effect.fail(new Ambiguous())
          ),
          options
        )
      )
      strictEqual(first._tag, "Ambiguous")
      strictEqual(Option.getOrThrow(yield* recordOf(key)).status, "processing")

      yield* TestClock.adjust("10 seconds")
      const early = yield* Effect.flip(Idempotency.execute(answer(runs), options))
      deepStrictEqual(fields(early), fields(new Idempotency.RequestInProgress({ key, leaseExpiresAt: 30_000 })))

      yield* TestClock.adjust("20 seconds")
      const taken = yield* Idempotency.execute(answer(runs), options)
      const replayed = yield* Idempotency.execute(answer(runs), options)

      deepStrictEqual(
        [taken, replayed, yield* Ref.get(runs), yield* Ref.get(recovered)],
        [{ text: "from the provider" }, { text: "from the provider" }, 1, [key]]
      )
    }).pipe(Effect.provide(layer))
  )

  it.effect("runs the effect on takeover when recover finds nothing, and keeps the claim when recover fails", () =>
    Effect.gen(function* () {
      const store = yield* IdempotencyStore.IdempotencyStore
      const runs = yield* Ref.make(0)
      const claimCrashed = (k: string) =>
        store.claim({
          key: k,
          requestHash: Fingerprint.hash(request),
          owner: "crashed",
          now: 0,
          leaseExpiresAt: 1_000,
          expiresAt: 86_400_000
        })
      yield* claimCrashed("k:none")
      yield* claimCrashed("k:broken")
      yield* TestClock.adjust("1 second")

      const ran = yield* Idempotency.execute(answer(runs), {
        key: "k:none",
        request,
        success: Answer,
        recover: () => Effect.succeedNone
      })
      const failed = yield* Effect.flip(
        Idempotency.execute(answer(runs), {
          key: "k:broken",
          request,
          success: Answer,
          recover: () => Effect.fail("provider unreachable" as const)
        })
      )

      deepStrictEqual([ran, failed, yield* Ref.get(runs)], [{ text: "answer #1" }, "provider unreachable", 1])
      const kept = Option.getOrThrow(yield* recordOf("k:broken"))
      deepStrictEqual([kept.status, kept.attempts], ["processing", 2])
    }).pipe(Effect.provide(layer))
  )

  it.effect("round-trips Dates, bigints, Options and nested classes through the store", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const invoice = new Invoice({
        issuedAt: new Date("2024-06-01T10:00:00.000Z"),
        total: 12_345_678_901_234_567_890n,
        note: Option.some("net 30"),
        address: new Address({ street: "Main St", no: 7 }),
        lines: [
          { sku: "A-1", due: Option.some(new Date("2024-07-01T00:00:00.000Z")) },
          { sku: "B-2", due: Option.none() }
        ]
      })
      const run = Idempotency.execute(
        Effect.as(
          Ref.update(runs, (n) => n + 1),
          invoice
        ),
        {
          key,
          request,
          success: Invoice
        }
      )

      const first = yield* run
      const replayed = yield* run

      strictEqual(first, invoice)
      assert.notStrictEqual(replayed, invoice)
      assertTrue(replayed instanceof Invoice && replayed.address instanceof Address)
      deepStrictEqual([replayed, yield* Ref.get(runs)], [invoice, 1])
    }).pipe(Effect.provide(layer))
  )

  it.effect("fails with StoredValueInvalid when a stored value no longer decodes, and runs nothing", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      yield* Idempotency.execute(answer(runs), { key, request, success: Answer })
      yield* Effect.flip(
        Idempotency.execute(Effect.fail(CallError.fromResponse({ status: 404 })), {
          key: "k:failed",
          request,
          success: Answer,
          failure: CallError.CallError
        })
      )

      const changed = yield* Effect.flip(
        Idempotency.execute(Effect.succeed({ text: 1 }), {
          key,
          request,
          success: Schema.Struct({ text: Schema.Number })
        })
      )
      const noFailureSchema = yield* Effect.flip(
        Idempotency.execute(answer(runs), { key: "k:failed", request, success: Answer })
      )

      deepStrictEqual(tagAndKey(changed), ["StoredValueInvalid", key])
      deepStrictEqual(tagAndKey(noFailureSchema), ["StoredValueInvalid", "k:failed"])
      strictEqual(yield* Ref.get(runs), 1)
    }).pipe(Effect.provide(layer))
  )

  it.effect("fails with ResponseInvalid and releases the key when the value does not encode", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Idempotency.execute(Effect.succeed({ n: 1.5 }), { key, request, success: Schema.Struct({ n: Schema.Int }) })
      )

      deepStrictEqual(tagAndKey(error), ["ResponseInvalid", key])
      assertTrue(Option.isNone(yield* recordOf(key)))
    }).pipe(Effect.provide(layer))
  )

  it.effect("fails with ResponseInvalid, storing nothing, when the encoded value has no JSON form (NaN)", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Idempotency.execute(Effect.succeed({ score: Number.NaN }), {
          key,
          request,
          success: Schema.Struct({ score: Schema.Number })
        })
      )

      deepStrictEqual(tagAndKey(error), ["ResponseInvalid", key])
      assertTrue(Option.isNone(yield* recordOf(key)))
    }).pipe(Effect.provide(layer))
  )

  it.effect("stores and replays an encoded value that holds a null next to a finite number", () =>
    Effect.gen(function* () {
      const Scored = Schema.Struct({ score: Schema.Number, note: Schema.NullOr(Schema.String) })
      const options = { key, request, success: Scored }

      const first = yield* Idempotency.execute(Effect.succeed({ score: 0.5, note: null }), options)
      const replayed = yield* Idempotency.execute(Effect.succeed({ score: 1, note: "other" }), options)

      deepStrictEqual(
        [first, replayed],
        [
          { score: 0.5, note: null },
          { score: 0.5, note: null }
        ]
      )
      deepStrictEqual(Option.getOrThrow(yield* recordOf(key)).response, Option.some('{"score":0.5,"note":null}'))
    }).pipe(Effect.provide(layer))
  )

  it.effect("rejects a bad key or an unserializable request with a typed error and writes nothing", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const cyclic: Record<string, unknown> = { model: "m" }
      cyclic.self = cyclic
      const attempt = (k: string, req: unknown) =>
        Effect.flip(Idempotency.execute(answer(runs), { key: k, request: req, success: Answer }))

      const empty = yield* attempt("", request)
      const tooLong = yield* attempt("k".repeat(256), request)
      const withFunction = yield* attempt(key, { ...request, onToken: () => undefined })
      const withCycle = yield* attempt(key, cyclic)

      deepStrictEqual(
        [empty, tooLong].map((e) => [e._tag, "reason" in e ? e.reason : ""]),
        [
          ["InvalidIdempotencyKey", "Empty"],
          ["InvalidIdempotencyKey", "TooLong"]
        ]
      )
      deepStrictEqual(
        [withFunction, withCycle].map((e) => [e._tag, "path" in e ? e.path : ""]),
        [
          ["UnserializableRequest", "$.onToken"],
          ["UnserializableRequest", "$.self"]
        ]
      )
      deepStrictEqual([yield* Ref.get(runs), yield* drainedCount], [0, 0])
    }).pipe(Effect.provide(layer))
  )
})

describe("Idempotency.execute, store-independent", () => {
  const failingStore = IdempotencyStore.IdempotencyStore.of({
    claim: (request) =>
      Effect.fail(
        new IdempotencyStore.IdempotencyStoreError({ operation: "claim", key: request.key, cause: "disk full" })
      ),
    complete: () => Effect.void,
    fail: () => Effect.void,
    release: () => Effect.void,
    heartbeat: () => Effect.void,
    get: () => Effect.succeedNone,
    purgeExpired: () => Effect.succeed(0)
  })

  it.effect("keeps store errors typed, never defects", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Idempotency.execute(Effect.succeed({ text: "x" }), { key, request, success: Answer })
      )

      deepStrictEqual(
        failureFields(exit),
        Option.some(fields(new IdempotencyStore.IdempotencyStoreError({ operation: "claim", key, cause: "disk full" })))
      )
    }).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, failingStore))
  )

  it.effect("counts executions by outcome and annotates the Idempotency.execute span", () =>
    Effect.gen(function* () {
      const count = (outcome: string) =>
        Effect.map(Metric.value(Metric.tagged(executions, "outcome", outcome)), (state) => state.count)
      const outcomes = ["claimed", "replayed", "mismatch", "in_progress", "takeover"]
      const before = yield* Effect.forEach(outcomes, count)
      const spans = yield* Ref.make<ReadonlyArray<Tracer.Span>>([])
      const runs = yield* Ref.make(0)
      const seen = Effect.flatMap(Effect.currentSpan, (span) => Ref.update(spans, (all) => [...all, span]))

      yield* Idempotency.execute(Effect.zipRight(seen, answer(runs)), { key, request, success: Answer })
      yield* Idempotency.execute(answer(runs), { key, request, success: Answer })
      yield* Effect.flip(Idempotency.execute(answer(runs), { key, request: { other: true }, success: Answer }))

      const after = yield* Effect.forEach(outcomes, count)
      deepStrictEqual(
        after.map((n, i) => n - before[i]!),
        [1, 1, 1, 0, 0]
      )
      deepStrictEqual(
        (yield* Ref.get(spans)).map((span) => [
          span.name,
          span.attributes.get("idempotency.key"),
          span.attributes.get("idempotency.outcome")
        ]),
        [["Idempotency.execute", key, "claimed"]]
      )
    }).pipe(Effect.provide(IdempotencyStore.layerMemory))
  )

  it.effect("counts with the fiber's metric labels as well as the outcome", () =>
    Effect.gen(function* () {
      const tenant = Metric.tagged(Metric.tagged(executions, "outcome", "claimed"), "tenant", "t1")
      const before = (yield* Metric.value(tenant)).count
      const runs = yield* Ref.make(0)

      yield* Idempotency.execute(answer(runs), { key, request, success: Answer }).pipe(
        Effect.tagMetrics("tenant", "t1")
      )

      strictEqual((yield* Metric.value(tenant)).count - before, 1)
    }).pipe(Effect.provide(IdempotencyStore.layerMemory))
  )
})
