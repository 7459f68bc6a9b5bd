/**
 * Header reading and the value grammars behind `RetryAfter.parse`: HTTP-dates, Go durations and RFC 3339
 * instants, each parsed strictly (a value that does not match its grammar in full is not a value).
 *
 * @internal
 */
import { Option } from "effect"

/**
 * Headers as callers hold them: a plain record (Node's `IncomingHttpHeaders`, @effect/platform `Headers`, a
 * literal) or anything with `forEach` like the web `Headers` class.
 *
 * @internal
 */
export type HeadersInput =
  | { readonly [name: string]: string | ReadonlyArray<string> | number | undefined | null }
  | { readonly forEach: (callback: (value: string, name: string) => void) => void }

/** @internal */
export const normalize = (input: HeadersInput | undefined | null): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {}
  if (input === undefined || input === null) {
    return out
  }
  if (typeof (input as { forEach?: unknown }).forEach === "function" && !Array.isArray(input)) {
    ;(input as { forEach: (callback: (value: string, name: string) => void) => void }).forEach((value, name) => {
      out[name.toLowerCase()] = String(value)
    })
    return out
  }
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined || value === null) {
      continue
    }
    const first = Array.isArray(value) ? value[0] : value
    if (first !== undefined) {
      out[name.toLowerCase()] = String(first)
    }
  }
  return out
}

const NANOS_PER_MILLI = 1_000_000n

const unitNanos: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n
}

/**
 * A decimal string times a unit, in whole nanoseconds, computed exactly (so `2m59.56s` is 179 560 ms and not
 * 179 560.00000000001 ms). Digits below a nanosecond are dropped.
 */
const decimalNanos = (integer: string, fraction: string, unit: bigint): bigint => {
  const scale = 10n ** BigInt(fraction.length)
  const whole = BigInt(integer === "" ? "0" : integer) * scale + BigInt(fraction === "" ? "0" : fraction)
  return (whole * unit) / scale
}

/** @internal */
export const nanosToMillis = (nanos: bigint): number =>
  Number(nanos / NANOS_PER_MILLI) + Number(nanos % NANOS_PER_MILLI) / 1e6

const DECIMAL = /^(\d+)(?:\.(\d+))?$/

/**
 * A non-negative decimal number of `unit` (`"10"`, `"1.5"`), in milliseconds. Signs, exponents, hex and
 * trailing text are not numbers here.
 *
 * @internal
 */
export const parseDecimal = (text: string, unit: "seconds" | "millis"): Option.Option<number> => {
  const match = DECIMAL.exec(text.trim())
  if (match === null) {
    return Option.none()
  }
  const nanos = decimalNanos(match[1]!, match[2] ?? "", unit === "seconds" ? unitNanos.s! : unitNanos.ms!)
  return Option.some(nanosToMillis(nanos))
}

const GO_COMPONENT = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/y

/**
 * A Go `time.Duration` string as OpenAI sends in `x-ratelimit-reset-*`: `6m0s`, `1.5s`, `250ms`, `1h2m3s`,
 * or a bare `0`. The whole string must parse; a sign makes it invalid here (a reset is never negative).
 *
 * @internal
 */
export const parseGoDuration = (input: string): Option.Option<number> => {
  const text = input.trim()
  if (text === "0") {
    return Option.some(0)
  }
  if (text === "") {
    return Option.none()
  }
  let total = 0n
  let index = 0
  while (index < text.length) {
    GO_COMPONENT.lastIndex = index
    const match = GO_COMPONENT.exec(text)
    if (match === null || match.index !== index) {
      return Option.none()
    }
    const integer = match[1] ?? ""
    const fraction = match[2] ?? ""
    if (integer === "" && fraction === "") {
      return Option.none()
    }
    total += decimalNanos(integer, fraction, unitNanos[match[3]!]!)
    index = GO_COMPONENT.lastIndex
  }
  return Option.some(nanosToMillis(total))
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

const utc = (year: number, month: number, day: number, hour: number, minute: number, second: number) => {
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return Option.none<number>()
  }
  const millis = Date.UTC(year, month, day, hour, minute, Math.min(second, 59))
  const check = new Date(millis)
  return check.getUTCDate() === day ? Option.some(millis) : Option.none<number>()
}

const IMF_FIXDATE = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const RFC_850 = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const ASCTIME = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/**
 * An HTTP-date (RFC 9110 §5.6.7) in any of its three forms, as epoch milliseconds.
 *
 * @internal
 */
export const parseHttpDate = (input: string): Option.Option<number> => {
  const text = input.trim()
  let match = IMF_FIXDATE.exec(text)
  if (match !== null) {
    const [, day, month, year, hour, minute, second] = match
    return utc(
      Number(year),
      MONTHS.indexOf(month!.toLowerCase()),
      Number(day),
      Number(hour),
      Number(minute),
      Number(second)
    )
  }
  match = RFC_850.exec(text)
  if (match !== null) {
    const [, day, month, year2, hour, minute, second] = match
    // A fixed pivot (00-69 → 20xx, 70-99 → 19xx) instead of RFC 9110's rolling 50-year window keeps this pure;
    // the two agree until 2070, and the RFC 850 form is obsolete anyway.
    const yy = Number(year2)
    const year = yy < 70 ? 2000 + yy : 1900 + yy
    return utc(year, MONTHS.indexOf(month!.toLowerCase()), Number(day), Number(hour), Number(minute), Number(second))
  }
  match = ASCTIME.exec(text)
  if (match !== null) {
    const [, month, day, hour, minute, second, year] = match
    return utc(
      Number(year),
      MONTHS.indexOf(month!.toLowerCase()),
      Number(day!.trim()),
      Number(hour),
      Number(minute),
      Number(second)
    )
  }
  return Option.none()
}

const RFC_3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

/**
 * An RFC 3339 timestamp with an explicit offset (`2026-09-11T06:27:29Z`, `...+02:00`), as epoch milliseconds.
 *
 * @internal
 */
export const parseRfc3339 = (input: string): Option.Option<number> => {
  const match = RFC_3339.exec(input.trim())
  if (match === null) {
    return Option.none()
  }
  const [, year, month, day, hour, minute, second, fraction, zulu, sign, offsetHour, offsetMinute] = match
  const base = utc(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second))
  if (Option.isNone(base) || Number(month) > 12) {
    return Option.none()
  }
  const millis = base.value + (fraction === undefined ? 0 : Number(`0.${fraction}`) * 1000)
  if (zulu !== undefined) {
    return Option.some(millis)
  }
  if (Number(offsetHour) > 23 || Number(offsetMinute) > 59) {
    return Option.none()
  }
  const offset = (Number(offsetHour) * 60 + Number(offsetMinute)) * 60_000
  return Option.some(sign === "+" ? millis - offset : millis + offset)
}
