/**
 * Canonical JSON: one text per value, whatever order its object keys were written in.
 *
 * Every call of `execute` fingerprints its request, so the walk is written for the common case: it builds the
 * text alone, with plain recursion and a small array of the objects above the current one, and only when the
 * value turns out not to be data does a second walk trace the path to the offending part for the error.
 *
 * @internal
 */

/** Raised while walking a value; the public module turns it into `UnserializableRequest`. */
export class CanonicalizeFailure {
  constructor(
    readonly path: string,
    readonly reason: string
  ) {}
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const surrogate = /[\uD800-\uDFFF]/

/** The path of `key` under `path`; `undefined` while paths are not traced. */
const childPath = (path: string | undefined, key: string): string | undefined =>
  path === undefined ? undefined : identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

const elementPath = (path: string | undefined, index: number): string | undefined =>
  path === undefined ? undefined : `${path}[${index}]`

/** Orders strings by Unicode code point (plain `<` orders by UTF-16 unit, which differs above U+FFFF). */
const compareCodePoints = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x - y
    if (x > 0xffff) i++
  }
  return a.length - b.length
}

/**
 * The keys in code-point order. Without surrogate pairs, UTF-16 order (the default sort) is code-point order,
 * so the slower comparison runs only for keys outside the Basic Multilingual Plane.
 */
const sortedKeys = (value: object): Array<string> => {
  const keys = Object.keys(value)
  if (keys.length < 2) return keys
  for (let i = 0; i < keys.length; i++) {
    if (surrogate.test(keys[i]!)) return keys.sort(compareCodePoints)
  }
  return keys.sort()
}

const unsupportedObject = (value: object): string | undefined => {
  if (value instanceof Map || value instanceof WeakMap) return "a Map has no JSON form; convert it to a plain object"
  if (value instanceof Set || value instanceof WeakSet) return "a Set has no JSON form; convert it to an array"
  if (value instanceof Promise) return "a Promise is not a value; await it before fingerprinting"
  return undefined
}

/**
 * The canonical text of `value`, found under `key` at `path`. `ancestors` holds the objects being walked
 * above it (a cycle returns to one of them). `path` is `undefined` on the fast walk, which throws a failure
 * without a path as soon as it meets something that is not data.
 */
const walk = (value: unknown, key: string, path: string | undefined, ancestors: Array<object>): string => {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key)
  }
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalizeFailure(path ?? "", `the number ${value} has no JSON form`)
      return JSON.stringify(value)
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return `${value}n`
    case "undefined":
      return "null"
    case "function":
      throw new CanonicalizeFailure(path ?? "", "a function is not data")
    case "symbol":
      throw new CanonicalizeFailure(path ?? "", "a symbol is not data")
    case "object":
      return value === null ? "null" : walkObject(value, path, ancestors)
  }
}

const walkObject = (value: object, path: string | undefined, ancestors: Array<object>): string => {
  const isArray = Array.isArray(value)
  if (!isArray && Object.getPrototypeOf(value) !== Object.prototype) {
    const unsupported = unsupportedObject(value)
    if (unsupported !== undefined) throw new CanonicalizeFailure(path ?? "", unsupported)
  }
  if (ancestors.includes(value)) throw new CanonicalizeFailure(path ?? "", "the value refers back to itself (a cycle)")
  ancestors.push(value)
  let text: string
  if (isArray) {
    text = "["
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ","
      text += walk(value[i], String(i), elementPath(path, i), ancestors)
    }
    text += "]"
  } else {
    const record = value as Record<string, unknown>
    const keys = sortedKeys(record)
    text = "{"
    for (let i = 0; i < keys.length; i++) {
      const field = record[keys[i]!]
      if (field === undefined) continue
      if (text.length > 1) text += ","
      text += JSON.stringify(keys[i]) + ":" + walk(field, keys[i]!, childPath(path, keys[i]!), ancestors)
    }
    text += "}"
  }
  ancestors.pop()
  return text
}

/** Canonical JSON text of `value`; throws `CanonicalizeFailure`, with the path to what is not data. */
export const canonicalize = (value: unknown): string => {
  try {
    return walk(value, "", undefined, [])
  } catch (error) {
    if (!(error instanceof CanonicalizeFailure)) throw error
  }
  // Walk again, tracing paths, to say where the value stops being data.
  return walk(value, "", "$", [])
}
