/**
 * The in-memory dead-letter backend.
 *
 * @internal
 */
import { Effect, Option, Ref } from "effect"
import type { DeadLetter } from "./deadLetterModel.js"
import type { Backend } from "./deadLetter.js"
import { parseRequest } from "./deadLetter.js"

interface Stored extends Omit<DeadLetter, "request"> {
  readonly requestJson: string
}

const toEntry = ({ requestJson, ...rest }: Stored): DeadLetter => ({ ...rest, request: parseRequest(requestJson) })

const byAge = (a: Stored, b: Stored) =>
  a.deadLetteredAt - b.deadLetteredAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** @internal */
export const make: Effect.Effect<Backend> = Effect.map(Ref.make(new Map<string, Stored>()), (ref) => ({
  upsert: (entry) =>
    Ref.modify(ref, (entries) => {
      const previous = entries.get(entry.key)
      const stored: Stored =
        previous === undefined
          ? entry
          : {
              ...previous,
              requestJson: entry.requestJson,
              lastError: entry.lastError,
              attempts: previous.attempts + entry.attempts,
              updatedAt: entry.updatedAt
            }
      const next = new Map(entries).set(entry.key, stored)
      return [{ entry: toEntry(stored), isNew: previous === undefined }, next] as const
    }),
  list: (limit) =>
    Effect.map(Ref.get(ref), (entries) => {
      const sorted = [...entries.values()].sort(byAge)
      return (limit === undefined ? sorted : sorted.slice(0, limit)).map(toEntry)
    }),
  get: (key) => Effect.map(Ref.get(ref), (entries) => Option.map(Option.fromNullable(entries.get(key)), toEntry)),
  remove: (key) =>
    Ref.modify(ref, (entries) => {
      if (!entries.has(key)) {
        return [false, entries] as const
      }
      const next = new Map(entries)
      next.delete(key)
      return [true, next] as const
    }),
  recordError: (key, lastError, now) =>
    Ref.update(ref, (entries) => {
      const previous = entries.get(key)
      return previous === undefined ? entries : new Map(entries).set(key, { ...previous, lastError, updatedAt: now })
    })
}))
