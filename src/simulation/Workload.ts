/**
 * The simulation's workload: which business actions run, with which chat completion request, and which of
 * them are delivered twice.
 *
 * Redelivery models what at-least-once systems do in practice: a queue hands a message out again after a
 * visibility timeout, or a user presses "send" again after losing the connection. Some redeliveries overlap
 * the first delivery, some come after it finished. Both runners get the same deliveries in the same order.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Data, Effect, ParseResult, Schema } from "effect"
import * as ChatCompletion from "../ChatCompletion.js"
import * as IdempotencyKey from "../IdempotencyKey.js"
import { intBetween, uniform } from "./Prng.js"

/**
 * One business action: answer one chat message of one conversation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Action {
  /** `conv_<n>/msg_<n>`: what the ledger and the outputs tables group by. */
  readonly id: string
  readonly conversation: string
  readonly message: string
  /** `chatmsg:<conversation>:<message>`. */
  readonly key: IdempotencyKey.IdempotencyKey
  readonly request: ChatCompletion.ChatCompletionRequest
}

/**
 * One hand-over of an action to a runner. `"concurrent"` redeliveries are queued right behind the first
 * delivery (so they overlap it); `"later"` ones are queued after every first delivery.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  readonly action: Action
  readonly kind: "first" | "concurrent" | "later"
}

/**
 * The requests file could not be used.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestsFileError extends Data.TaggedError("RequestsFileError")<{
  readonly path: string
  readonly line: number | undefined
  readonly reason: string
}> {
  override get message(): string {
    const where = this.line === undefined ? this.path : `${this.path} line ${this.line}`
    return `--requests ${where}: ${this.reason}`
  }
}

const decodeRequest = Schema.decodeUnknownEither(ChatCompletion.ChatCompletionRequest)

const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) {
    return "not a chat completion request"
  }
  const path =
    issue.path.length === 0
      ? ""
      : `${issue.path.map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`)).join("")}: `
  return `not a chat completion request (${path}${issue.message.replace(/\s+/g, " ")})`
}

/**
 * Parses JSONL text: one chat completion request per non-blank line. Fails on the first bad line, naming it
 * (lines count from 1).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseRequests = (
  text: string,
  path: string
): Effect.Effect<ReadonlyArray<ChatCompletion.ChatCompletionRequest>, RequestsFileError> =>
  Effect.gen(function* () {
    const requests: Array<ChatCompletion.ChatCompletionRequest> = []
    const lines = text.split(/\r?\n/)

    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line.length === 0) {
        continue
      }
      const fail = (reason: string) => Effect.fail(new RequestsFileError({ path, line: i + 1, reason }))
      let json: unknown
      try {
        json = JSON.parse(line)
      } catch (error) {
        return yield* fail(`not valid JSON (${error instanceof Error ? error.message : String(error)})`)
      }
      const decoded = decodeRequest(json)
      if (decoded._tag === "Left") {
        return yield* fail(firstIssue(decoded.left))
      }
      if (decoded.right.stream === true) {
        return yield* fail("streamed requests (stream: true) are not supported by the simulation")
      }
      requests.push(decoded.right)
    }

    if (requests.length === 0) {
      return yield* Effect.fail(new RequestsFileError({ path, line: undefined, reason: "the file holds no requests" }))
    }
    return requests
  })

/**
 * Reads and parses a JSONL file of chat completion requests.
 *
 * @since 0.1.0
 * @category parsing
 */
export const loadRequests = (
  path: string
): Effect.Effect<ReadonlyArray<ChatCompletion.ChatCompletionRequest>, RequestsFileError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem

    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError(
        (error) =>
          new RequestsFileError({
            path,
            line: undefined,
            reason:
              error._tag === "SystemError" && error.reason === "NotFound"
                ? "no such file"
                : `cannot be read (${error.description ?? error.message})`
          })
      )
    )

    return yield* parseRequests(text, path)
  })

const topics = [
  "Summarise the customer's last three messages about a late delivery.",
  "Draft a polite reply declining a meeting invitation for Friday.",
  "Explain what an idempotency key is to a new backend engineer.",
  "Classify this support ticket: 'I was charged twice for my subscription.'",
  "Translate 'Your order has shipped and will arrive on Tuesday' into Spanish.",
  "Write a SQL query for the ten most recent orders of a customer.",
  "Suggest three subject lines for a product launch email.",
  "List the risks of retrying payment requests without deduplication.",
  "Turn these notes into action items: budget review, vendor call, hiring plan.",
  "Rewrite this sentence to be shorter: 'We would like to kindly remind you that the invoice is due.'"
]

const models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]

/**
 * `count` varied chat completion requests, the same for the same seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateRequests = (count: number, seed: number): ReadonlyArray<ChatCompletion.ChatCompletionRequest> =>
  Array.from({ length: count }, (_, i) => {
    const topic = topics[intBetween(0, topics.length - 1, seed, "topic", i)]!
    const model = models[intBetween(0, models.length - 1, seed, "model", i)]!
    return {
      model,
      messages: [
        { role: "system", content: "You are a concise assistant for a small online business." },
        { role: "user", content: topic }
      ],
      temperature: Math.round(uniform(seed, "temperature", i) * 10) / 10,
      max_tokens: 256
    }
  })

/**
 * The actions of a run: action `i` belongs to conversation `conv_<i div 4>` and answers message `msg_<i>`,
 * with request `requests[i mod requests.length]`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const actions = (
  count: number,
  requests: ReadonlyArray<ChatCompletion.ChatCompletionRequest>
): ReadonlyArray<Action> =>
  Array.from({ length: count }, (_, i) => {
    const conversation = `conv_${Math.floor(i / 4)}`
    const message = `msg_${i}`
    return {
      id: `${conversation}/${message}`,
      conversation,
      message,
      key: IdempotencyKey.make("chatmsg", conversation, message),
      request: requests[i % requests.length]!
    }
  })

/**
 * The delivery queue: every action once, plus a redelivery for a seeded share `redeliveryRate` of them, half
 * overlapping the first delivery and half after all first deliveries.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deliveries = (
  all: ReadonlyArray<Action>,
  options: { readonly redeliveryRate: number; readonly seed: number }
): ReadonlyArray<Delivery> => {
  const queue: Array<Delivery> = []
  const later: Array<Delivery> = []
  all.forEach((action, i) => {
    queue.push({ action, kind: "first" })
    if (uniform(options.seed, "redeliver", i) < options.redeliveryRate) {
      if (uniform(options.seed, "overlap", i) < 0.5) {
        queue.push({ action, kind: "concurrent" })
      } else {
        later.push({ action, kind: "later" })
      }
    }
  })
  return [...queue, ...later]
}
