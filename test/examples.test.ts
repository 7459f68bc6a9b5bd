import { describe, it } from "@effect/vitest"
import { deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import { Effect, Either } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Quickstart from "../examples/quickstart.js"
import * as Provider from "../src/simulation/Provider.js"

const request = {
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content: "Summarise our refund policy in one sentence." }]
}

describe("examples/quickstart", () => {
  it.live("answers once through a 500, replays the repeat and rejects a changed payload", () =>
    Effect.gen(function* () {
      const provider = yield* Provider.make({ faultRate: 0, faultPlan: ["500", "none"] })
      const database = join(mkdtempSync(join(tmpdir(), "quickstart-")), "app.db")
      const run = <A, E>(effect: Effect.Effect<A, E, Effect.Effect.Context<ReturnType<typeof Quickstart.answer>>>) =>
        effect.pipe(Effect.provide(Quickstart.layer({ baseUrl: provider.baseUrl, database })))

      const first = yield* run(Quickstart.answer("conv_782", "msg_991", request))
      const repeat = yield* run(Quickstart.answer("conv_782", "msg_991", request))
      const drifted = yield* run(
        Quickstart.answer("conv_782", "msg_991", { ...request, temperature: 0.3 }).pipe(Effect.either)
      )

      strictEqual(repeat.id, first.id)
      deepStrictEqual((yield* provider.ledger).length, 1)
      deepStrictEqual(
        (yield* provider.requests).map((r) => r.outcome),
        ["500", "executed"]
      )
      strictEqual(Either.isLeft(drifted) ? drifted.left._tag : "succeeded", "PayloadMismatch")
    }).pipe(Effect.scoped)
  )
})
