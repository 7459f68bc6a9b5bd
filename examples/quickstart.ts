/**
 * The README's example: answer a chat message through an OpenAI-compatible API at most once, however often the
 * call is retried or the message redelivered. `test/examples.test.ts` runs it against the fake provider.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer } from "effect"
import type { ChatCompletion as Chat } from "effect-idempotency"
import { AiClient, ChatCompletion, Idempotency, IdempotencyKey, IdempotencyStore } from "effect-idempotency"

export const answer = (conversation: string, message: string, request: Chat.ChatCompletionRequest) =>
  Effect.gen(function* () {
    const key = yield* IdempotencyKey.makeEffect("chatmsg", conversation, message)

    return yield* AiClient.createChatCompletion(request, { idempotencyKey: key }).pipe(
      Idempotency.execute({ key, request, success: ChatCompletion.ChatCompletion })
    )
  })

export const layer = (options: { readonly baseUrl: string; readonly database: string }) =>
  Layer.mergeAll(
    AiClient.layer({ baseUrl: options.baseUrl, timeout: "30 seconds" }).pipe(Layer.provide(NodeHttpClient.layerUndici)),
    IdempotencyStore.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: options.database })))
  )
