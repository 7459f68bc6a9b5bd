/**
 * Reads how long a provider asks a client to wait before trying again, from every header that carries it.
 *
 * Sources, in order (the first one that yields a usable value wins):
 *
 * 1. `retry-after-ms`: milliseconds, fractions allowed (OpenAI, Azure OpenAI).
 * 2. `retry-after`: delta-seconds, fractions allowed, or an HTTP-date; a date is measured from `now` and a date
 *    in the past means "now" (zero), never a negative wait.
 * 3. rate-limit reset headers: `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` as Go durations
 *    (`6m0s`, `1.5s`, `250ms`, `2m59.56s`) and `anthropic-ratelimit-*-reset` as RFC 3339 instants. When a
 *    matching `*-remaining` header says `0`, only the exhausted limits count; the longest of them is the wait.
 *
 * Values that are negative or not numbers in the header's grammar (`"10abc"` is not 10) are ignored and the
 * next source is tried. Zero is a real zero. A well-formed wait longer than {@link maxDelay} is kept as it is
 * (a number too large for a double becomes the largest one): dropping it would make a policy retry at its fast
 * backoff exactly when the server asks for the longest pause, while kept it is above any policy's
 * `maxRetryAfter`, so retrying stops. Header names are case-insensitive. Parsing is pure: the caller passes
 * `now` (epoch milliseconds) and nothing reads a clock.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Option } from "effect"
import * as internal from "./internal/retryHeaders.js"

/**
 * Headers as callers hold them: a plain record (case of names does not matter, array values use their first
 * element) or a web `Headers`-like object with `forEach`.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersInput = internal.HeadersInput

/**
 * One day: a wait no sensible retry policy honours. A header asking for longer is still read, as the wait it
 * names, so that a policy's `maxRetryAfter` stops retrying; it is never ignored (ignoring it would let the
 * policy fall back to its fast backoff and retry harder the longer the server asks it to stay away).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDelay: Duration.Duration = Duration.days(1)

/**
 * A parsed wait, kept however long it is. A value too large for a double (hundreds of digits) is still a valid
 * request to wait, so it becomes the largest finite wait (which stays a number through JSON); anything that is
 * not a non-negative number is dropped.
 */
const usableWait = (millis: number): Option.Option<number> =>
  Number.isNaN(millis) || millis < 0
    ? Option.none()
    : Option.some(millis === Number.POSITIVE_INFINITY ? Number.MAX_VALUE : millis)

const untilInstant = (instant: number, now: number): number => Math.max(0, instant - now)

const fromRetryAfterMs = (headers: Readonly<Record<string, string>>): Option.Option<number> =>
  Option.fromNullable(headers["retry-after-ms"]).pipe(
    Option.flatMap((value) => internal.parseDecimal(value, "millis")),
    Option.flatMap(usableWait)
  )

const fromRetryAfter = (headers: Readonly<Record<string, string>>, now: Option.Option<number>) =>
  Option.fromNullable(headers["retry-after"]).pipe(
    Option.flatMap((value) =>
      internal
        .parseDecimal(value, "seconds")
        .pipe(
          Option.orElse(() =>
            Option.flatMap(now, (at) => Option.map(internal.parseHttpDate(value), (date) => untilInstant(date, at)))
          )
        )
    ),
    Option.flatMap(usableWait)
  )

const OPENAI_RESET = /^x-ratelimit-reset-(requests|tokens)$/
const ANTHROPIC_RESET = /^anthropic-ratelimit-([a-z-]+)-reset$/

interface ResetCandidate {
  readonly millis: number
  readonly exhausted: boolean
}

const isExhausted = (headers: Readonly<Record<string, string>>, remainingHeader: string): boolean =>
  headers[remainingHeader]?.trim() === "0"

const fromResetHeaders = (
  headers: Readonly<Record<string, string>>,
  now: Option.Option<number>
): Option.Option<number> => {
  const candidates: Array<ResetCandidate> = []
  for (const [name, value] of Object.entries(headers)) {
    const openai = OPENAI_RESET.exec(name)
    if (openai !== null) {
      Option.map(Option.flatMap(internal.parseGoDuration(value), usableWait), (millis) =>
        candidates.push({ millis, exhausted: isExhausted(headers, `x-ratelimit-remaining-${openai[1]}`) })
      )
      continue
    }
    const anthropic = ANTHROPIC_RESET.exec(name)
    if (anthropic !== null && Option.isSome(now)) {
      Option.map(
        Option.flatMap(internal.parseRfc3339(value), (instant) => usableWait(untilInstant(instant, now.value))),
        (millis) =>
          candidates.push({ millis, exhausted: isExhausted(headers, `anthropic-ratelimit-${anthropic[1]}-remaining`) })
      )
    }
  }
  const exhausted = candidates.filter((candidate) => candidate.exhausted)
  const relevant = exhausted.length > 0 ? exhausted : candidates
  return relevant.length === 0 ? Option.none() : Option.some(Math.max(...relevant.map((c) => c.millis)))
}

/**
 * The same as {@link parse}, with `now` optional: without it, the sources that name an instant (an HTTP-date
 * `retry-after`, Anthropic reset instants) are skipped, since there is nothing honest to measure them from.
 * `resetHeaders: false` skips the rate-limit reset headers: providers send them on every response, and on
 * anything but a 429 they describe a quota, not a request to wait.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseOption = (
  headers: HeadersInput | undefined,
  now: Option.Option<number>,
  options?: { readonly resetHeaders?: boolean | undefined }
): Option.Option<Duration.Duration> => {
  const normalized = internal.normalize(headers)
  const fromHeaders = fromRetryAfterMs(normalized).pipe(Option.orElse(() => fromRetryAfter(normalized, now)))
  const withResets =
    options?.resetHeaders === false ? fromHeaders : Option.orElse(fromHeaders, () => fromResetHeaders(normalized, now))
  return Option.map(withResets, Duration.millis)
}

/**
 * How long the headers ask the client to wait, measured from `now` (epoch milliseconds).
 *
 * @since 0.1.0
 * @category parsing
 * @example
 * ```ts
 * import { Duration, Option } from "effect"
 * import * as RetryAfter from "effect-idempotency/RetryAfter"
 *
 * const now = Date.UTC(2026, 0, 1, 12, 0, 0)
 * RetryAfter.parse({ "Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT" }, now) // Option.some(30 seconds)
 * RetryAfter.parse({ "x-ratelimit-reset-requests": "6m0s" }, now).pipe(Option.map(Duration.toSeconds)) // 360
 * RetryAfter.parse({ "retry-after": "soon" }, now) // Option.none()
 * ```
 */
export const parse = (headers: HeadersInput | undefined, now: number): Option.Option<Duration.Duration> =>
  parseOption(headers, Option.some(now))

/**
 * {@link parse} with `now` read from Effect's `Clock`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEffect = (headers: HeadersInput | undefined): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.map(Clock.currentTimeMillis, (now) => parse(headers, now))

/**
 * Reads an HTTP-date (IMF-fixdate, RFC 850 or asctime form) as epoch milliseconds; used for a response's
 * `date` header.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseHttpDate: (text: string) => Option.Option<number> = internal.parseHttpDate
