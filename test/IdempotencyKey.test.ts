import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as IdempotencyKey from "../src/IdempotencyKey.js"

const reasonOf = (...parts: ReadonlyArray<string>) =>
  Either.match(IdempotencyKey.makeEither(...parts), { onLeft: (error) => error.reason, onRight: () => "Valid" })

describe("IdempotencyKey", () => {
  it("joins business parts with the separator", () => {
    assert.strictEqual(IdempotencyKey.make("chatmsg", "conv_782", "msg_991"), "chatmsg:conv_782:msg_991")
    assert.strictEqual(IdempotencyKey.make("order-42"), "order-42")
  })

  it("rejects each kind of bad input with its reason", () => {
    assert.strictEqual(reasonOf(), "Empty")
    assert.strictEqual(reasonOf("chatmsg", ""), "EmptyPart")
    assert.strictEqual(reasonOf("chatmsg", "conv:782"), "Separator")
    assert.strictEqual(reasonOf("chatmsg", "conv\n782"), "ControlCharacter")
    assert.strictEqual(reasonOf("chatmsg", "a\u0000"), "ControlCharacter")
    assert.strictEqual(reasonOf("chatmsg", "a\u007f"), "ControlCharacter")
    assert.strictEqual(reasonOf("chatmsg", "a\u009f"), "ControlCharacter")
    assert.strictEqual(reasonOf("x".repeat(256)), "TooLong")
    assert.strictEqual(reasonOf("x".repeat(127), "y".repeat(127)), "Valid")
    assert.strictEqual(reasonOf("x".repeat(128), "y".repeat(127)), "TooLong")
    assert.strictEqual(reasonOf("café", "日本"), "Valid")
  })

  it("make throws the typed error, with a message that says what to do", () => {
    try {
      IdempotencyKey.make("chatmsg", "")
      assert.fail("make accepted an empty part")
    } catch (error) {
      assert.instanceOf(error, IdempotencyKey.InvalidIdempotencyKey)
      assert.strictEqual(error._tag, "InvalidIdempotencyKey")
      assert.strictEqual(error.key, "chatmsg:")
      assert.strictEqual(
        error.message,
        'The idempotency key "chatmsg:" has an empty part: pass a non-empty value for every part.'
      )
    }
  })

  it.effect("makeEffect fails in the error channel", () =>
    Effect.gen(function* () {
      const key = yield* IdempotencyKey.makeEffect("a", "b")
      assert.strictEqual(key, "a:b")

      const error = yield* Effect.flip(IdempotencyKey.makeEffect("a:b"))
      assert.deepStrictEqual([error._tag, error.reason, error.key], ["InvalidIdempotencyKey", "Separator", "a:b"])
    })
  )

  it.effect("validate accepts whole keys with separators but no empty segment", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* IdempotencyKey.validate("chatmsg:conv_782:msg_991"), "chatmsg:conv_782:msg_991")

      const reasons = yield* Effect.forEach(["", "a::b", ":a", "a:", "a\tb", "k".repeat(256)], (key) =>
        Effect.flip(IdempotencyKey.validate(key)).pipe(Effect.map((error) => error.reason))
      )
      assert.deepStrictEqual(reasons, ["Empty", "EmptyPart", "EmptyPart", "EmptyPart", "ControlCharacter", "TooLong"])
    })
  )

  it("the Schema decodes valid keys and rejects invalid ones", () => {
    const decode = Schema.decodeUnknownEither(IdempotencyKey.IdempotencyKey)
    assert.strictEqual(Either.getOrThrow(decode("order:42")), "order:42")
    assert.isTrue(Either.isLeft(decode("order::42")))
    assert.isTrue(Either.isLeft(decode(42)))
    assert.isTrue(Either.isLeft(decode("k".repeat(256))))
  })

  it("the length limit is 255 and the separator is a colon", () => {
    assert.strictEqual(IdempotencyKey.maxLength, 255)
    assert.strictEqual(IdempotencyKey.separator, ":")
  })
})
