/**
 * Schemas for the OpenAI-compatible chat completion API: the request body a client sends to
 * `POST /v1/chat/completions` and the non-streamed response it gets back.
 *
 * The schemas check the fields this library relies on and keep every other field as it is (tools,
 * response_format, logprobs, provider extensions), so a request or a response survives a round trip through
 * an idempotency store unchanged.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const Extra = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * Who wrote a message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Role = Schema.Literal("system", "developer", "user", "assistant", "tool", "function")

/**
 * @since 0.1.0
 * @category models
 */
export type Role = typeof Role.Type

/**
 * One part of a multi-part message (`{ type: "text", text }`, `{ type: "image_url", image_url }`, ...).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ContentPart = Schema.Struct({ type: Schema.String }, Extra).annotations({ identifier: "ContentPart" })

/**
 * @since 0.1.0
 * @category models
 */
export type ContentPart = typeof ContentPart.Type

/**
 * One message of a conversation. `content` is text, a list of parts, or `null` (an assistant message that
 * only carries tool calls).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatMessage = Schema.Struct(
  {
    role: Role,
    content: Schema.NullOr(Schema.Union(Schema.String, Schema.Array(ContentPart))),
    name: Schema.optional(Schema.String)
  },
  Extra
).annotations({ identifier: "ChatMessage" })

/**
 * @since 0.1.0
 * @category models
 */
export type ChatMessage = typeof ChatMessage.Type

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/**
 * The body of a chat completion request. `model` and a non-empty `messages` list are required; the common
 * sampling options are checked when present; any other field is kept as given.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { ChatCompletion } from "effect-idempotency"
 *
 * const request = Schema.decodeUnknownSync(ChatCompletion.ChatCompletionRequest)({
 *   model: "gpt-4o-mini",
 *   messages: [{ role: "user", content: "Summarise my order" }],
 *   temperature: 0.2
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionRequest = Schema.Struct(
  {
    model: Schema.String.pipe(Schema.minLength(1)),
    messages: Schema.Array(ChatMessage).pipe(
      Schema.minItems(1, { message: () => "messages must hold at least one message" })
    ),
    temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
    top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
    n: Schema.optional(Schema.Int.pipe(Schema.positive())),
    max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
    max_completion_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
    stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String)))),
    presence_penalty: Schema.optional(Schema.Number.pipe(Schema.between(-2, 2))),
    frequency_penalty: Schema.optional(Schema.Number.pipe(Schema.between(-2, 2))),
    seed: Schema.optional(Schema.Int),
    stream: Schema.optional(Schema.Boolean),
    user: Schema.optional(Schema.String),
    metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
  },
  Extra
).annotations({ identifier: "ChatCompletionRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionRequest = typeof ChatCompletionRequest.Type

/**
 * The message a model answered with.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AssistantMessage = Schema.Struct(
  {
    role: Schema.String,
    content: Schema.NullOr(Schema.String)
  },
  Extra
).annotations({ identifier: "AssistantMessage" })

/**
 * @since 0.1.0
 * @category models
 */
export type AssistantMessage = typeof AssistantMessage.Type

/**
 * One candidate answer. `finish_reason` is `"stop"`, `"length"`, `"tool_calls"`, `"content_filter"` or a
 * provider's own value.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Choice = Schema.Struct(
  {
    index: NonNegativeInt,
    message: AssistantMessage,
    finish_reason: Schema.NullOr(Schema.String)
  },
  Extra
).annotations({ identifier: "Choice" })

/**
 * @since 0.1.0
 * @category models
 */
export type Choice = typeof Choice.Type

/**
 * Token counts the provider bills for.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.Struct(
  {
    prompt_tokens: NonNegativeInt,
    completion_tokens: NonNegativeInt,
    total_tokens: NonNegativeInt
  },
  Extra
).annotations({ identifier: "Usage" })

/**
 * @since 0.1.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * A non-streamed chat completion response. `id` identifies one execution of the model: two different ids for
 * one business action mean the model ran (and was billed) twice.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { ChatCompletion } from "effect-idempotency"
 *
 * const completion = Schema.decodeUnknownSync(ChatCompletion.ChatCompletion)({
 *   id: "chatcmpl-1",
 *   object: "chat.completion",
 *   created: 1767225600,
 *   model: "gpt-4o-mini",
 *   choices: [{ index: 0, message: { role: "assistant", content: "Done." }, finish_reason: "stop" }],
 *   usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletion = Schema.Struct(
  {
    id: Schema.String,
    object: Schema.String,
    created: Schema.Number,
    model: Schema.String,
    choices: Schema.Array(Choice),
    usage: Schema.optional(Usage)
  },
  Extra
).annotations({ identifier: "ChatCompletion" })

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletion = typeof ChatCompletion.Type
