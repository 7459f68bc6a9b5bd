/**
 * A fake OpenAI-compatible provider: a real HTTP server on 127.0.0.1 that answers
 * `POST /v1/chat/completions`, honours `Idempotency-Key`, bills every execution of the model in a ledger, and
 * injects faults from a seeded draw.
 *
 * Faults, in the order a request meets them:
 * - before execution (nothing billed): 408, 429 with `Retry-After`, 500, 502, 503, 504, or a connection reset
 *   (the socket is destroyed without an answer);
 * - after execution (billed): `"hang"`, the response never arrives, so the client times out although the
 *   provider ran and billed the request. A retry with the same key then gets the stored answer; a retry with a
 *   new key runs (and bills) the model again.
 *
 * Idempotency, per key: the first request executes and stores its answer; the same key with the same body
 * replays it without billing (header `Idempotent-Replayed: true`); the same key while the first is still
 * executing gets 409; the same key with a different body gets 422.
 *
 * The server is built on `node:http` rather than `HttpServer` because a reset needs the raw socket.
 *
 * @since 0.1.0
 */
import { Clock, Context, Data, Duration, Effect, FiberSet, Layer, Option, Schema } from "effect"
import type { Scope } from "effect"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as ChatCompletion from "../ChatCompletion.js"
import * as Fingerprint from "../Fingerprint.js"
import { intBetween, uniform } from "./Prng.js"

/**
 * Simulation-only request header naming the business action a request belongs to. The provider copies it
 * into the ledger so duplicate executions can be counted per action; a real provider has no such header.
 *
 * @since 0.1.0
 * @category constants
 */
export const actionHeader = "x-simulation-action"

/**
 * The faults the provider can inject.
 *
 * @since 0.1.0
 * @category models
 */
export type Fault = "408" | "429" | "500" | "502" | "503" | "504" | "reset" | "hang"

/**
 * Every fault kind, in the order a random draw picks from.
 *
 * @since 0.1.0
 * @category constants
 */
export const faults: ReadonlyArray<Fault> = ["408", "429", "500", "502", "503", "504", "reset", "hang"]

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Share of requests that meet a fault, in [0, 1]. Default 0.05. */
  readonly faultRate?: number | undefined
  /** Seed of the fault and latency draws. Default 42. */
  readonly seed?: number | undefined
  /** Which faults a random draw picks from, uniformly. Default: all of {@link faults}. */
  readonly faultKinds?: ReadonlyArray<Fault> | undefined
  /** Faults for the first requests, in arrival order (`"none"` for a clean answer), before random draws. */
  readonly faultPlan?: ReadonlyArray<Fault | "none"> | undefined
  /** Simulated execution time, drawn uniformly between the bounds. Default 2 ms to 8 ms; zero sleeps not at all. */
  readonly latency?: { readonly min: Duration.DurationInput; readonly max: Duration.DurationInput } | undefined
  /** The `Retry-After` a 429 carries. Default 1 second. */
  readonly retryAfter?: Duration.DurationInput | undefined
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get 401. */
  readonly apiKey?: string | undefined
}

/**
 * One billable execution of the model.
 *
 * @since 0.1.0
 * @category models
 */
export interface LedgerEntry {
  readonly seq: number
  readonly action: string | null
  readonly idempotencyKey: string | null
  readonly completionId: string
  /** Epoch ms at which the execution finished. */
  readonly at: number
}

/**
 * What the provider did with one request.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | "executed"
  | "replayed"
  | "conflict"
  | "mismatch"
  | "invalid"
  | "unauthorized"
  | "notFound"
  | Exclude<Fault, "hang">
  | "hang"

/**
 * One request as it arrived, with its headers (names lower-cased by Node) and what the provider did.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestRecord {
  readonly seq: number
  readonly method: string
  readonly path: string
  readonly action: string | null
  readonly idempotencyKey: string | null
  readonly headers: Readonly<Record<string, string>>
  readonly outcome: Outcome
}

/**
 * A running provider.
 *
 * @since 0.1.0
 * @category models
 */
export interface Provider {
  /** Base URL including the `/v1` prefix, e.g. `http://127.0.0.1:53211/v1` (what OpenAI SDKs call baseURL). */
  readonly baseUrl: string
  readonly port: number
  /** Every billable execution so far, in order. */
  readonly ledger: Effect.Effect<ReadonlyArray<LedgerEntry>>
  /** Every request received so far, in arrival order. */
  readonly requests: Effect.Effect<ReadonlyArray<RequestRecord>>
}

/**
 * The provider could not listen on 127.0.0.1.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderStartError extends Data.TaggedError("ProviderStartError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `The simulated provider could not listen on 127.0.0.1: ${String(this.cause)}`
  }
}

/**
 * The provider options were out of range.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidProviderOptions extends Data.TaggedError("InvalidProviderOptions")<{ readonly reason: string }> {
  override get message(): string {
    return `Invalid simulated provider options: ${this.reason}`
  }
}

/**
 * The running provider as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class FakeProvider extends Context.Tag("effect-idempotency/simulation/FakeProvider")<FakeProvider, Provider>() {}

interface KeyRecord {
  readonly hash: string
  state: "executing" | "done"
  response: string
}

const errorBody = (status: number, message: string, type: string): string =>
  JSON.stringify({ error: { message, type, code: String(status) } })

const faultMessage: Record<Exclude<Fault, "reset" | "hang">, readonly [number, string, string]> = {
  "408": [408, "The request timed out at the provider.", "timeout"],
  "429": [429, "Rate limit reached for requests. Please retry after a short wait.", "rate_limit_exceeded"],
  "500": [500, "The server had an error while processing your request.", "server_error"],
  "502": [502, "Bad gateway.", "server_error"],
  "503": [503, "The engine is currently overloaded, please try again later.", "server_error"],
  "504": [504, "Gateway timeout.", "server_error"]
}

const readBody = (req: IncomingMessage): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
    req.on("error", (error) => resume(Effect.fail(error)))
  })

const words = (text: string): number => text.split(/\s+/).filter((w) => w.length > 0).length

const messageText = (message: ChatCompletion.ChatMessage): string =>
  typeof message.content === "string"
    ? message.content
    : message.content === null
      ? ""
      : message.content.map((part) => (typeof part["text"] === "string" ? part["text"] : "")).join(" ")

const answer = (request: ChatCompletion.ChatCompletionRequest, id: string, createdSeconds: number) => {
  const last = [...request.messages].reverse().find((m) => m.role === "user") ?? request.messages[0]
  const prompt = messageText(last).replace(/\s+/g, " ").trim()
  const content = `Simulated answer (${id}) to: ${prompt.length > 80 ? `${prompt.slice(0, 77)}...` : prompt}`
  const promptTokens = request.messages.reduce((n, m) => n + words(messageText(m)) + 4, 0)
  const completionTokens = words(content)
  return {
    id,
    object: "chat.completion",
    created: createdSeconds,
    model: request.model,
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens
    }
  }
}

const headerValue = (req: IncomingMessage, name: string): string | null => {
  const value = req.headers[name]
  return typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : null
}

const flatHeaders = (req: IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return out
}

const validate = (options: Options): Effect.Effect<void, InvalidProviderOptions> => {
  const rate = options.faultRate ?? 0.05
  if (!(rate >= 0 && rate <= 1)) {
    return Effect.fail(new InvalidProviderOptions({ reason: `faultRate must be in [0, 1], got ${rate}` }))
  }
  if (options.faultKinds !== undefined && options.faultKinds.length === 0 && rate > 0) {
    return Effect.fail(new InvalidProviderOptions({ reason: "faultKinds is empty but faultRate is above 0" }))
  }
  return Effect.void
}

/**
 * Starts a provider on 127.0.0.1 (a free port chosen by the OS) for the life of the scope. Closing the scope
 * closes the server and every open connection, including hung ones.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Provider from "effect-idempotency/simulation/Provider"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const provider = yield* Provider.make({ faultRate: 0.1, seed: 7 })
 *     // point a client at provider.baseUrl, then read provider.ledger
 *     return (yield* provider.ledger).length
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Provider, ProviderStartError | InvalidProviderOptions, Scope.Scope> =>
  Effect.gen(function* () {
    yield* validate(options)

    const seed = options.seed ?? 42
    const faultRate = options.faultRate ?? 0.05
    const kinds = options.faultKinds ?? faults
    const plan = [...(options.faultPlan ?? [])]
    const minLatency = Duration.toMillis(options.latency?.min ?? Duration.millis(2))
    const maxLatency = Duration.toMillis(options.latency?.max ?? Duration.millis(8))
    const retryAfterSeconds = Math.max(0, Math.ceil(Duration.toSeconds(options.retryAfter ?? Duration.seconds(1))))

    const ledger: Array<LedgerEntry> = []
    const requests: Array<RequestRecord> = []
    const keys = new Map<string, KeyRecord>()
    const attemptsPerIdentity = new Map<string, number>()
    let requestSeq = 0
    let executionSeq = 0

    const drawFault = (identity: string, attempt: number): Fault | "none" => {
      const planned = plan.shift()
      if (planned !== undefined) return planned
      if (faultRate === 0 || uniform(seed, "fault", identity, attempt) >= faultRate) return "none"
      return kinds[Math.floor(uniform(seed, "kind", identity, attempt) * kinds.length)]!
    }

    const respond = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
      Effect.sync(() => {
        if (res.destroyed || res.headersSent) return
        res.writeHead(status, { "content-type": "application/json", ...headers })
        res.end(body)
      })

    const handleCompletion = (req: IncomingMessage, res: ServerResponse, seq: number) =>
      Effect.gen(function* () {
        const action = headerValue(req, actionHeader)
        const key = headerValue(req, "idempotency-key")
        const requestId = `req_sim_${seq}`
        const record = (outcome: Outcome) =>
          Effect.sync(() => {
            requests.push({
              seq,
              method: req.method ?? "",
              path: req.url ?? "",
              action,
              idempotencyKey: key,
              headers: flatHeaders(req),
              outcome
            })
          })
        const reject = (outcome: Outcome, status: number, message: string, type: string) =>
          Effect.zipRight(
            record(outcome),
            respond(res, status, errorBody(status, message, type), { "x-request-id": requestId })
          )

        const raw = yield* readBody(req)

        if (options.apiKey !== undefined && headerValue(req, "authorization") !== `Bearer ${options.apiKey}`) {
          return yield* reject("unauthorized", 401, "Incorrect API key provided.", "invalid_request_error")
        }

        const parsed = yield* Effect.try(() => JSON.parse(raw) as unknown).pipe(
          Effect.flatMap(Schema.decodeUnknown(ChatCompletion.ChatCompletionRequest)),
          Effect.option
        )
        if (Option.isNone(parsed)) {
          return yield* reject(
            "invalid",
            400,
            "The request body is not a valid chat completion.",
            "invalid_request_error"
          )
        }
        const body = parsed.value

        const identity = action ?? key ?? "anonymous"
        const attempt = attemptsPerIdentity.get(identity) ?? 0
        attemptsPerIdentity.set(identity, attempt + 1)
        const fault = drawFault(identity, attempt)

        if (fault === "reset") {
          yield* record("reset")
          return yield* Effect.sync(() => req.socket.destroy())
        }
        if (fault !== "none" && fault !== "hang") {
          const [status, message, type] = faultMessage[fault]
          const extra: Record<string, string> = fault === "429" ? { "retry-after": String(retryAfterSeconds) } : {}
          return yield* Effect.zipRight(
            record(fault),
            respond(res, status, errorBody(status, message, type), { "x-request-id": requestId, ...extra })
          )
        }

        const hash = Fingerprint.hash(body)
        const existing = key === null ? undefined : keys.get(key)
        if (existing !== undefined && existing.hash !== hash) {
          return yield* reject(
            "mismatch",
            422,
            "Idempotency-Key was already used with a different request body.",
            "idempotency_error"
          )
        }
        if (existing !== undefined && existing.state === "executing") {
          return yield* reject(
            "conflict",
            409,
            "A request with this Idempotency-Key is still being processed; retry later.",
            "idempotency_error"
          )
        }
        if (existing !== undefined) {
          yield* record(fault === "hang" ? "hang" : "replayed")
          if (fault === "hang") return
          return yield* respond(res, 200, existing.response, {
            "x-request-id": requestId,
            "idempotent-replayed": "true"
          })
        }

        const claimed: KeyRecord = { hash, state: "executing", response: "" }
        if (key !== null) keys.set(key, claimed)

        const latency = intBetween(minLatency, maxLatency, seed, "latency", identity, attempt)
        if (latency > 0) {
          yield* Effect.sleep(Duration.millis(latency))
        }

        const now = yield* Clock.currentTimeMillis
        executionSeq += 1
        const completionId = `chatcmpl-sim-${seed}-${executionSeq}`
        const response = JSON.stringify(answer(body, completionId, Math.floor(now / 1000)))
        ledger.push({ seq: executionSeq, action, idempotencyKey: key, completionId, at: now })
        claimed.state = "done"
        claimed.response = response

        yield* record(fault === "hang" ? "hang" : "executed")
        if (fault === "hang") return
        yield* respond(res, 200, response, { "x-request-id": requestId })
      })

    const handle = (req: IncomingMessage, res: ServerResponse): Effect.Effect<void> => {
      const seq = ++requestSeq
      const path = (req.url ?? "").split("?")[0]
      const program =
        req.method === "POST" && path === "/v1/chat/completions"
          ? handleCompletion(req, res, seq)
          : req.method === "GET" && path === "/v1/ledger"
            ? respond(res, 200, JSON.stringify({ entries: ledger }))
            : respond(res, 404, errorBody(404, `No route for ${req.method} ${path}.`, "invalid_request_error"))
      return program.pipe(
        Effect.catchAllCause(() => Effect.sync(() => req.socket.destroy())),
        Effect.withSpan("FakeProvider.handle", { attributes: { "http.request.method": req.method ?? "" } })
      )
    }

    const run = yield* FiberSet.makeRuntime<never>()

    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>, ProviderStartError>((resume) => {
        const server = createServer((req, res) => {
          run(handle(req, res))
        })
        server.once("error", (cause) => resume(Effect.fail(new ProviderStartError({ cause }))))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )

    const port = (server.address() as AddressInfo).port
    return {
      baseUrl: `http://127.0.0.1:${port}/v1`,
      port,
      ledger: Effect.sync(() => [...ledger]),
      requests: Effect.sync(() => [...requests])
    }
  })

/**
 * The provider as a scoped Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<FakeProvider, ProviderStartError | InvalidProviderOptions> =>
  Layer.scoped(FakeProvider, make(options))
