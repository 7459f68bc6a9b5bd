/**
 * Canonical JSON: one text per value, whatever order its object keys were written in.
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

const childPath = (path: string, key: string): string =>
  identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

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

const unsupportedObject = (value: object): string | undefined => {
  if (value instanceof Map || value instanceof WeakMap) return "a Map has no JSON form; convert it to a plain object"
  if (value instanceof Set || value instanceof WeakSet) return "a Set has no JSON form; convert it to an array"
  if (value instanceof Promise) return "a Promise is not a value; await it before fingerprinting"
  return undefined
}

class Walker {
  readonly out: Array<string> = []
  private readonly ancestors = new Set<object>()

  value(value: unknown, path: string, key: string): void {
    if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
      value = (value as { toJSON: (key: string) => unknown }).toJSON(key)
    }
    switch (typeof value) {
      case "string":
        this.out.push(JSON.stringify(value))
        return
      case "number":
        if (!Number.isFinite(value)) throw new CanonicalizeFailure(path, `the number ${value} has no JSON form`)
        this.out.push(JSON.stringify(value))
        return
      case "boolean":
        this.out.push(value ? "true" : "false")
        return
      case "bigint":
        this.out.push(`${value}n`)
        return
      case "undefined":
        this.out.push("null")
        return
      case "function":
        throw new CanonicalizeFailure(path, "a function is not data")
      case "symbol":
        throw new CanonicalizeFailure(path, "a symbol is not data")
      case "object":
        if (value === null) this.out.push("null")
        else this.object(value, path)
    }
  }

  private object(value: object, path: string): void {
    const unsupported = unsupportedObject(value)
    if (unsupported !== undefined) throw new CanonicalizeFailure(path, unsupported)
    if (this.ancestors.has(value)) throw new CanonicalizeFailure(path, "the value refers back to itself (a cycle)")
    this.ancestors.add(value)
    if (Array.isArray(value)) this.array(value, path)
    else this.record(value as Record<string, unknown>, path)
    this.ancestors.delete(value)
  }

  private array(value: ReadonlyArray<unknown>, path: string): void {
    this.out.push("[")
    for (let i = 0; i < value.length; i++) {
      if (i > 0) this.out.push(",")
      this.value(value[i], `${path}[${i}]`, String(i))
    }
    this.out.push("]")
  }

  private record(value: Record<string, unknown>, path: string): void {
    const keys = Object.keys(value).sort(compareCodePoints)
    let first = true
    this.out.push("{")
    for (const key of keys) {
      const field = value[key]
      if (field === undefined) continue
      if (!first) this.out.push(",")
      first = false
      this.out.push(JSON.stringify(key), ":")
      this.value(field, childPath(path, key), key)
    }
    this.out.push("}")
  }
}

/** Canonical JSON text of `value`; throws `CanonicalizeFailure`. */
export const canonicalize = (value: unknown): string => {
  const walker = new Walker()
  walker.value(value, "$", "")
  return walker.out.join("")
}
