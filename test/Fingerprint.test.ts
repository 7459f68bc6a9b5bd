import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect } from "effect"
import * as fc from "fast-check"
import * as Fingerprint from "../src/Fingerprint.js"

const failureOf = (value: unknown) => {
  try {
    Fingerprint.canonicalize(value)
  } catch (error) {
    if (error instanceof Fingerprint.UnserializableRequest) return { path: error.path, reason: error.reason }
    throw error
  }
  return assert.fail("the value was accepted")
}

/** Rebuilds every object with its keys in an order decided by `seed`: same data, other key order. */
const permuteKeys = (value: unknown, seed: number): unknown => {
  if (Array.isArray(value)) return value.map((item) => permuteKeys(item, seed))
  if (value === null || typeof value !== "object") return value
  const rank = (key: string) => [...key].reduce((acc, char) => (acc * 31 + char.charCodeAt(0) + seed) | 0, seed)
  const entries = Object.entries(value).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? 1 : -1))
  return Object.fromEntries(entries.map(([key, item]) => [key, permuteKeys(item, seed)]))
}

describe("Fingerprint", () => {
  it("key-order: a reordered object is the same request", () => {
    const first = JSON.parse(`{"name":"A","addr":{"street":"S","no":1}}`)
    const retry = JSON.parse(`{"addr":{"no":1,"street":"S"},"name":"A"}`)
    strictEqual(Fingerprint.canonicalize(first), `{"addr":{"no":1,"street":"S"},"name":"A"}`)
    strictEqual(Fingerprint.hash(first), "e709b8e568b4af05473a993fdaaf844051b07e9c1d8574e75a6e460a1f1bb6cf")
    strictEqual(Fingerprint.hash(retry), "e709b8e568b4af05473a993fdaaf844051b07e9c1d8574e75a6e460a1f1bb6cf")
  })

  it("key-order: a changed type, a reordered array or another value is another request", () => {
    assert.notStrictEqual(Fingerprint.hash({ no: 1 }), Fingerprint.hash({ no: "1" }))
    assert.notStrictEqual(Fingerprint.hash({ messages: ["a", "b"] }), Fingerprint.hash({ messages: ["b", "a"] }))
    assert.notStrictEqual(Fingerprint.hash({ temperature: 0.2 }), Fingerprint.hash({ temperature: 0.3 }))
    assert.notStrictEqual(Fingerprint.hash({ n: 1n }), Fingerprint.hash({ n: 1 }))
    assert.notStrictEqual(Fingerprint.hash({ n: 1n }), Fingerprint.hash({ n: "1" }))
    assert.notStrictEqual(Fingerprint.hash(null), Fingerprint.hash({}))
  })

  it("writes canonical JSON: sorted keys, no whitespace, undefined fields left out, toJSON honoured", () => {
    const value = {
      z: [1, undefined, "two"],
      a: { skipped: undefined, when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) },
      big: 12345678901234567890n,
      "odd key": true
    }
    strictEqual(
      Fingerprint.canonicalize(value),
      `{"a":{"when":"2026-01-02T03:04:05.000Z"},"big":12345678901234567890n,"odd key":true,"z":[1,null,"two"]}`
    )
  })

  it("sorts keys by code point, not by UTF-16 unit", () => {
    strictEqual(Fingerprint.canonicalize({ "\u{1F600}": 1, "\uFF01": 2 }), `{"！":2,"😀":1}`)
  })

  it("accepts a shared (non-cyclic) reference twice", () => {
    const shared = { x: 1 }
    strictEqual(Fingerprint.canonicalize({ a: shared, b: shared }), `{"a":{"x":1},"b":{"x":1}}`)
  })

  it("rejects what is not data, naming where it is", () => {
    const cyclic: Record<string, unknown> = { model: "m" }
    cyclic["self"] = cyclic
    deepStrictEqual(failureOf({ messages: [{ role: "user", content: () => "hi" }] }), {
      path: "$.messages[0].content",
      reason: "a function is not data"
    })
    deepStrictEqual(failureOf({ tag: Symbol("x") }), { path: "$.tag", reason: "a symbol is not data" })
    deepStrictEqual(failureOf(cyclic), { path: "$.self", reason: "the value refers back to itself (a cycle)" })
    deepStrictEqual(failureOf({ temperature: NaN }), {
      path: "$.temperature",
      reason: "the number NaN has no JSON form"
    })
    deepStrictEqual(failureOf({ "max tokens": [Infinity] }), {
      path: `$["max tokens"][0]`,
      reason: "the number Infinity has no JSON form"
    })
    deepStrictEqual(failureOf({ headers: new Map() }), {
      path: "$.headers",
      reason: "a Map has no JSON form; convert it to a plain object"
    })
  })

  it("UnserializableRequest tells the reader where and what to do", () => {
    const error = new Fingerprint.UnserializableRequest({
      path: "$.messages[0].content",
      reason: "a function is not data"
    })
    strictEqual(
      error.message,
      "The request cannot be fingerprinted: at $.messages[0].content, a function is not data. " +
        "Pass plain JSON data, or give a fingerprint option that picks the identifying part."
    )
  })

  it.effect("hashEffect fails in the error channel", () =>
    Effect.gen(function* () {
      strictEqual(
        yield* Fingerprint.hashEffect(JSON.parse(`{"name":"A","addr":{"street":"S","no":1}}`)),
        "e709b8e568b4af05473a993fdaaf844051b07e9c1d8574e75a6e460a1f1bb6cf"
      )

      const error = yield* Effect.flip(Fingerprint.hashEffect({ f: () => 1 }))
      deepStrictEqual([error._tag, error.path], ["UnserializableRequest", "$.f"])
    })
  )

  it("property: the hash does not depend on key order", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        strictEqual(Fingerprint.hash(permuteKeys(value, seed)), Fingerprint.hash(value))
      }),
      { numRuns: 300 }
    )
  })

  it("property: canonical JSON of JSON data parses back to equal data", () => {
    fc.assert(
      fc.property(fc.jsonValue({ noUnicodeString: false }), (value) => {
        deepStrictEqual(JSON.parse(Fingerprint.canonicalize(value)), JSON.parse(JSON.stringify(value)))
      }),
      { numRuns: 300 }
    )
  })
})

describe("Fingerprint on hostile values", () => {
  it("reports nesting too deep for the stack as UnserializableRequest", () => {
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = { d: deep }

    deepStrictEqual(failureOf(deep), { path: "$", reason: "the value is nested too deeply to walk" })
  })

  it("reports a getter that throws as UnserializableRequest naming what it threw", () => {
    const request = {
      get model(): string {
        throw new Error("model not loaded")
      }
    }

    deepStrictEqual(failureOf(request), { path: "$", reason: "reading the value threw (model not loaded)" })
  })
})
