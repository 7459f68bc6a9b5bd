/**
 * effect-idempotency: idempotent, retry-safe AI API calls for Effect programs.
 *
 * @since 0.1.0
 */

/**
 * Branded idempotency keys built from business parts, e.g. `chatmsg:conv_782:msg_991`.
 *
 * @since 0.1.0
 */
export * as IdempotencyKey from "./IdempotencyKey.js"

/**
 * Canonical JSON and SHA-256 fingerprints of requests, insensitive to object key order.
 *
 * @since 0.1.0
 */
export * as Fingerprint from "./Fingerprint.js"

/**
 * The store port and its in-memory and SQL layers.
 *
 * @since 0.1.0
 */
export * as IdempotencyStore from "./IdempotencyStore.js"

/**
 * Run an effect at most once per key: claim, store, replay, reject payload drift, wait or take over.
 *
 * @since 0.1.0
 */
export * as Idempotency from "./Idempotency.js"

/**
 * Typed errors of an AI API call, split into retryable and fatal.
 *
 * @since 0.1.0
 */
export * as CallError from "./CallError.js"

/**
 * Parsing of Retry-After and rate-limit reset headers.
 *
 * @since 0.1.0
 */
export * as RetryAfter from "./RetryAfter.js"

/**
 * Retry Schedules: exponential backoff, jitter kinds, Retry-After, caps, deadlines.
 *
 * @since 0.1.0
 */
export * as RetryPolicy from "./RetryPolicy.js"

/**
 * A shared token bucket that keeps retries from multiplying an outage into a storm.
 *
 * @since 0.1.0
 */
export * as RetryBudget from "./RetryBudget.js"

/**
 * Where actions go when retries are exhausted, with an alert hook, replay and discard.
 *
 * @since 0.1.0
 */
export * as DeadLetterQueue from "./DeadLetterQueue.js"

/**
 * Schemas of OpenAI-compatible chat completion requests and responses.
 *
 * @since 0.1.0
 */
export * as ChatCompletion from "./ChatCompletion.js"

/**
 * An OpenAI-compatible chat completion client over `@effect/platform`'s HttpClient that sends the
 * idempotency key on every attempt and retries with a `RetryPolicy`.
 *
 * @since 0.1.0
 */
export * as AiClient from "./AiClient.js"
