/**
 * The in-memory store. Every operation is one synchronous step over a `Map`, so no other fiber can observe or
 * interleave with it half-way: each operation is atomic by construction.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type {
  ClaimRequest,
  ClaimResult,
  IdempotencyRecord,
  IdempotencyStoreShape,
  OwnedWrite
} from "../IdempotencyStore.js"
import { claimedRecord, LeaseLost } from "../IdempotencyStore.js"

const takeOver = (record: IdempotencyRecord, request: ClaimRequest): IdempotencyRecord => ({
  ...record,
  owner: Option.some(request.owner),
  leaseExpiresAt: request.leaseExpiresAt,
  attempts: record.attempts + 1,
  updatedAt: request.now,
  expiresAt: request.expiresAt
})

const canTakeOver = (record: IdempotencyRecord, request: ClaimRequest): boolean =>
  record.status === "processing" && record.leaseExpiresAt <= request.now && record.requestHash === request.requestHash

const claimSync = (records: Map<string, IdempotencyRecord>, request: ClaimRequest): ClaimResult => {
  const existing = records.get(request.key)
  if (existing === undefined || existing.expiresAt <= request.now) {
    const record = claimedRecord(request)
    records.set(request.key, record)
    return { _tag: "Claimed", record, takeover: false }
  }
  if (canTakeOver(existing, request)) {
    const record = takeOver(existing, request)
    records.set(request.key, record)
    return { _tag: "Claimed", record, takeover: true }
  }
  return { _tag: "Existing", record: existing }
}

/** Runs `update` on the record `write.owner` still holds, or fails with `LeaseLost`. */
const ownedWrite = (
  records: Map<string, IdempotencyRecord>,
  write: OwnedWrite,
  operation: string,
  update: (record: IdempotencyRecord) => IdempotencyRecord | undefined
): Effect.Effect<void, LeaseLost> =>
  Effect.suspend(() => {
    const record = records.get(write.key)
    const owned = record !== undefined && record.status === "processing" && Option.contains(record.owner, write.owner)
    if (!owned) {
      return Effect.fail(new LeaseLost({ key: write.key, owner: write.owner, operation }))
    }
    const next = update(record)
    if (next === undefined) records.delete(write.key)
    else records.set(write.key, next)
    return Effect.void
  })

const purgeSync = (records: Map<string, IdempotencyRecord>, now: number): number => {
  let purged = 0
  for (const [key, record] of records) {
    if (record.expiresAt <= now) {
      records.delete(key)
      purged++
    }
  }
  return purged
}

/** A new, empty in-memory store. */
export const make = (): IdempotencyStoreShape => {
  const records = new Map<string, IdempotencyRecord>()
  return {
    claim: (request) => Effect.sync(() => claimSync(records, request)),
    complete: (write) =>
      ownedWrite(records, write, "complete", (record) => ({
        ...record,
        status: "succeeded",
        response: Option.some(write.response),
        owner: Option.none(),
        updatedAt: write.now
      })),
    fail: (write) =>
      ownedWrite(records, write, "fail", (record) => ({
        ...record,
        status: "failed",
        error: Option.some(write.error),
        owner: Option.none(),
        updatedAt: write.now
      })),
    release: (write) => ownedWrite(records, write, "release", () => undefined),
    heartbeat: (write) =>
      ownedWrite(records, write, "heartbeat", (record) => ({
        ...record,
        leaseExpiresAt: write.leaseExpiresAt,
        updatedAt: write.now
      })),
    get: (key, now) =>
      Effect.sync(() => {
        const record = records.get(key)
        return record === undefined || record.expiresAt <= now ? Option.none() : Option.some(record)
      }),
    purgeExpired: (now) => Effect.sync(() => purgeSync(records, now))
  }
}
