import { describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Duration, Effect, Option, TestClock } from "effect"
import * as RetryAfter from "../src/RetryAfter.js"

/** 2026-09-11T12:00:00Z, a Friday. */
const now = Date.UTC(2026, 8, 11, 12, 0, 0)

const millis = (headers: RetryAfter.HeadersInput, at: number = now) =>
  Option.getOrNull(Option.map(RetryAfter.parse(headers, at), Duration.toMillis))

describe("RetryAfter.parse", () => {
  it("reads every source and format, and ignores what does not parse", () => {
    const table: ReadonlyArray<readonly [string, Record<string, string>, number | null]> = [
      ["no headers", {}, null],
      ["retry-after-ms", { "retry-after-ms": "1500" }, 1500],
      ["retry-after-ms fraction", { "retry-after-ms": "0.5" }, 0.5],
      ["retry-after-ms zero", { "retry-after-ms": "0" }, 0],
      ["retry-after-ms negative", { "retry-after-ms": "-5" }, null],
      ["retry-after seconds", { "retry-after": "10" }, 10_000],
      ["retry-after fraction", { "retry-after": "1.5" }, 1500],
      ["retry-after zero", { "retry-after": "0" }, 0],
      ["retry-after padded", { "retry-after": "  7 " }, 7000],
      ["retry-after exactly the bound", { "retry-after": "86400" }, 86_400_000],
      ["retry-after bound + 1", { "retry-after": "86401" }, 86_401_000],
      ["retry-after two days", { "retry-after": "172800" }, 172_800_000],
      ["retry-after too large for a double", { "retry-after": "9".repeat(400) }, Number.MAX_VALUE],
      ["retry-after negative", { "retry-after": "-1" }, null],
      ["retry-after leading digits", { "retry-after": "10abc" }, null],
      ["retry-after exponent", { "retry-after": "1e3" }, null],
      ["retry-after garbage", { "retry-after": "soon" }, null],
      ["retry-after empty", { "retry-after": "" }, null],
      ["http-date in 30 s", { "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT" }, 30_000],
      ["http-date in the past", { "retry-after": "Fri, 11 Sep 2026 11:59:00 GMT" }, 0],
      ["http-date far past", { "retry-after": "Sun, 06 Nov 1994 08:49:37 GMT" }, 0],
      ["http-date RFC 850", { "retry-after": "Friday, 11-Sep-26 12:01:00 GMT" }, 60_000],
      ["http-date asctime", { "retry-after": "Fri Sep 11 12:00:05 2026" }, 5000],
      ["http-date exactly a day", { "retry-after": "Sat, 12 Sep 2026 12:00:00 GMT" }, 86_400_000],
      ["http-date a day and a second", { "retry-after": "Sat, 12 Sep 2026 12:00:01 GMT" }, 86_401_000],
      ["http-date two days", { "retry-after": "Sun, 13 Sep 2026 12:00:00 GMT" }, 172_800_000],
      ["http-date impossible day", { "retry-after": "Wed, 31 Feb 2026 12:00:00 GMT" }, null],
      ["http-date not GMT", { "retry-after": "Fri, 11 Sep 2026 12:00:30 PST" }, null],
      ["reset 6m0s", { "x-ratelimit-reset-requests": "6m0s" }, 360_000],
      ["reset 60s", { "x-ratelimit-reset-requests": "60s" }, 60_000],
      ["reset 500ms", { "x-ratelimit-reset-requests": "500ms" }, 500],
      ["reset 2m59.56s", { "x-ratelimit-reset-requests": "2m59.56s" }, 179_560],
      ["reset 1.5s", { "x-ratelimit-reset-tokens": "1.5s" }, 1500],
      ["reset 1h2m3s", { "x-ratelimit-reset-tokens": "1h2m3s" }, 3_723_000],
      ["reset 24h", { "x-ratelimit-reset-tokens": "24h" }, 86_400_000],
      ["reset 24h0m1s", { "x-ratelimit-reset-tokens": "24h0m1s" }, 86_401_000],
      ["reset 25h", { "x-ratelimit-reset-requests": "25h" }, 90_000_000],
      ["reset 0", { "x-ratelimit-reset-tokens": "0" }, 0],
      ["reset 0s", { "x-ratelimit-reset-tokens": "0s" }, 0],
      ["reset 20us", { "x-ratelimit-reset-tokens": "20us" }, 0.02],
      ["reset trailing garbage", { "x-ratelimit-reset-requests": "6m0sx" }, null],
      ["reset leading digits only", { "x-ratelimit-reset-requests": "6m0" }, null],
      ["reset unitless", { "x-ratelimit-reset-requests": "360" }, null],
      ["reset negative", { "x-ratelimit-reset-requests": "-1s" }, null],
      ["reset bare dot", { "x-ratelimit-reset-requests": ".s" }, null],
      ["anthropic instant", { "anthropic-ratelimit-requests-reset": "2026-09-11T12:00:45Z" }, 45_000],
      ["anthropic instant offset", { "anthropic-ratelimit-tokens-reset": "2026-09-11T14:00:45+02:00" }, 45_000],
      ["anthropic instant fraction", { "anthropic-ratelimit-tokens-reset": "2026-09-11T12:00:01.250Z" }, 1250],
      ["anthropic instant past", { "anthropic-ratelimit-requests-reset": "2026-09-11T11:00:00Z" }, 0],
      ["anthropic instant in two days", { "anthropic-ratelimit-requests-reset": "2026-09-13T12:00:00Z" }, 172_800_000],
      ["anthropic instant year only", { "anthropic-ratelimit-requests-reset": "2026" }, null],
      ["anthropic instant no offset", { "anthropic-ratelimit-requests-reset": "2026-09-11T12:00:45" }, null],
      ["anthropic instant month 13", { "anthropic-ratelimit-requests-reset": "2026-13-11T12:00:45Z" }, null]
    ]
    const actual = table.map(([name, headers]) => [name, headers, millis(headers)] as const)
    deepStrictEqual(actual, table)
  })

  it("http-date case: 30 s ahead waits 30 s, a past date waits zero", () => {
    const noon = Date.UTC(2026, 0, 1, 12, 0, 0)
    strictEqual(millis({ "Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT" }, noon), 30_000)
    strictEqual(millis({ "Retry-After": "Thu, 01 Jan 2026 11:59:30 GMT" }, noon), 0)
  })

  it("reset-instant case: the time until the instant, not 2026 seconds", () => {
    const at = Date.UTC(2026, 8, 11, 6, 27, 0)
    strictEqual(millis({ "anthropic-ratelimit-requests-reset": "2026-09-11T06:27:29Z" }, at), 29_000)
  })

  it("takes the sources in order: retry-after-ms, retry-after, reset headers", () => {
    const all = { "retry-after-ms": "250", "retry-after": "3", "x-ratelimit-reset-requests": "9s" }
    strictEqual(millis(all), 250)
    strictEqual(millis({ ...all, "retry-after-ms": "garbage" }), 3000)
    strictEqual(millis({ ...all, "retry-after-ms": "garbage", "retry-after": "-3" }), 9000)
  })

  it("among reset headers, waits for the exhausted limit, else the longest", () => {
    const resets = { "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" }
    strictEqual(millis({ ...resets, "x-ratelimit-remaining-requests": "0" }), 1000)
    strictEqual(millis({ ...resets, "x-ratelimit-remaining-tokens": "0" }), 360_000)
    strictEqual(millis(resets), 360_000)
    const anthropic = {
      "anthropic-ratelimit-requests-reset": "2026-09-11T12:00:02Z",
      "anthropic-ratelimit-requests-remaining": "0",
      "anthropic-ratelimit-output-tokens-reset": "2026-09-11T12:01:00Z",
      "anthropic-ratelimit-output-tokens-remaining": "1200"
    }
    strictEqual(millis(anthropic), 2000)
  })

  it("reads header names in any case, web Headers and array values", () => {
    strictEqual(millis({ "RETRY-AFTER-MS": "42" }), 42)
    strictEqual(millis(new Headers({ "Retry-After": "2" })), 2000)
    strictEqual(millis({ "retry-after": ["4", "5"] }), 4000)
  })

  it("without `now`, skips date-valued sources and still reads relative ones", () => {
    const headers = { "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT", "x-ratelimit-reset-tokens": "2s" }
    deepStrictEqual(Option.map(RetryAfter.parseOption(headers, Option.none()), Duration.toMillis), Option.some(2000))
  })

  it.effect("parseEffect measures from the Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(now)

      const wait = yield* RetryAfter.parseEffect({ "retry-after": "Fri, 11 Sep 2026 12:00:30 GMT" })

      deepStrictEqual(Option.map(wait, Duration.toMillis), Option.some(30_000))
    })
  )
})
