import { assert, describe, it } from "@effect/vitest"
import { assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect, Either, Schema } from "effect"
import * as IdempotencyKey from "../src/IdempotencyKey.js"

const reasonOf = (...parts: ReadonlyArray<string>) =>
  Either.match(IdempotencyKey.makeEither(...parts), { onLeft: (error) => error.reason, onRight: () => "Valid" })

describe("IdempotencyKey", () => {
  it("joins business parts with the separator", () => {
    strictEqual(IdempotencyKey.make("chatmsg", "conv_782", "msg_991"), "chatmsg:conv_782:msg_991")
    strictEqual(IdempotencyKey.make("order-42"), "order-42")
  })

  it("rejects each kind of bad input with its reason", () => {
    strictEqual(reasonOf(), "Empty")
    strictEqual(reasonOf("chatmsg", ""), "EmptyPart")
    strictEqual(reasonOf("chatmsg", "conv:782"), "Separator")
    strictEqual(reasonOf("chatmsg", "conv\n782"), "ControlCharacter")
    strictEqual(reasonOf("chatmsg", "a\u0000"), "ControlCharacter")
    strictEqual(reasonOf("chatmsg", "a\u007f"), "ControlCharacter")
    strictEqual(reasonOf("chatmsg", "a\u009f"), "ControlCharacter")
    strictEqual(reasonOf("x".repeat(256)), "TooLong")
    strictEqual(reasonOf("x".repeat(127), "y".repeat(127)), "Valid")
    strictEqual(reasonOf("x".repeat(128), "y".repeat(127)), "TooLong")
  })

  it("accepts only keys that travel unchanged in an HTTP header: printable ASCII, no space at either end", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["chatmsg", "café"], "NonAscii"],
      [["chatmsg", "конв"], "NonAscii"],
      [["chatmsg", "日本"], "NonAscii"],
      [["chatmsg", "\u{1F600}"], "NonAscii"],
      [["a\u2028b"], "NonAscii"],
      [["a\u00a0b"], "NonAscii"],
      [[" order-42 "], "Whitespace"],
      [["order-42 "], "Whitespace"],
      [[" ", "x"], "Whitespace"],
      [["order 42", "line 7"], "Valid"],
      [["a ", " b"], "Valid"],
      [["~!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}"], "Valid"],
      [["chatmsg", encodeURIComponent("конв")], "Valid"]
    ]
    deepStrictEqual(
      cases.map(([parts]) => [parts, reasonOf(...parts)]),
      cases.map(([parts, reason]) => [parts, reason])
    )
  })

  it("tells a caller with a non-ASCII or space-padded key what to do", () => {
    const nonAscii = Either.flip(IdempotencyKey.makeEither("chatmsg", "конв"))
    assert.include(Either.getOrThrow(nonAscii).message, "percent-encode such parts (encodeURIComponent) or hash them")
    const padded = Either.flip(IdempotencyKey.makeEither(" order-42 "))
    assert.include(Either.getOrThrow(padded).message, "HTTP strips from header values")
  })

  it("make throws the typed error, with a message that says what to do", () => {
    try {
      IdempotencyKey.make("chatmsg", "")
      assert.fail("make accepted an empty part")
    } catch (error) {
      assert.instanceOf(error, IdempotencyKey.InvalidIdempotencyKey)
      strictEqual(error._tag, "InvalidIdempotencyKey")
      strictEqual(error.key, "chatmsg:")
      strictEqual(
        error.message,
        'The idempotency key "chatmsg:" has an empty part: pass a non-empty value for every part.'
      )
    }
  })

  it.effect("makeEffect fails in the error channel", () =>
    Effect.gen(function* () {
      const key = yield* IdempotencyKey.makeEffect("a", "b")
      strictEqual(key, "a:b")

      const error = yield* Effect.flip(IdempotencyKey.makeEffect("a:b"))
      deepStrictEqual([error._tag, error.reason, error.key], ["InvalidIdempotencyKey", "Separator", "a:b"])
    })
  )

  it.effect("validate accepts whole keys with separators but no empty segment", () =>
    Effect.gen(function* () {
      strictEqual(yield* IdempotencyKey.validate("chatmsg:conv_782:msg_991"), "chatmsg:conv_782:msg_991")

      const reasons = yield* Effect.forEach(["", "a::b", ":a", "a:", "a\tb", "k".repeat(256), "é", " a:b"], (key) =>
        Effect.flip(IdempotencyKey.validate(key)).pipe(Effect.map((error) => error.reason))
      )
      deepStrictEqual(reasons, [
        "Empty",
        "EmptyPart",
        "EmptyPart",
        "EmptyPart",
        "ControlCharacter",
        "TooLong",
        "NonAscii",
        "Whitespace"
      ])
    })
  )

  it("the Schema decodes valid keys and rejects invalid ones", () => {
    const decode = Schema.decodeUnknownEither(IdempotencyKey.IdempotencyKey)
    strictEqual(Either.getOrThrow(decode("order:42")), "order:42")
    assertTrue(Either.isLeft(decode("order::42")))
    assertTrue(Either.isLeft(decode(42)))
    assertTrue(Either.isLeft(decode("k".repeat(256))))
    assertTrue(Either.isLeft(decode("chatmsg:конв")))
  })

  it("the length limit is 255 and the separator is a colon", () => {
    strictEqual(IdempotencyKey.maxLength, 255)
    strictEqual(IdempotencyKey.separator, ":")
  })
})
