/**
 * Run an effect at most once per idempotency key, and hand every later caller the stored result.
 *
 * `execute` claims the key in the `IdempotencyStore` with a lease, runs the effect, and stores its
 * Schema-encoded result; a retry with the same key and request replays that result without running the effect
 * again. A caller that crashes leaves a claim that another caller takes over once the lease ends; the crashed
 * caller, should it come back, can no longer write. `submit`, `poll` and `await` split the same work into
 * "accepted" and "completed", for callers that must not hold a connection open while a model thinks.
 *
 * All time comes from Effect's `Clock`, so `TestClock` moves leases, waits and expiry in tests.
 *
 * @since 0.1.0
 */
import type { Duration, Option, Schedule, Schema, Scope } from "effect"
import { Effect } from "effect"
import { dual } from "effect/Function"
import type { UnserializableRequest } from "./Fingerprint.js"
import type { IdempotencyKey, InvalidIdempotencyKey } from "./IdempotencyKey.js"
import type { IdempotencyStore, IdempotencyStoreError, LeaseLost } from "./IdempotencyStore.js"
import * as internal from "./internal/idempotency.js"
import type {
  PayloadMismatch,
  RequestInProgress,
  RequestNotFound,
  ResponseInvalid,
  StoredValueInvalid
} from "./internal/idempotencyErrors.js"

export {
  /**
   * The key was first used with another request; carries both fingerprints.
   *
   * @since 0.1.0
   * @category errors
   */
  PayloadMismatch,
  /**
   * Another caller holds the key; carries the epoch ms at which its lease ends.
   *
   * @since 0.1.0
   * @category errors
   */
  RequestInProgress,
  /**
   * `await` found no record for the key.
   *
   * @since 0.1.0
   * @category errors
   */
  RequestNotFound,
  /**
   * The effect's value does not encode with the `success` Schema, so it was not stored.
   *
   * @since 0.1.0
   * @category errors
   */
  ResponseInvalid,
  /**
   * A stored result no longer decodes with the Schema given now.
   *
   * @since 0.1.0
   * @category errors
   */
  StoredValueInvalid
} from "./internal/idempotencyErrors.js"

/**
 * What a key's record says: still being worked on, or finished with a value or a (fatal) error.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A, E = never> = Processing | Succeeded<A> | Failed<E>

/**
 * Some caller holds the key; `leaseExpiresAt` (epoch ms) is when its lease ends unless it extends it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Processing {
  readonly _tag: "Processing"
  readonly leaseExpiresAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Succeeded<A> {
  readonly _tag: "Succeeded"
  readonly value: A
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Failed<E> {
  readonly _tag: "Failed"
  readonly error: E
}

/**
 * How stored results are read back.
 *
 * @since 0.1.0
 * @category options
 */
export interface PollOptions<A, AI, AR, F = never, FI = never, FR = never> {
  /** Encodes the effect's value for the store and decodes it on replay. Its encoded side must be JSON. */
  readonly success: Schema.Schema<A, AI, AR>
  /**
   * Encodes fatal errors for the store and decodes them on replay. Without it no failure is stored: every
   * failure releases the key.
   */
  readonly failure?: Schema.Schema<F, FI, FR> | undefined
}

/**
 * Options of `await`.
 *
 * @since 0.1.0
 * @category options
 */
export interface AwaitOptions<A, AI, AR, F = never, FI = never, FR = never> extends PollOptions<A, AI, AR, F, FI, FR> {
  /** When to look at the record again. Default: 50 ms, doubling, at most 1 s apart. */
  readonly waitSchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** Give up with `RequestInProgress` after this long. Default: no limit. */
  readonly waitTimeout?: Duration.DurationInput | undefined
}

/**
 * Options of `submit` (and, with the waiting options, of `execute`).
 *
 * @since 0.1.0
 * @category options
 */
export interface SubmitOptions<
  A,
  AI,
  AR,
  F = never,
  FI = never,
  FR = never,
  Req = unknown,
  E = unknown,
  RE = never,
  RR = never
> extends PollOptions<A, AI, AR, F, FI, FR> {
  /** The idempotency key: 1 to 255 printable ASCII characters, no space at either end (see `IdempotencyKey`). */
  readonly key: string
  /** The request the key stands for; its fingerprint must match on every retry. */
  readonly request: Req
  /** How long the record lives after its first claim. Default: 24 hours. */
  readonly ttl?: Duration.DurationInput | undefined
  /**
   * How long a claim stays exclusive without a heartbeat. Default: 5 minutes, enough for an `AiClient` call
   * with its default timeout and backoff (long `Retry-After` waits can take it past that; see `heartbeat`).
   * Zero means "reclaimable at once" (another caller may take the key over right away), never "no lease".
   */
  readonly lease?: Duration.DurationInput | undefined
  /**
   * How often the owner extends its lease while the effect runs. Default: off, so an effect that may run longer
   * than `lease` needs either a longer lease or this option (a third of the lease is a good period). With it,
   * a heartbeat that finds the key taken over interrupts the effect. Zero or `Duration.infinity` means off.
   */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** Picks what identifies the request (e.g. leave out a per-transport id). Default: the whole request. */
  readonly fingerprint?: ((request: Req) => unknown) | undefined
  /** Which failures are final and stored (needs `failure`). Default: the fatal `CallError`s (400, 401, ...). */
  readonly isFatal?: ((error: E) => boolean) | undefined
  /**
   * Which failures leave the outcome unknown (the provider may have acted): the claim is kept until its lease
   * ends, and the next caller runs `recover` before running the effect. Default: none.
   */
  readonly isOutcomeUnknown?: ((error: E) => boolean) | undefined
  /**
   * Run by a caller that takes over a lapsed claim, before it runs the effect: `Some(value)` finishes the key
   * with that value (the earlier attempt did complete, e.g. the provider has the answer), `None` runs the
   * effect. A failure keeps the claim as it is.
   */
  readonly recover?: ((key: IdempotencyKey) => Effect.Effect<Option.Option<A>, RE, RR>) | undefined
}

/**
 * Options of `execute`.
 *
 * @since 0.1.0
 * @category options
 */
export interface ExecuteOptions<
  A,
  AI,
  AR,
  F = never,
  FI = never,
  FR = never,
  Req = unknown,
  E = unknown,
  RE = never,
  RR = never
> extends SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR> {
  /**
   * What to do when another caller holds the key: `"fail"` with `RequestInProgress` (default), or `"wait"`
   * for its result (replayed), its lease to end (then take over), or `waitTimeout` to pass.
   */
  readonly onInProgress?: "fail" | "wait" | undefined
  /** In `"wait"` mode, when to look at the record again. Default: 50 ms, doubling, at most 1 s apart. */
  readonly waitSchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** In `"wait"` mode, give up with `RequestInProgress` after this long. Default: no limit. */
  readonly waitTimeout?: Duration.DurationInput | undefined
}

/**
 * The errors `execute` adds to the effect's own.
 *
 * @since 0.1.0
 * @category errors
 */
export type ExecuteError =
  | PayloadMismatch
  | RequestInProgress
  | LeaseLost
  | IdempotencyStoreError
  | StoredValueInvalid
  | ResponseInvalid
  | InvalidIdempotencyKey
  | UnserializableRequest

/**
 * The errors `submit` can fail with (the work's own errors stay with the work and its record).
 *
 * @since 0.1.0
 * @category errors
 */
export type SubmitError =
  | PayloadMismatch
  | IdempotencyStoreError
  | StoredValueInvalid
  | InvalidIdempotencyKey
  | UnserializableRequest

/**
 * Runs `self` at most once for `options.key`.
 *
 * - A new key (or an expired one) is claimed, the effect runs, and its value is stored and returned.
 * - The same key and request again: the stored value is decoded and returned; the effect does not run.
 * - The same key with another request: `PayloadMismatch`.
 * - The key is held by another caller: `RequestInProgress`, or with `onInProgress: "wait"` its result.
 * - The key's lease ran out (its caller crashed, or ran longer than `lease` without `heartbeat`): this caller
 *   takes it over, runs `recover` if given, then the effect; the old caller's writes are refused with `LeaseLost`.
 * - The effect fails: a fatal error (`isFatal`, with a `failure` Schema) is stored and replayed to later
 *   callers; an outcome-unknown error (`isOutcomeUnknown`) keeps the claim until its lease ends; any other
 *   failure, a defect or an interruption releases the key so that the next caller runs it again.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Idempotency, IdempotencyStore } from "effect-idempotency"
 *
 * const Answer = Schema.Struct({ text: Schema.String, at: Schema.Date })
 * const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] }
 *
 * const callModel = Effect.succeed({ text: "Hello!", at: new Date(0) })
 *
 * const program = callModel.pipe(
 *   Idempotency.execute({ key: "chatmsg:conv_782:msg_991", request, success: Answer })
 * )
 *
 * Effect.runPromise(Effect.provide(program, IdempotencyStore.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export const execute: {
  <A, AI, AR, F = never, FI = never, FR = never, Req = unknown, E = unknown, RE = never, RR = never>(
    options: ExecuteOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
  ): <E2 extends E, R>(
    self: Effect.Effect<A, E2, R>
  ) => Effect.Effect<A, E2 | F | RE | ExecuteError, R | AR | FR | RR | IdempotencyStore>
  <A, E, R, AI, AR, F = never, FI = never, FR = never, Req = unknown, RE = never, RR = never>(
    self: Effect.Effect<A, E, R>,
    options: ExecuteOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
  ): Effect.Effect<A, E | F | RE | ExecuteError, R | AR | FR | RR | IdempotencyStore>
} = dual((args) => Effect.isEffect(args[0]), internal.execute)

/**
 * Claims the key and starts `self` in the background, returning at once with the record's state:
 * `Processing` (just started, or someone else is working on it), or `Succeeded` / `Failed` when the key is
 * already done (replayed without running). The outcome is read later with `poll` or `await`.
 *
 * The work runs in the caller's `Scope`: it keeps running after `submit` returns and is interrupted when that
 * scope closes (then the key is released, as for any interruption). Give it a scope that lives as long as the
 * work should, e.g. the application's.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Idempotency } from "effect-idempotency"
 *
 * const accepted = Idempotency.submit(Effect.succeed("done"), {
 *   key: "report:2024-06",
 *   request: { month: "2024-06" },
 *   success: Schema.String
 * })
 * // later, from any caller that knows the key:
 * const finished = Idempotency.await("report:2024-06", { success: Schema.String })
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export const submit: {
  <A, AI, AR, F = never, FI = never, FR = never, Req = unknown, E = unknown, RE = never, RR = never>(
    options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
  ): <E2 extends E, R>(
    self: Effect.Effect<A, E2, R>
  ) => Effect.Effect<Outcome<A, F>, SubmitError, R | AR | FR | RR | IdempotencyStore | Scope.Scope>
  <A, E, R, AI, AR, F = never, FI = never, FR = never, Req = unknown, RE = never, RR = never>(
    self: Effect.Effect<A, E, R>,
    options: SubmitOptions<A, AI, AR, F, FI, FR, Req, E, RE, RR>
  ): Effect.Effect<Outcome<A, F>, SubmitError, R | AR | FR | RR | IdempotencyStore | Scope.Scope>
} = dual((args) => Effect.isEffect(args[0]), internal.submit)

/**
 * The key's current outcome, decoded: `None` when there is no live record (never used, released, or expired).
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { Idempotency } from "effect-idempotency"
 *
 * const status = Idempotency.poll("report:2024-06", { success: Schema.String }).pipe(
 *   Effect.map(Option.map((outcome) => outcome._tag))
 * )
 * ```
 *
 * @since 0.1.0
 * @category results
 */
export const poll: <A, AI, AR, F = never, FI = never, FR = never>(
  key: string,
  options: PollOptions<A, AI, AR, F, FI, FR>
) => Effect.Effect<
  Option.Option<Outcome<A, F>>,
  StoredValueInvalid | IdempotencyStoreError | InvalidIdempotencyKey,
  AR | FR | IdempotencyStore
> = internal.poll

/**
 * Waits until the key completes and returns its value (or fails with its stored error). Fails with
 * `RequestNotFound` when there is no record, and with `RequestInProgress` when `waitTimeout` passes, the
 * schedule ends, or the record's lease has lapsed (its caller is gone: run `execute` or `submit` again).
 *
 * Exported as `await`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Idempotency } from "effect-idempotency"
 *
 * const answer = Idempotency.await("report:2024-06", { success: Schema.String, waitTimeout: "30 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category results
 */
const await_: <A, AI, AR, F = never, FI = never, FR = never>(
  key: string,
  options: AwaitOptions<A, AI, AR, F, FI, FR>
) => Effect.Effect<
  A,
  F | RequestInProgress | RequestNotFound | StoredValueInvalid | IdempotencyStoreError | InvalidIdempotencyKey,
  AR | FR | IdempotencyStore
> = internal.await_

export {
  /**
   * @since 0.1.0
   * @category results
   */
  await_ as await
}
