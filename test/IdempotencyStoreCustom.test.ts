/**
 * The custom store of docs/stores.md, run through the conformance suite: proves the guide's example works and
 * that the suite accepts a store written from the contract alone.
 */
import { Effect, HashMap, Layer, Option, Ref } from "effect"
import { claimedRecord, IdempotencyStore, LeaseLost } from "../src/IdempotencyStore.js"
import type { ClaimResult, IdempotencyRecord, IdempotencyStoreShape, OwnedWrite } from "../src/IdempotencyStore.js"
import { conformance } from "../src/testing/index.js"

// --- docs/stores.md example: begin
type Records = HashMap.HashMap<string, IdempotencyRecord>

const makeRefStore = Effect.gen(function* () {
  const records = yield* Ref.make<Records>(HashMap.empty())

  const live = (all: Records, key: string, now: number) =>
    Option.filter(HashMap.get(all, key), (record) => record.expiresAt > now)

  // Checks ownership and applies `change` (undefined = delete) in one Ref.modify: one atomic step.
  const owned = (
    write: OwnedWrite,
    operation: string,
    change: (r: IdempotencyRecord) => IdempotencyRecord | undefined
  ) =>
    Ref.modify(records, (all): [boolean, Records] => {
      const record = Option.getOrUndefined(HashMap.get(all, write.key))
      if (record?.status !== "processing" || !Option.contains(record.owner, write.owner)) return [false, all]
      const next = change(record)
      return [true, next === undefined ? HashMap.remove(all, write.key) : HashMap.set(all, write.key, next)]
    }).pipe(
      Effect.flatMap((ok) => (ok ? Effect.void : new LeaseLost({ key: write.key, owner: write.owner, operation })))
    )

  const store: IdempotencyStoreShape = {
    claim: (request) =>
      Ref.modify(records, (all): [ClaimResult, Records] => {
        const current = Option.getOrUndefined(live(all, request.key, request.now))
        if (current === undefined) {
          const record = claimedRecord(request)
          return [{ _tag: "Claimed", record, takeover: false }, HashMap.set(all, request.key, record)]
        }
        const reclaimable =
          current.status === "processing" &&
          current.leaseExpiresAt <= request.now &&
          current.requestHash === request.requestHash
        if (!reclaimable) return [{ _tag: "Existing", record: current }, all]
        const record: IdempotencyRecord = {
          ...current,
          owner: Option.some(request.owner),
          leaseExpiresAt: request.leaseExpiresAt,
          attempts: current.attempts + 1,
          updatedAt: request.now,
          expiresAt: request.expiresAt
        }
        return [{ _tag: "Claimed", record, takeover: true }, HashMap.set(all, request.key, record)]
      }),
    complete: (write) =>
      owned(write, "complete", (r) => ({
        ...r,
        status: "succeeded",
        response: Option.some(write.response),
        owner: Option.none(),
        updatedAt: write.now
      })),
    fail: (write) =>
      owned(write, "fail", (r) => ({
        ...r,
        status: "failed",
        error: Option.some(write.error),
        owner: Option.none(),
        updatedAt: write.now
      })),
    release: (write) => owned(write, "release", () => undefined),
    heartbeat: (write) =>
      owned(write, "heartbeat", (r) => ({ ...r, leaseExpiresAt: write.leaseExpiresAt, updatedAt: write.now })),
    get: (key, now) => Effect.map(Ref.get(records), (all) => live(all, key, now)),
    purgeExpired: (now) =>
      Ref.modify(records, (all) => {
        const kept = HashMap.filter(all, (record) => record.expiresAt > now)
        return [HashMap.size(all) - HashMap.size(kept), kept]
      })
  }
  return store
})

export const layerRefStore = Layer.effect(IdempotencyStore, makeRefStore)
// --- docs/stores.md example: end

conformance("a custom store written from docs/stores.md", layerRefStore)
