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
    strictEqual(reasonOf("café", "日本"), "Valid")
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

      const reasons = yield* Effect.forEach(["", "a::b", ":a", "a:", "a\tb", "k".repeat(256)], (key) =>
        Effect.flip(IdempotencyKey.validate(key)).pipe(Effect.map((error) => error.reason))
      )
      deepStrictEqual(reasons, ["Empty", "EmptyPart", "EmptyPart", "EmptyPart", "ControlCharacter", "TooLong"])
    })
  )

  it("the Schema decodes valid keys and rejects invalid ones", () => {
    const decode = Schema.decodeUnknownEither(IdempotencyKey.IdempotencyKey)
    strictEqual(Either.getOrThrow(decode("order:42")), "order:42")
    assertTrue(Either.isLeft(decode("order::42")))
    assertTrue(Either.isLeft(decode(42)))
    assertTrue(Either.isLeft(decode("k".repeat(256))))
  })

  it("the length limit is 255 and the separator is a colon", () => {
    strictEqual(IdempotencyKey.maxLength, 255)
    strictEqual(IdempotencyKey.separator, ":")
  })
})
