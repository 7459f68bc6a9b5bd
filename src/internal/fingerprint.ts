/**
 * Canonical JSON: one text per value, whatever order its object keys were written in.
 *
 * Every call of `execute` fingerprints its request, so the walk is written for the common case: it builds the
 * text alone, and only when the value turns out not to be data does a second walk trace the path to the
 * offending part for the error.
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
  for (const key of keys) {
    if (surrogate.test(key)) return keys.sort(compareCodePoints)
  }
  return keys.sort()
}

const unsupportedObject = (value: object): string | undefined => {
  if (value instanceof Map || value instanceof WeakMap) return "a Map has no JSON form; convert it to a plain object"
  if (value instanceof Set || value instanceof WeakSet) return "a Set has no JSON form; convert it to an array"
  if (value instanceof Promise) return "a Promise is not a value; await it before fingerprinting"
  return undefined
}

class Walker {
  private readonly ancestors = new Set<object>()

  /**
   * @param path where `value` sits, when tracing paths for an error; `undefined` on the fast walk, which
   * throws a failure without a path as soon as it meets something that is not data.
   */
  value(value: unknown, path: string | undefined, key: string): string {
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
        return value === null ? "null" : this.object(value, path)
    }
  }

  private object(value: object, path: string | undefined): string {
    const isArray = Array.isArray(value)
    if (!isArray && Object.getPrototypeOf(value) !== Object.prototype) {
      const unsupported = unsupportedObject(value)
      if (unsupported !== undefined) throw new CanonicalizeFailure(path ?? "", unsupported)
    }
    if (this.ancestors.has(value)) {
      throw new CanonicalizeFailure(path ?? "", "the value refers back to itself (a cycle)")
    }
    this.ancestors.add(value)
    const text = isArray ? this.array(value, path) : this.record(value as Record<string, unknown>, path)
    this.ancestors.delete(value)
    return text
  }

  private array(value: ReadonlyArray<unknown>, path: string | undefined): string {
    let text = "["
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ","
      text += this.value(value[i], elementPath(path, i), String(i))
    }
    return text + "]"
  }

  private record(value: Record<string, unknown>, path: string | undefined): string {
    let text = "{"
    let first = true
    for (const key of sortedKeys(value)) {
      const field = value[key]
      if (field === undefined) continue
      if (!first) text += ","
      first = false
      text += JSON.stringify(key) + ":" + this.value(field, childPath(path, key), key)
    }
    return text + "}"
  }
}

/** Canonical JSON text of `value`; throws `CanonicalizeFailure`, with the path to what is not data. */
export const canonicalize = (value: unknown): string => {
  try {
    return new Walker().value(value, undefined, "")
  } catch (error) {
    if (!(error instanceof CanonicalizeFailure)) throw error
  }
  // Walk again, tracing paths, to say where the value stops being data.
  return new Walker().value(value, "$", "")
}
