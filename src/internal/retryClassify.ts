/**
 * The reading behind `CallError.fromResponse` and `CallError.fromCause`: provider bodies, request ids and the
 * transport failures of Node, undici, fetch and @effect/platform.
 *
 * @internal
 */
import { Option, Predicate } from "effect"
import { normalize, parseHttpDate } from "./retryHeaders.js"

export { normalize }

/** Provider text is kept for people to read, not stored whole: a proxy's HTML error page can be megabytes. */
const MAX_MESSAGE_LENGTH = 1000

const text = (u: unknown): Option.Option<string> =>
  typeof u === "string" && u.trim() !== "" ? Option.some(truncate(u.trim())) : Option.none()

const truncate = (s: string) => (s.length > MAX_MESSAGE_LENGTH ? `${s.slice(0, MAX_MESSAGE_LENGTH)}…` : s)

/** @internal */
export interface BodyInfo {
  readonly message: Option.Option<string>
  readonly code: Option.Option<string>
  readonly requestId: Option.Option<string>
}

const noInfo: BodyInfo = { message: Option.none(), code: Option.none(), requestId: Option.none() }

/**
 * Reads `{ error: { message, type, code } }` (OpenAI), `{ type: "error", error: { type, message } }`
 * (Anthropic, with `request_id`), `{ error: "..." }`, `{ message: "..." }`, or plain text.
 *
 * @internal
 */
export const readBody = (body: unknown): BodyInfo => {
  if (typeof body === "string") {
    const trimmed = body.trim()
    if (trimmed.startsWith("{")) {
      try {
        return readJson(JSON.parse(trimmed))
      } catch {
        return { ...noInfo, message: text(trimmed) }
      }
    }
    return { ...noInfo, message: text(trimmed) }
  }
  return readJson(body)
}

const readJson = (json: unknown): BodyInfo => {
  if (!Predicate.isRecord(json)) {
    return noInfo
  }
  const requestId = text(json.request_id)
  const error = json.error
  if (Predicate.isRecord(error)) {
    return {
      message: text(error.message),
      code: Option.orElse(text(error.code), () => text(error.type)),
      requestId
    }
  }
  return { message: Option.orElse(text(error), () => text(json.message)), code: text(json.code), requestId }
}

/** @internal */
export const requestIdHeader = (headers: Readonly<Record<string, string>>): Option.Option<string> =>
  Option.orElse(text(headers["x-request-id"]), () => text(headers["request-id"]))

/** @internal */
export const shouldRetryHeader = (headers: Readonly<Record<string, string>>): Option.Option<boolean> => {
  const value = headers["x-should-retry"]?.trim().toLowerCase()
  return value === "true" ? Option.some(true) : value === "false" ? Option.some(false) : Option.none()
}

/**
 * Codes that settle retryability when no `x-should-retry` header does: an exhausted quota (OpenAI answers it
 * with 429) does not come back by waiting.
 *
 * @internal
 */
export const codeVerdict = (code: Option.Option<string>): Option.Option<boolean> =>
  Option.flatMap(code, (c) => (c === "insufficient_quota" ? Option.some(false) : Option.none()))

/** @internal */
export const dateHeader = (headers: Readonly<Record<string, string>>): Option.Option<number> =>
  Option.flatMap(Option.fromNullable(headers["date"]), parseHttpDate)

/** @internal */
export type Classified =
  | {
      readonly _tag: "Response"
      readonly status: number
      readonly headers: Readonly<Record<string, string>> | undefined
    }
  | { readonly _tag: "Unsendable"; readonly cause: unknown }
  | { readonly _tag: "Timeout"; readonly phase: "connect" | "read" }
  | { readonly _tag: "Network"; readonly phase: "connect" | "read" }

/** Codes of failures that happen before a single byte of the request can have been sent. */
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL"
])

const CONNECT_TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "ERR_SOCKET_CONNECTION_TIMEOUT"])

const READ_TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"])

/**
 * Codes of arguments the HTTP stack refused while building the request (a header value it cannot encode, a bad
 * URL): nothing was sent, and sending the same request again fails the same way.
 */
const INVALID_REQUEST_CODES = new Set([
  "UND_ERR_INVALID_ARG",
  "ERR_INVALID_CHAR",
  "ERR_INVALID_HTTP_TOKEN",
  "ERR_INVALID_ARG_TYPE",
  "ERR_INVALID_ARG_VALUE",
  "ERR_INVALID_URL"
])

const TIMEOUT_NAMES = new Set(["AbortError", "TimeoutError", "TimeoutException"])

/** How deep `classify` follows `cause` chains (fetch wraps undici wraps the socket error). */
const MAX_DEPTH = 5

const field = (u: unknown, name: string): unknown => (Predicate.hasProperty(u, name) ? u[name] : undefined)

/** @internal */
export const classify = (cause: unknown): Classified => {
  let current = cause
  for (let depth = 0; depth < MAX_DEPTH && current !== undefined && current !== null; depth++) {
    const found = classifyOne(current)
    if (found !== undefined) {
      return found
    }
    const errors = field(current, "errors")
    current = field(current, "cause") ?? (Array.isArray(errors) ? errors[0] : undefined)
  }
  return { _tag: "Network", phase: "read" }
}

const classifyOne = (u: unknown): Classified | undefined => {
  const tag = field(u, "_tag")
  if (tag === "RequestError") {
    const reason = field(u, "reason")
    if (reason === "Transport") {
      const inner = field(u, "cause")
      return inner === undefined ? { _tag: "Network", phase: "read" } : classify(inner)
    }
    return { _tag: "Unsendable", cause: field(u, "cause") ?? u }
  }
  if (tag === "ResponseError") {
    const response = field(u, "response")
    const status = field(response, "status")
    if (field(u, "reason") === "StatusCode" && typeof status === "number") {
      const headers = field(response, "headers")
      return { _tag: "Response", status, headers: Predicate.isRecord(headers) ? (headers as never) : undefined }
    }
    return { _tag: "Network", phase: "read" }
  }
  const code = field(u, "code")
  if (typeof code === "string") {
    if (INVALID_REQUEST_CODES.has(code)) {
      return { _tag: "Unsendable", cause: u }
    }
    if (CONNECT_CODES.has(code)) {
      return { _tag: "Network", phase: "connect" }
    }
    if (CONNECT_TIMEOUT_CODES.has(code)) {
      return { _tag: "Timeout", phase: "connect" }
    }
    if (READ_TIMEOUT_CODES.has(code)) {
      return { _tag: "Timeout", phase: "read" }
    }
    if (code === "ETIMEDOUT") {
      return { _tag: "Timeout", phase: field(u, "syscall") === "connect" ? "connect" : "read" }
    }
    if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED" || code.startsWith("UND_ERR_")) {
      return { _tag: "Network", phase: "read" }
    }
  }
  const name = typeof tag === "string" ? tag : field(u, "name")
  if (typeof name === "string" && TIMEOUT_NAMES.has(name)) {
    return { _tag: "Timeout", phase: "read" }
  }
  const message = field(u, "message")
  if (typeof message === "string" && /socket hang up/i.test(message)) {
    return { _tag: "Network", phase: "read" }
  }
  return undefined
}

/** @internal */
export const causeText = (cause: unknown): string => {
  const code = field(cause, "code")
  const message = field(cause, "message")
  const base = typeof message === "string" && message !== "" ? message : String(cause)
  return typeof code === "string" && !base.includes(code) ? `${code}: ${base}` : base
}
