/**
 * The engine behind `Idempotency`: claim or read a key, run the effect while owning it (with heartbeats),
 * then store, fail or release the claim; and the accepted/completed split of `submit`, `poll` and `await`.
 *
 * @internal
 */
import { Cause, Clock, Duration, Effect, Either, Exit, Fiber, Metric, Option, Ref, Schema, type Tracer } from "effect"
import * as CallError from "../CallError.js"
import * as Fingerprint from "../Fingerprint.js"
import type { AwaitOptions, ExecuteOptions, Outcome, PollOptions, SubmitOptions } from "../Idempotency.js"
import * as IdempotencyKey from "../IdempotencyKey.js"
import type { IdempotencyRecord, IdempotencyStoreShape } from "../IdempotencyStore.js"
import { IdempotencyStore, type IdempotencyStoreError, type LeaseLost } from "../IdempotencyStore.js"
import { PayloadMismatch, RequestInProgress, RequestNotFound, ResponseInvalid } from "./idempotencyErrors.js"
import { encodeJson, settleOutcome, toOutcome } from "./idempotencyCodec.js"
import { makeWaiter, waitForChange } from "./idempotencyWait.js"

type Restore = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

/** A claimed key is kept this long after its first claim unless the caller says otherwise. */
const defaultTtl = Duration.hours(24)

/** Long enough for a slow model call, short enough that a crashed caller's key is retaken within minutes. */
const defaultLease = Duration.minutes(5)

const never = (): boolean => false

/** @internal */
export type ExecutionOutcome = "claimed" | "replayed" | "takeover" | "mismatch" | "in_progress"

/** @internal */
export const executions = Metric.counter("effect_idempotency_executions_total", {
  description: "Calls of Idempotency.execute and Idempotency.submit, by what the key's record made of them",
  incremental: true
})

const outcomes: ReadonlyArray<ExecutionOutcome> = ["claimed", "replayed", "takeover", "mismatch", "in_progress"]

/** The counter tagged once per outcome, so that counting a call is a single increment. */
const counters = Object.fromEntries(
  outcomes.map((outcome) => [outcome, Metric.tagged(executions, "outcome", outcome)])
) as Record<ExecutionOutcome, typeof executions>

const observe = (span: Tracer.Span, outcome: ExecutionOutcome): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.sync(() => span.attribute("idempotency.outcome", outcome)),
    Metric.increment(counters[outcome])
  )

/** Like Effect's own library spans, ours skip the stack trace: it costs more than a replay's decoding. */
const spanOptions = (key: string) => ({ attributes: { "idempotency.key": key }, captureStackTrace: false })

/** Runs `body` in the span `name` and hands it the span, so attributes are set on it without a lookup. */
const traced = <A, E, R>(
  name: string,
  key: string,
  body: (span: Tracer.Span) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.useSpan(name, spanOptions(key), (span) => Effect.withParentSpan(body(span), span))

interface Plan<A, AI, AR, F, FI, FR, E, RE, RR> {
  readonly span: Tracer.Span
  readonly key: IdempotencyKey.IdempotencyKey
  readonly requestHash: string
  readonly owner: string
  readonly store: IdempotencyStoreShape
  readonly success: Schema.Schema<A, AI, AR>
  readonly failure: Schema.Schema<F, FI, FR> | undefined
  readonly ttl: number
  readonly lease: number
  /** Milliseconds between lease extensions; 0 when heartbeats are off. */
  readonly heartbeat: number
  readonly isFatal: (error: E) => boolean
  readonly isOutcomeUnknown: (error: E) => boolean
  readonly recover: ((key: IdempotencyKey.IdempotencyKey) => Effect.Effect<Option.Option<A>, RE, RR>) | undefined
}

const finiteMillis = (name: string, input: Duration.DurationInput): Effect.Effect<number> => {
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= 0
    ? Effect.succeed(Math.floor(millis))
    : Effect.dieMessage(`Idempotency: the ${name} option must be a finite, non-negative duration`)
}

const makePlan = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  span: Tracer.Span
): Effect.Effect<
  Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  IdempotencyKey.InvalidIdempotencyKey | Fingerprint.UnserializableRequest,
  IdempotencyStore
> =>
  Effect.gen(function* () {
    const key = yield* IdempotencyKey.validate(options.key)

    const fingerprint = options.fingerprint
    const requestHash = yield* Effect.suspend(() =>
      Fingerprint.hashEffect(fingerprint === undefined ? options.request : fingerprint(options.request))
    )

    const ttl = yield* finiteMillis("ttl", options.ttl ?? defaultTtl)
    const lease = yield* finiteMillis("lease", options.lease ?? defaultLease)
    const heartbeatInput = Duration.decode(options.heartbeat ?? Duration.millis(lease / 3))
    const heartbeat = Duration.isFinite(heartbeatInput) ? Math.floor(Duration.toMillis(heartbeatInput)) : 0

    const store = yield* IdempotencyStore
    return {
      span,
      key,
      requestHash,
      owner: globalThis.crypto.randomUUID(),
      store,
      success: options.success,
      failure: options.failure,
      ttl,
      lease,
      heartbeat,
      isFatal: options.isFatal ?? CallError.isFatal,
      isOutcomeUnknown: options.isOutcomeUnknown ?? never,
      recover: options.recover
    }
  })

const claim = <A, AI, AR, F, FI, FR, E, RE, RR>(plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    plan.store.claim({
      key: plan.key,
      requestHash: plan.requestHash,
      owner: plan.owner,
      now,
      leaseExpiresAt: now + plan.lease,
      expiresAt: now + plan.ttl
    })
  )

const release = <A, AI, AR, F, FI, FR, E, RE, RR>(plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>): Effect.Effect<void> =>
  Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => plan.store.release({ key: plan.key, owner: plan.owner, now })),
    // The caller's own outcome matters more; an unreleased claim is retaken once its lease ends.
    Effect.catchAll((error) =>
      Effect.logWarning(`Idempotency: could not release key "${plan.key}"; it frees up when its lease ends`, error)
    )
  )

const heartbeatLoop = <A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>
): Effect.Effect<never, LeaseLost> => {
  const beat = Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) =>
      plan.store.heartbeat({ key: plan.key, owner: plan.owner, now, leaseExpiresAt: now + plan.lease })
    ),
    // A store hiccup is not a lost lease: the next beat tries again, and complete() settles who owns the key.
    Effect.catchTag("IdempotencyStoreError", (error) =>
      Effect.logWarning(`Idempotency: could not extend the lease on key "${plan.key}"`, error)
    )
  )
  return Effect.sleep(Duration.millis(plan.heartbeat)).pipe(Effect.zipRight(beat), Effect.forever)
}

interface Supervised<X, EX> {
  /** The work's own exit. */
  readonly exit: Exit.Exit<X, EX>
  /** Set when a heartbeat found the key taken over; the work was interrupted then. */
  readonly leaseLost: Option.Option<LeaseLost>
}

/**
 * Runs `effect` and reports its own exit. With heartbeats on, the work runs in a fiber of its own beside a
 * heartbeat fiber that extends the lease: a lost lease interrupts the work and is reported apart, so it cannot
 * be mistaken for one of the work's own errors. When the caller is interrupted, the work is interrupted and
 * its exit still settles the claim; leaving the uninterruptible region then ends the caller as interrupted.
 * With heartbeats off the work runs in the caller's fiber.
 */
const supervise = <X, EX, RX, A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  effect: Effect.Effect<X, EX, RX>,
  restore: Restore
): Effect.Effect<Supervised<X, EX>, never, RX> =>
  plan.heartbeat === 0
    ? Effect.map(Effect.exit(restore(effect)), (exit) => ({ exit, leaseLost: Option.none() }))
    : Effect.gen(function* () {
        const work = yield* Effect.fork(restore(effect))

        // Work that finishes within one turn of the scheduler (in-memory, cached) needs no heartbeat: this
        // skips a fiber and a timer for it, which would cost more than the work itself.
        yield* Effect.yieldNow()
        const early = yield* Fiber.poll(work)
        if (Option.isSome(early)) {
          yield* Fiber.inheritAll(work)
          return { exit: early.value, leaseLost: Option.none() }
        }

        const lost = yield* Ref.make(Option.none<LeaseLost>())
        const heart = yield* Effect.fork(
          restore(
            Effect.catchAll(heartbeatLoop(plan), (leaseLost) =>
              Effect.zipRight(Ref.set(lost, Option.some(leaseLost)), Fiber.interrupt(work))
            )
          )
        )

        const awaited = yield* Effect.exit(restore(Fiber.await(work)))
        const exit = Exit.isSuccess(awaited) ? awaited.value : yield* Fiber.interrupt(work)
        yield* Fiber.interrupt(heart)
        // As if the work had run in the caller's fiber: its FiberRef changes (log annotations, ...) carry over.
        yield* Fiber.inheritAll(work)

        return { exit, leaseLost: yield* Ref.get(lost) }
      })

const storeSuccess = <A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  value: A
): Effect.Effect<A, ResponseInvalid | LeaseLost | IdempotencyStoreError, AR> =>
  Effect.gen(function* () {
    const response = yield* encodeJson(plan.success, value).pipe(
      Effect.catchAll((cause) =>
        Effect.zipRight(release(plan), Effect.fail(new ResponseInvalid({ key: plan.key, cause })))
      )
    )

    const now = yield* Clock.currentTimeMillis
    yield* plan.store.complete({ key: plan.key, owner: plan.owner, now, response })
    return value
  })

type Verdict = "unknown" | "fatal" | "retryable"

const classify = <A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  error: E
): Effect.Effect<Verdict> =>
  Effect.try((): Verdict => {
    if (plan.isOutcomeUnknown(error)) return "unknown"
    return plan.failure !== undefined && plan.isFatal(error) ? "fatal" : "retryable"
  }).pipe(
    Effect.catchAll((cause) =>
      Effect.as(
        Effect.logWarning("Idempotency: isFatal/isOutcomeUnknown threw; treating the error as retryable", cause),
        "retryable" as const
      )
    )
  )

const storeFailure = <A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  error: E,
  cause: Cause.Cause<E>
): Effect.Effect<never, E, FR> =>
  Effect.gen(function* () {
    const verdict = yield* classify(plan, error)

    // The provider may have acted on it: keep the claim until the lease ends, so the next caller recovers first.
    if (verdict === "unknown") return yield* Effect.failCause(cause)

    if (verdict === "fatal" && plan.failure !== undefined) {
      const encoded = yield* Effect.either(encodeJson(plan.failure, error))
      if (Either.isRight(encoded)) {
        const now = yield* Clock.currentTimeMillis
        yield* plan.store
          .fail({ key: plan.key, owner: plan.owner, now, error: encoded.right })
          .pipe(
            Effect.catchAll((storeError) =>
              Effect.logWarning(`Idempotency: could not store the failure of key "${plan.key}"`, storeError)
            )
          )
        return yield* Effect.failCause(cause)
      }
      yield* Effect.logWarning(
        `Idempotency: the failure of key "${plan.key}" does not encode with the failure Schema; releasing the key`,
        encoded.left
      )
    }

    yield* release(plan)
    return yield* Effect.failCause(cause)
  })

/**
 * Everything a caller does while it holds the claim. Runs uninterruptibly except inside `restore`, so the
 * claim is always completed, failed, released or (on purpose) left to its lease.
 */
const runOwned = <A, E, R, AI, AR, F, FI, FR, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  self: Effect.Effect<A, E, R>,
  takeover: boolean,
  restore: Restore
): Effect.Effect<A, E | RE | LeaseLost | IdempotencyStoreError | ResponseInvalid, R | AR | FR | RR> =>
  Effect.gen(function* () {
    yield* observe(plan.span, takeover ? "takeover" : "claimed")

    if (takeover && plan.recover !== undefined) {
      const recovered = yield* supervise(plan, plan.recover(plan.key), restore)
      if (Option.isSome(recovered.leaseLost)) return yield* Effect.fail(recovered.leaseLost.value)

      // A failed recover leaves the claim as it is: the earlier attempt's outcome is still unknown.
      if (Exit.isFailure(recovered.exit)) return yield* Effect.failCause(recovered.exit.cause)
      if (Option.isSome(recovered.exit.value)) return yield* storeSuccess(plan, recovered.exit.value.value)
    }

    const ran = yield* supervise(plan, self, restore)
    if (Option.isSome(ran.leaseLost)) return yield* Effect.fail(ran.leaseLost.value)

    return yield* settle(plan, ran.exit)
  })

/** Stores, fails or releases the claim according to how the work ended. */
const settle = <A, E, AI, AR, F, FI, FR, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  exit: Exit.Exit<A, E>
): Effect.Effect<A, E | LeaseLost | IdempotencyStoreError | ResponseInvalid, AR | FR> => {
  if (Exit.isSuccess(exit)) return storeSuccess(plan, exit.value)
  const cause = exit.cause
  return Option.match(Cause.failureOption(cause), {
    onSome: (error) => storeFailure(plan, error, cause),
    // A defect or an interruption of the work: nothing is known about it, so the next caller runs it again.
    onNone: () => Effect.zipRight(release(plan), Effect.failCause(cause))
  })
}

type ClaimStep<X> =
  | { readonly _tag: "Owned"; readonly value: X }
  | { readonly _tag: "Existing"; readonly record: IdempotencyRecord }

/** Whether a claim could take `record` over: its owner's lease is over and it is for the same request. */
const mayTakeOver = (record: IdempotencyRecord, requestHash: string, now: number): boolean =>
  record.status === "processing" && record.requestHash === requestHash && record.leaseExpiresAt <= now

/**
 * One look at the key. A record that no claim could change (completed, held under a running lease, or made for
 * another request) is answered from a single read, so a replay costs one primary-key read; only a key that
 * may be claimable costs a claim. `onClaimed` runs in the uninterruptible region that took the claim, so an
 * interruption cannot leave the claim without an owner that settles it.
 */
const claimOrRead = <A, AI, AR, F, FI, FR, E, RE, RR, X, EX, RX>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  onClaimed: (claimed: IdempotencyRecord, takeover: boolean, restore: Restore) => Effect.Effect<X, EX, RX>
): Effect.Effect<ClaimStep<X>, EX | IdempotencyStoreError, RX> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const seen = yield* plan.store.get(plan.key, now)
    if (Option.isSome(seen) && !mayTakeOver(seen.value, plan.requestHash, now)) {
      return { _tag: "Existing", record: seen.value } as const
    }

    return yield* Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        claim(plan),
        (result): Effect.Effect<ClaimStep<X>, EX, RX> =>
          result._tag === "Claimed"
            ? Effect.map(onClaimed(result.record, result.takeover, restore), (value) => ({ _tag: "Owned", value }))
            : Effect.succeed({ _tag: "Existing", record: result.record })
      )
    )
  })

const payloadMismatch = <A, AI, AR, F, FI, FR, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, E, RE, RR>,
  record: IdempotencyRecord
): Effect.Effect<never, PayloadMismatch> =>
  Effect.zipRight(
    observe(plan.span, "mismatch"),
    Effect.fail(new PayloadMismatch({ key: plan.key, storedHash: record.requestHash, requestHash: plan.requestHash }))
  )

/** @internal */
export const execute = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  self: Effect.Effect<A, E, R>,
  options: ExecuteOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
) =>
  traced("Idempotency.execute", options.key, (span) =>
    Effect.gen(function* () {
      const plan = yield* makePlan(options, span)
      const waiter =
        options.onInProgress === "wait" ? yield* makeWaiter(options.waitSchedule, options.waitTimeout) : undefined

      while (true) {
        const step = yield* claimOrRead(plan, (_, takeover, restore) => runOwned(plan, self, takeover, restore))
        if (step._tag === "Owned") return step.value

        let record = step.record
        if (record.status === "processing" && record.requestHash === plan.requestHash) {
          if (waiter === undefined) {
            yield* observe(plan.span, "in_progress")
            return yield* Effect.fail(new RequestInProgress({ key: plan.key, leaseExpiresAt: record.leaseExpiresAt }))
          }
          const changed = yield* waitForChange(plan.store, plan.key, plan.requestHash, record, waiter).pipe(
            Effect.tapErrorTag("RequestInProgress", () => observe(plan.span, "in_progress"))
          )
          if (Option.isNone(changed)) continue
          record = changed.value
        }

        if (record.requestHash !== plan.requestHash) return yield* payloadMismatch(plan, record)

        yield* observe(plan.span, "replayed")
        const outcome = yield* toOutcome(plan.key, record, plan.success, plan.failure)
        return yield* settleOutcome(outcome, plan.key)
      }
    })
  )

/** @internal */
export const submit = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  self: Effect.Effect<A, E, R>,
  options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
) =>
  traced("Idempotency.submit", options.key, (span) =>
    Effect.gen(function* () {
      const plan = yield* makePlan(options, span)
      const scope = yield* Effect.scope

      const step = yield* claimOrRead(plan, (claimed, takeover, restore) =>
        Effect.as(
          Effect.forkIn(
            runOwned(plan, self, takeover, restore).pipe(
              Effect.catchAllCause((cause) =>
                Cause.isInterruptedOnly(cause)
                  ? Effect.void
                  : Effect.logDebug(`Idempotency: submitted work for key "${plan.key}" failed`, cause)
              )
            ),
            scope
          ),
          claimed.leaseExpiresAt
        )
      )
      if (step._tag === "Owned") {
        const processing: Outcome<A, F> = { _tag: "Processing", leaseExpiresAt: step.value }
        return processing
      }

      const record = step.record
      if (record.requestHash !== plan.requestHash) return yield* payloadMismatch(plan, record)

      yield* observe(plan.span, record.status === "processing" ? "in_progress" : "replayed")
      return yield* toOutcome(plan.key, record, plan.success, plan.failure)
    })
  )

/** @internal */
export const poll = <A, AI, AR, F, FI, FR>(key: string, options: PollOptions<A, AI, AR, F, FI, FR>) =>
  Effect.gen(function* () {
    const valid = yield* IdempotencyKey.validate(key)
    const store = yield* IdempotencyStore

    const now = yield* Clock.currentTimeMillis
    const record = yield* store.get(valid, now)
    if (Option.isNone(record)) return Option.none<Outcome<A, F>>()

    return Option.some(yield* toOutcome(valid, record.value, options.success, options.failure))
  }).pipe(Effect.withSpan("Idempotency.poll", spanOptions(key)))

/** @internal */
export const await_ = <A, AI, AR, F, FI, FR>(key: string, options: AwaitOptions<A, AI, AR, F, FI, FR>) =>
  Effect.gen(function* () {
    const valid = yield* IdempotencyKey.validate(key)
    const store = yield* IdempotencyStore
    const waiter = yield* makeWaiter(options.waitSchedule, options.waitTimeout)

    while (true) {
      const now = yield* Clock.currentTimeMillis
      const found = yield* store.get(valid, now)
      if (Option.isNone(found)) return yield* Effect.fail(new RequestNotFound({ key: valid }))

      let record = found.value
      if (record.status === "processing") {
        // Nobody holds a lapsed lease: only a new execute or submit with the same key can finish it.
        if (record.leaseExpiresAt <= now) {
          return yield* Effect.fail(new RequestInProgress({ key: valid, leaseExpiresAt: record.leaseExpiresAt }))
        }
        const changed = yield* waitForChange(store, valid, undefined, record, waiter)
        if (Option.isNone(changed)) continue
        record = changed.value
      }

      const outcome = yield* toOutcome(valid, record, options.success, options.failure)
      return yield* settleOutcome(outcome, valid)
    }
  }).pipe(Effect.withSpan("Idempotency.await", spanOptions(key)))
