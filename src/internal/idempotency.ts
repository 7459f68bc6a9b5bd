/**
 * The engine behind `Idempotency`: read or claim a key, run the effect while owning it (with heartbeats),
 * then store, fail or release the claim; and the accepted/completed split of `submit`, `poll` and `await`.
 *
 * The paths every call takes (a replay; a fresh claim) are written as plain `flatMap` chains that do only what
 * they need: a replay checks the key, fingerprints the request, reads the record and decodes it, and nothing
 * else; the owner token, lease and heartbeat exist only once a call claims.
 *
 * @internal
 */
import {
  Array as Arr,
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberRef,
  Metric,
  MetricLabel,
  Option,
  Tracer
} from "effect"
import * as CallError from "../CallError.js"
import * as Fingerprint from "../Fingerprint.js"
import type { AwaitOptions, ExecuteOptions, Outcome, PollOptions, SubmitOptions } from "../Idempotency.js"
import * as IdempotencyKey from "../IdempotencyKey.js"
import type { IdempotencyRecord, IdempotencyStoreShape } from "../IdempotencyStore.js"
import { IdempotencyStore, type IdempotencyStoreError, type LeaseLost } from "../IdempotencyStore.js"
import {
  PayloadMismatch,
  RequestInProgress,
  RequestNotFound,
  ResponseInvalid,
  type StoredValueInvalid
} from "./idempotencyErrors.js"
import { encodeJson, replay, toOutcome } from "./idempotencyCodec.js"
import { makeWaiter, type Waiter, waitForChange } from "./idempotencyWait.js"

type Restore = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

/** A claimed key is kept this long after its first claim unless the caller says otherwise. */
const defaultTtl = Duration.toMillis(Duration.hours(24))

/** Long enough for a slow model call, short enough that a crashed caller's key is retaken within minutes. */
const defaultLease = Duration.toMillis(Duration.minutes(5))

const never = (): boolean => false

/** @internal */
export type ExecutionOutcome = "claimed" | "replayed" | "takeover" | "mismatch" | "in_progress"

/** @internal */
export const executions = Metric.counter("effect_idempotency_executions_total", {
  description: "Calls of Idempotency.execute and Idempotency.submit, by what the key's record made of them",
  incremental: true
})

/**
 * The `outcome` label of each outcome, one array each for good. A counter finds its registry entry for a set
 * of labels through a cache keyed by the array itself, so handing it the same array every time is a lookup;
 * `Metric.tagged` builds a new array (and so a new registry key) on every increment.
 */
const outcomeLabels: Record<ExecutionOutcome, ReadonlyArray<MetricLabel.MetricLabel>> = {
  claimed: [MetricLabel.make("outcome", "claimed")],
  replayed: [MetricLabel.make("outcome", "replayed")],
  takeover: [MetricLabel.make("outcome", "takeover")],
  mismatch: [MetricLabel.make("outcome", "mismatch")],
  in_progress: [MetricLabel.make("outcome", "in_progress")]
}

/**
 * What a call reads from its fiber once, when it starts: its span, the services in its context, its `Clock`
 * and its metric labels. The hot paths use them from plain callbacks instead of one effect step each.
 */
interface Ambient {
  readonly span: Tracer.Span
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
  readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
}

/**
 * Sets the outcome on the span and counts it, as `Metric.increment(Metric.tagged(executions, "outcome", ...))`
 * would, with the fiber's metric labels too. It acts at once: call it only while the call runs (inside a
 * callback), never while building an effect.
 */
const observe = (ambient: Ambient, outcome: ExecutionOutcome): void => {
  ambient.span.attribute("idempotency.outcome", outcome)
  const labels = outcomeLabels[outcome]
  executions.unsafeUpdate(1, ambient.labels.length === 0 ? labels : Arr.union(labels, ambient.labels))
}

/** Like Effect's own library spans, ours skip the stack trace: it costs more than a replay's decoding. */
const spanOptions = (key: string) => ({ attributes: { "idempotency.key": key }, captureStackTrace: false })

/** The options of every `traced` span: the key is set on the span itself, with no options object per call. */
const tracedOptions = { captureStackTrace: false } as const

const noTime = BigInt(0)

/**
 * Runs `body` in the span `name` and hands it the span and what else it needs from the fiber. It does what
 * `Effect.withSpan` does (the span is the parent of everything `body` runs and ends with `body`'s exit), in one
 * uninterruptible region where `withSpan` takes two: every call pays for its span, a replay included.
 */
const traced = <A, E, R>(
  name: string,
  key: string,
  body: (ambient: Ambient) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.makeSpan(name, tracedOptions), (span) =>
      Effect.withFiberRuntime<A, E, R>((fiber) => {
        span.attribute("idempotency.key", key)
        const context = fiber.getFiberRef(FiberRef.currentContext)
        const timed = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
        const end = (exit: Exit.Exit<A, E>) =>
          Effect.flatMap(FiberRef.set(FiberRef.currentContext, context), () => {
            span.end(timed ? clock.unsafeCurrentTimeNanos() : noTime, exit)
            return exit
          })
        return Effect.zipRight(
          FiberRef.set(FiberRef.currentContext, Context.add(context, Tracer.ParentSpan, span)),
          Effect.matchCauseEffect(restore(body({ span, context, clock, labels })), {
            onFailure: (cause) => end(Exit.failCause(cause)),
            onSuccess: (value) => end(Exit.succeed(value))
          })
        )
      })
    )
  )

/** What every call knows before it looks at the store. */
interface Call<A, AI, AR, F, FI, FR, Req, E, RE, RR> {
  readonly ambient: Ambient
  readonly key: IdempotencyKey.IdempotencyKey
  readonly requestHash: string
  readonly store: IdempotencyStoreShape
  readonly options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
  /** Milliseconds. */
  readonly ttl: number
  /** Milliseconds. */
  readonly lease: number
}

/** What a call that claimed the key adds. */
interface Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR> extends Call<A, AI, AR, F, FI, FR, Req, E, RE, RR> {
  readonly owner: string
  /** Milliseconds between lease extensions; 0 when heartbeats are off. */
  readonly heartbeat: number
  readonly isFatal: (error: E) => boolean
  readonly isOutcomeUnknown: (error: E) => boolean
}

/** A finite, non-negative whole number of milliseconds, or `undefined` (also for input that is no duration). */
const finiteMillis = (input: Duration.DurationInput | undefined, fallback: number): number | undefined => {
  if (input === undefined) return fallback
  // Duration reads a NaN number as zero; here it is a mistake to report.
  if (typeof input === "number" && Number.isNaN(input)) return undefined
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded)) return undefined
  const millis = Duration.toMillis(decoded.value)
  return Number.isFinite(millis) && millis >= 0 ? Math.floor(millis) : undefined
}

const notFinite = (name: string, input: unknown) =>
  Effect.dieMessage(
    `Idempotency: the ${name} option must be a finite, non-negative duration such as "30 seconds"; got ${String(input)}`
  )

/** A record that expired while its owner still works would let a second caller run the effect: ttl must outlive the lease. */
const ttlShorterThanLease = (ttl: number, lease: number) =>
  Effect.dieMessage(
    `Idempotency: the ttl option (${ttl} ms) must be longer than the lease (${lease} ms); ` +
      "a record that expires while its owner still works lets another caller run the effect again"
  )

/**
 * Checks the key and the durations, fingerprints the request (the whole request, or the part the
 * `fingerprint` option picks) and finds the store, then hands the call to `next`.
 */
const prepare = <A, AI, AR, F, FI, FR, Req, E, RE, RR, X, EX, RX>(
  options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  ambient: Ambient,
  next: (call: Call<A, AI, AR, F, FI, FR, Req, E, RE, RR>) => Effect.Effect<X, EX, RX>
): Effect.Effect<X, EX | IdempotencyKey.InvalidIdempotencyKey | Fingerprint.UnserializableRequest, RX> =>
  Effect.flatMap(
    IdempotencyKey.validate(options.key),
    (key): Effect.Effect<X, EX | Fingerprint.UnserializableRequest, RX> => {
      let requestHash: string
      try {
        requestHash = Fingerprint.hash(
          options.fingerprint === undefined ? options.request : options.fingerprint(options.request)
        )
      } catch (error) {
        return error instanceof Fingerprint.UnserializableRequest ? Effect.fail(error) : Effect.die(error)
      }
      const ttl = finiteMillis(options.ttl, defaultTtl)
      if (ttl === undefined) return notFinite("ttl", options.ttl)
      const lease = finiteMillis(options.lease, defaultLease)
      if (lease === undefined) return notFinite("lease", options.lease)
      if (ttl <= lease) return ttlShorterThanLease(ttl, lease)
      // The signatures of execute and submit require the store, so it is in the context.
      const store = Context.unsafeGet(ambient.context, IdempotencyStore)
      return next({ ambient, key, requestHash, store, options, ttl, lease })
    }
  )

/**
 * The heartbeat period in milliseconds; 0 (off) when not given, infinite or zero. Heartbeats are opt-in: they
 * cost two fibers per call (see docs/idempotency.md), more than the rest of the engine together.
 */
const heartbeatOf = (input: Duration.DurationInput | undefined): number => {
  if (input === undefined) return 0
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) ? Math.floor(millis) : 0
}

const planOf = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  call: Call<A, AI, AR, F, FI, FR, Req, E, RE, RR>
): Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR> => ({
  ambient: call.ambient,
  key: call.key,
  requestHash: call.requestHash,
  store: call.store,
  options: call.options,
  ttl: call.ttl,
  lease: call.lease,
  owner: globalThis.crypto.randomUUID(),
  heartbeat: heartbeatOf(call.options.heartbeat),
  isFatal: call.options.isFatal ?? CallError.isFatal,
  isOutcomeUnknown: call.options.isOutcomeUnknown ?? never
})

const release = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>
): Effect.Effect<void> =>
  Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => plan.store.release({ key: plan.key, owner: plan.owner, now })),
    // The caller's own outcome matters more; an unreleased claim is retaken once its lease ends.
    Effect.catchAll((error) =>
      Effect.logWarning(`Idempotency: could not release key "${plan.key}"; it frees up when its lease ends`, error)
    )
  )

const heartbeatLoop = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>
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

/**
 * What follows the work: its own exit, and the `LeaseLost` a heartbeat met (the work was interrupted then),
 * if any.
 */
type AfterWork<X, EX, Y, EY, RY> = (
  exit: Exit.Exit<X, EX>,
  leaseLost: LeaseLost | undefined
) => Effect.Effect<Y, EY, RY>

/**
 * Runs `effect` and hands its own exit to `next`. With heartbeats on, the work runs in a fiber of its own beside a
 * heartbeat fiber that extends the lease: a lost lease interrupts the work and is reported apart, so it cannot
 * be mistaken for one of the work's own errors. When the caller is interrupted, the work is interrupted and
 * its exit still settles the claim; leaving the uninterruptible region then ends the caller as interrupted.
 * With heartbeats off the work runs in the caller's fiber.
 */
const supervise = <X, EX, RX, Y, EY, RY, A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  effect: Effect.Effect<X, EX, RX>,
  restore: Restore,
  next: AfterWork<X, EX, Y, EY, RY>
): Effect.Effect<Y, EY, RX | RY> => {
  if (plan.heartbeat === 0) return Effect.flatMap(Effect.exit(restore(effect)), (exit) => next(exit, undefined))
  return Effect.flatMap(Effect.fork(restore(effect)), (work) => {
    let leaseLost: LeaseLost | undefined = undefined
    const onLost = (lost: LeaseLost) =>
      Effect.suspend(() => {
        leaseLost = lost
        return Fiber.interruptFork(work)
      })
    return Effect.flatMap(Effect.fork(restore(Effect.catchAll(heartbeatLoop(plan), onLost))), (heart) =>
      Effect.flatMap(Effect.exit(restore(Fiber.await(work))), (awaited) => {
        const exit = Exit.isSuccess(awaited) ? Effect.succeed(awaited.value) : Fiber.interrupt(work)
        return Effect.flatMap(exit, (exit) =>
          Effect.zipRight(
            // Awaited, so that no beat can land after the claim is settled.
            Fiber.interrupt(heart),
            // As if the work had run in the caller's fiber: its FiberRef changes (log annotations, ...) carry over.
            Effect.flatMap(Fiber.inheritAll(work), () => next(exit, leaseLost))
          )
        )
      })
    )
  })
}

const storeSuccess = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  value: A
): Effect.Effect<A, ResponseInvalid | LeaseLost | IdempotencyStoreError, AR> =>
  Effect.matchEffect(encodeJson(plan.options.success, value), {
    onFailure: (cause) => Effect.zipRight(release(plan), Effect.fail(new ResponseInvalid({ key: plan.key, cause }))),
    onSuccess: (response) =>
      Effect.as(
        plan.store.complete({
          key: plan.key,
          owner: plan.owner,
          now: plan.ambient.clock.unsafeCurrentTimeMillis(),
          response
        }),
        value
      )
  })

type Verdict = "unknown" | "fatal" | "retryable"

const classify = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  error: E
): Effect.Effect<Verdict> =>
  Effect.try((): Verdict => {
    if (plan.isOutcomeUnknown(error)) return "unknown"
    return plan.options.failure !== undefined && plan.isFatal(error) ? "fatal" : "retryable"
  }).pipe(
    Effect.catchAll((cause) =>
      Effect.as(
        Effect.logWarning("Idempotency: isFatal/isOutcomeUnknown threw; treating the error as retryable", cause),
        "retryable" as const
      )
    )
  )

const storeFailure = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  error: E,
  cause: Cause.Cause<E>
): Effect.Effect<never, E, FR> =>
  Effect.gen(function* () {
    const verdict = yield* classify(plan, error)

    // The provider may have acted on it: keep the claim until the lease ends, so the next caller recovers first.
    if (verdict === "unknown") return yield* Effect.failCause(cause)

    const failure = plan.options.failure
    if (verdict === "fatal" && failure !== undefined) {
      const encoded = yield* Effect.either(encodeJson(failure, error))
      if (encoded._tag === "Right") {
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

/** Stores, fails or releases the claim according to how the work ended. */
const settle = <A, E, AI, AR, F, FI, FR, Req, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  exit: Exit.Exit<A, E>,
  leaseLost: LeaseLost | undefined
): Effect.Effect<A, E | LeaseLost | IdempotencyStoreError | ResponseInvalid, AR | FR> => {
  if (leaseLost !== undefined) return Effect.fail(leaseLost)
  if (Exit.isSuccess(exit)) return storeSuccess(plan, exit.value)
  const cause = exit.cause
  return Option.match(Cause.failureOption(cause), {
    onSome: (error) => storeFailure(plan, error, cause),
    // A defect or an interruption of the work: nothing is known about it, so the next caller runs it again.
    onNone: () => Effect.zipRight(release(plan), Effect.failCause(cause))
  })
}

/** A caller that took a lapsed claim over asks `recover` first; `Some` finishes the key without running. */
const recoverThenRun = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  recover: (key: IdempotencyKey.IdempotencyKey) => Effect.Effect<Option.Option<A>, RE, RR>,
  self: Effect.Effect<A, E, R>,
  restore: Restore
): Effect.Effect<A, E | RE | LeaseLost | IdempotencyStoreError | ResponseInvalid, R | AR | FR | RR> =>
  supervise(
    plan,
    recover(plan.key),
    restore,
    (exit, leaseLost): Effect.Effect<A, E | RE | LeaseLost | IdempotencyStoreError | ResponseInvalid, R | AR | FR> => {
      if (leaseLost !== undefined) return Effect.fail(leaseLost)

      // A failed recover leaves the claim as it is: the earlier attempt's outcome is still unknown.
      if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
      if (Option.isSome(exit.value)) return storeSuccess(plan, exit.value.value)
      return supervise(plan, self, restore, (exit, leaseLost) => settle(plan, exit, leaseLost))
    }
  )

/**
 * Everything a caller does while it holds the claim. Runs uninterruptibly except inside `restore`, so the
 * claim is always completed, failed, released or (on purpose) left to its lease.
 */
const runOwned = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  self: Effect.Effect<A, E, R>,
  takeover: boolean,
  restore: Restore
): Effect.Effect<A, E | RE | LeaseLost | IdempotencyStoreError | ResponseInvalid, R | AR | FR | RR> => {
  observe(plan.ambient, takeover ? "takeover" : "claimed")
  const recover = plan.options.recover
  return takeover && recover !== undefined
    ? recoverThenRun(plan, recover, self, restore)
    : supervise(plan, self, restore, (exit, leaseLost) => settle(plan, exit, leaseLost))
}

/** Whether a claim could take `record` over: its owner's lease is over and it is for the same request. */
const mayTakeOver = (record: IdempotencyRecord, requestHash: string, now: number): boolean =>
  record.status === "processing" && record.requestHash === requestHash && record.leaseExpiresAt <= now

/**
 * One look at the key. A record that no claim could change (completed, held under a running lease, or made for
 * another request) is answered from a single read, so a replay costs one primary-key read; only a key that
 * may be claimable costs a claim. `onClaimed` runs in the uninterruptible region that took the claim, so an
 * interruption cannot leave the claim without an owner that settles it; `onExisting` runs as interruptible as
 * the caller was. It reads the clock at once: call it only while the call runs.
 */
const claimOrRead = <A, AI, AR, F, FI, FR, Req, E, RE, RR, X, EX, RX>(
  call: Call<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  onClaimed: (
    plan: Plan<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
    claimed: IdempotencyRecord,
    takeover: boolean,
    restore: Restore
  ) => Effect.Effect<X, EX, RX>,
  onExisting: (record: IdempotencyRecord) => Effect.Effect<X, EX, RX>
): Effect.Effect<X, EX | IdempotencyStoreError, RX> => {
  const now = call.ambient.clock.unsafeCurrentTimeMillis()
  return Effect.flatMap(call.store.get(call.key, now), (seen) => {
    if (Option.isSome(seen) && !mayTakeOver(seen.value, call.requestHash, now)) return onExisting(seen.value)

    const plan = planOf(call)
    const request = {
      key: plan.key,
      requestHash: plan.requestHash,
      owner: plan.owner,
      now,
      leaseExpiresAt: now + plan.lease,
      expiresAt: now + plan.ttl
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        plan.store.claim(request),
        (result): Effect.Effect<X, EX, RX> =>
          result._tag === "Claimed"
            ? onClaimed(plan, result.record, result.takeover, restore)
            : restore(onExisting(result.record))
      )
    )
  })
}

const payloadMismatch = <A, AI, AR, F, FI, FR, Req, E, RE, RR>(
  call: Call<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  record: IdempotencyRecord
): Effect.Effect<never, PayloadMismatch> => {
  observe(call.ambient, "mismatch")
  return Effect.fail(
    new PayloadMismatch({ key: call.key, storedHash: record.requestHash, requestHash: call.requestHash })
  )
}

/** What `execute` fails with once its key and request have passed their checks. */
type AttemptError<E, F, RE> =
  | E
  | F
  | RE
  | PayloadMismatch
  | RequestInProgress
  | LeaseLost
  | IdempotencyStoreError
  | ResponseInvalid
  | StoredValueInvalid

/** `execute` after its checks: read or claim the key, and answer from the record when it is not claimable. */
const attempt = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  call: Call<A, AI, AR, F, FI, FR, Req, E, RE, RR>,
  self: Effect.Effect<A, E, R>,
  waiter: Waiter | undefined
): Effect.Effect<A, AttemptError<E, F, RE>, R | AR | FR | RR> => {
  const answer = (record: IdempotencyRecord): Effect.Effect<A, AttemptError<E, F, RE>, R | AR | FR | RR> => {
    if (record.requestHash !== call.requestHash) return payloadMismatch(call, record)
    if (record.status === "processing") {
      if (waiter === undefined) {
        observe(call.ambient, "in_progress")
        return Effect.fail(new RequestInProgress({ key: call.key, leaseExpiresAt: record.leaseExpiresAt }))
      }
      return waitForChange(call.store, call.key, call.requestHash, record, waiter).pipe(
        Effect.tapErrorTag("RequestInProgress", () => Effect.sync(() => observe(call.ambient, "in_progress"))),
        Effect.flatMap(Option.match({ onNone: () => attempt(call, self, waiter), onSome: answer }))
      )
    }
    observe(call.ambient, "replayed")
    return replay(call.key, record, call.options.success, call.options.failure)
  }
  return claimOrRead(call, (plan, _, takeover, restore) => runOwned(plan, self, takeover, restore), answer)
}

/** @internal */
export const execute = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  self: Effect.Effect<A, E, R>,
  options: ExecuteOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
) =>
  traced("Idempotency.execute", options.key, (ambient) =>
    prepare(options, ambient, (call) =>
      options.onInProgress === "wait"
        ? Effect.flatMap(makeWaiter(options.waitSchedule, options.waitTimeout), (waiter) => attempt(call, self, waiter))
        : attempt(call, self, undefined)
    )
  )

/** @internal */
export const submit = <A, E, R, AI, AR, F, FI, FR, Req, RE, RR>(
  self: Effect.Effect<A, E, R>,
  options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
) =>
  traced("Idempotency.submit", options.key, (ambient) =>
    prepare(options, ambient, (call) =>
      Effect.flatMap(Effect.scope, (scope) =>
        claimOrRead(
          call,
          (plan, claimed, takeover, restore): Effect.Effect<Outcome<A, F>, never, R | AR | FR | RR> =>
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
              { _tag: "Processing", leaseExpiresAt: claimed.leaseExpiresAt }
            ),
          (record): Effect.Effect<Outcome<A, F>, PayloadMismatch | StoredValueInvalid, AR | FR> => {
            if (record.requestHash !== call.requestHash) return payloadMismatch(call, record)
            observe(call.ambient, record.status === "processing" ? "in_progress" : "replayed")
            return toOutcome(call.key, record, options.success, options.failure)
          }
        )
      )
    )
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

      return yield* replay(valid, record, options.success, options.failure)
    }
  }).pipe(Effect.withSpan("Idempotency.await", spanOptions(key)))
