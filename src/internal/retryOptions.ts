/**
 * Reading and checking retry policy options once, when a policy is built.
 *
 * @internal
 */
import { Duration, Option } from "effect"
import type { Jitter, ResolvedBackoff } from "./retryBackoff.js"

/** @internal */
export const jitterKinds: ReadonlyArray<Jitter> = ["none", "full", "equal", "decorrelated"]

/** @internal */
export type Fail = (option: string, value: unknown, reason: string) => never

const isNegative = (input: Duration.DurationInput): boolean => {
  if (typeof input === "number") {
    return input < 0
  }
  if (typeof input === "bigint") {
    return input < 0n
  }
  if (typeof input === "string") {
    return input.trim().startsWith("-")
  }
  if (Array.isArray(input)) {
    return input.some((part) => typeof part === "number" && part < 0)
  }
  return false
}

/**
 * A duration option in milliseconds; fails on negative, NaN and unreadable input, and on infinity unless
 * `infinite` says it is allowed.
 *
 * @internal
 */
export const millisOption = (
  fail: Fail,
  option: string,
  input: Duration.DurationInput,
  infinite: "allowInfinite" | "finite"
): number => {
  if (isNegative(input)) {
    return fail(option, input, "must not be negative")
  }
  if (typeof input === "number" && Number.isNaN(input)) {
    return fail(option, input, "is not a number")
  }
  const decoded = Option.liftThrowable(Duration.decode)(input)
  if (Option.isNone(decoded)) {
    return fail(option, input, 'is not a duration (use a number of milliseconds or a string like "500 millis")')
  }
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) && infinite === "finite") {
    return fail(option, input, "must be finite")
  }
  return millis
}

/** @internal */
export interface BackoffInput {
  readonly base?: Duration.DurationInput | undefined
  readonly factor?: number | undefined
  readonly cap?: Duration.DurationInput | undefined
  readonly jitter?: Jitter | undefined
}

/** @internal */
export const defaults = {
  maxRetries: 3,
  base: Duration.millis(500),
  factor: 2,
  cap: Duration.seconds(8),
  jitter: "full" as Jitter,
  maxRetryAfter: Duration.seconds(60)
} as const

/** @internal */
export const resolveBackoff = (fail: Fail, options: BackoffInput): ResolvedBackoff => {
  const baseMillis = millisOption(fail, "base", options.base ?? defaults.base, "finite")
  const capMillis = millisOption(fail, "cap", options.cap ?? defaults.cap, "finite")
  const factor = options.factor ?? defaults.factor
  const jitter = options.jitter ?? defaults.jitter
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1) {
    return fail("factor", factor, "must be a finite number, 1 or more (1 keeps the delay constant)")
  }
  if (capMillis < baseMillis) {
    return fail("cap", options.cap ?? defaults.cap, `must be at least base (${Duration.format(baseMillis)})`)
  }
  if (!jitterKinds.includes(jitter)) {
    return fail("jitter", jitter, `must be one of ${jitterKinds.map((kind) => `"${kind}"`).join(", ")}`)
  }
  return { baseMillis, factor, capMillis, jitter }
}

/** @internal */
export const resolveMaxRetries = (fail: Fail, maxRetries: number | undefined): number => {
  const value = maxRetries ?? defaults.maxRetries
  if (typeof value !== "number" || !(value === Infinity || (Number.isInteger(value) && value >= 0))) {
    return fail("maxRetries", value, "must be a whole number, 0 or more (or Infinity)")
  }
  return value
}
