/**
 * Where `Idempotency.execute` spends its time on the SQLite store: not part of `npm run bench`, a tool for
 * whoever works on the hot path. Run it with
 *
 *   node --expose-gc node_modules/.bin/vite-node bench/profile.ts
 *
 * It prints two tables:
 *
 * 1. the shape of a fresh call and a replay next to the hand-written versions: the SQL statements they
 *    execute (counted by wrapping better-sqlite3's statement methods in this process only), the spans they open
 *    (through a counting tracer), the fibers they fork and the effect instructions the runtime evaluates
 *    (through a counting supervisor);
 * 2. the median cost of each step of the hot path timed on its own, interleaved in rounds like the benchmark,
 *    and of `execute` itself with single features turned on or swapped (heartbeats, memory store), so that
 *    the difference prices the feature.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import {
  Clock,
  Console,
  Duration,
  Effect,
  Fiber,
  Layer,
  Metric,
  MetricLabel,
  Option,
  RuntimeFlags,
  RuntimeFlagsPatch,
  Schema,
  Supervisor,
  Tracer
} from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Fingerprint from "../src/Fingerprint.js"
import * as Idempotency from "../src/Idempotency.js"
import * as IdempotencyKey from "../src/IdempotencyKey.js"
import * as IdempotencyStore from "../src/IdempotencyStore.js"
import { fixed, median } from "./stats.js"
import * as Variants from "./variants.js"

type Method = "all" | "get" | "run" | "iterate"

/** Every statement better-sqlite3 runs in this process while `recording` is on, by its SQL text. */
const executed: Array<string> = []
let recording = false

const countStatements = (): void => {
  const probe = new Database(":memory:")
  const prototype = Object.getPrototypeOf(probe.prepare("SELECT 1")) as Record<Method, (...args: never) => unknown>
  probe.close()
  for (const method of ["all", "get", "run", "iterate"] as const) {
    const original = prototype[method]
    prototype[method] = function (this: { readonly source: string }, ...args: never) {
      if (recording) executed.push(this.source.replace(/\s+/g, " ").trim())
      return original.apply(this, args)
    }
  }
}

/** Counts the fibers a call forks and the effect instructions its fibers evaluate. */
class Counting extends Supervisor.AbstractSupervisor<void> {
  fibers = 0
  instructions = 0
  readonly value = Effect.void
  override onStart(): void {
    this.fibers++
  }
  override onEffect(): void {
    this.instructions++
  }
}

const countingTracer = (inner: Tracer.Tracer, names: Array<string>): Tracer.Tracer =>
  Tracer.make({
    span: (name, ...rest) => {
      names.push(name)
      return inner.span(name, ...rest)
    },
    context: (f, fiber) => inner.context(f, fiber)
  })

/** How many calls `shapeOf` counts: whether a fiber forks can depend on where a scheduler turn ends. */
const shapeCalls = 5

/** Runs `effectAt(index)` a few times and describes the last call, with the fork count of each. */
const shapeOf = (
  label: string,
  effectAt: (index: number) => Effect.Effect<unknown, unknown, IdempotencyStore.IdempotencyStore>
) =>
  Effect.gen(function* () {
    const inner = yield* Effect.tracer
    const forks: Array<number> = []
    let spans: Array<string> = []
    let instructions = 0

    for (let index = 0; index < shapeCalls; index++) {
      spans = []
      const supervisor = new Counting()
      executed.length = 0
      recording = true

      yield* effectAt(index).pipe(
        Effect.withTracer(countingTracer(inner, spans)),
        Effect.supervised(supervisor),
        Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)),
        Effect.ensuring(Effect.sync(() => (recording = false)))
      )
      forks.push(supervisor.fibers)
      instructions = supervisor.instructions
    }

    const statements = executed.slice()
    return [
      `${label}: ${statements.length} statement(s), ${spans.length} span(s) [${spans.join(", ")}], ` +
        `forked fibers per call ${forks.join("/")} (${shapeCalls} calls), ${instructions} effect instructions`,
      ...statements.map((text) => `  - ${text.length > 110 ? `${text.slice(0, 110)}...` : text}`)
    ]
  })

interface Step {
  readonly label: string
  readonly run: (index: number) => Effect.Effect<unknown, unknown, IdempotencyStore.IdempotencyStore>
}

const rounds = 12
const perRound = 150

const timeSteps = (steps: ReadonlyArray<Step>) =>
  Effect.gen(function* () {
    const samples = steps.map((): Array<number> => [])
    let index = 0
    for (let round = 0; round < rounds + 2; round++) {
      for (let offset = 0; offset < steps.length; offset++) {
        const which = (offset + round) % steps.length
        globalThis.gc?.()
        for (let op = 0; op < perRound; op++) {
          const start = performance.now()
          yield* steps[which]!.run(index++)
          if (round >= 2) samples[which]!.push((performance.now() - start) * 1000)
        }
      }
    }
    return steps.map((step, which) => `| ${step.label} | ${fixed(median(samples[which]!))} |`)
  })

const stepsOf = (
  sql: SqlClient.SqlClient,
  store: IdempotencyStore.IdempotencyStoreShape,
  parent: Tracer.Span
): ReadonlyArray<Step> => {
  const owner = "bench-owner"
  const hour = 3_600_000
  const encoded = JSON.stringify(Schema.encodeSync(Variants.Answer)(Variants.answer))
  const span = Effect.void.pipe(Effect.withSpan("Bench.span", { attributes: { "idempotency.key": "k" } }))
  const counter = Metric.counter("effect_idempotency_bench_total", { incremental: true })
  const claimedCounter = Metric.tagged(counter, "outcome", "claimed")
  const claimedLabels = [MetricLabel.make("outcome", "claimed")]
  const heartbeat = Effect.sleep(Duration.minutes(100)).pipe(Effect.forever)
  const later = Effect.promise(() => Promise.resolve(Variants.answer))
  const freshCall = (
    index: number,
    options: { readonly heartbeat?: Duration.DurationInput },
    action: Effect.Effect<typeof Variants.Answer.Type> = Effect.succeed(Variants.answer)
  ) =>
    Idempotency.execute(action, {
      key: `profile:fresh:${index}:${action === later ? "later" : "now"}`,
      request: Variants.request,
      success: Variants.Answer,
      ...options
    })
  const replayCall = Idempotency.execute(Effect.succeed(Variants.answer), {
    key: "bench:seed:0",
    request: Variants.request,
    success: Variants.Answer
  })

  return [
    { label: "IdempotencyKey.validate", run: () => IdempotencyKey.validate("chatmsg:conv_782:msg_991") },
    { label: "Fingerprint.hashEffect(request)", run: () => Fingerprint.hashEffect(Variants.request) },
    { label: "crypto.randomUUID (owner token)", run: () => Effect.sync(() => globalThis.crypto.randomUUID()) },
    { label: "Clock.currentTimeMillis", run: () => Clock.currentTimeMillis },
    {
      label: "Schema.encode(Answer) + JSON.stringify",
      run: () => Effect.map(Schema.encodeUnknown(Variants.Answer)(Variants.answer), (value) => JSON.stringify(value))
    },
    {
      label: "JSON.parse + Schema.decode(Answer)",
      run: () =>
        Effect.flatMap(
          Effect.sync(() => JSON.parse(encoded) as unknown),
          Schema.decodeUnknown(Variants.Answer)
        )
    },
    { label: "Effect.withSpan, built once (one span, one attribute)", run: () => span },
    {
      label: "Effect.withSpan, built per call (captures a stack trace)",
      run: () => Effect.void.pipe(Effect.withSpan("Bench.span", { attributes: { "idempotency.key": "k" } }))
    },
    {
      label: "Effect.withSpan, built per call, captureStackTrace: false",
      run: () =>
        Effect.void.pipe(
          Effect.withSpan("Bench.span", { attributes: { "idempotency.key": "k" }, captureStackTrace: false })
        )
    },
    {
      label: "annotateCurrentSpan + Metric.increment(Metric.tagged(...)), in a span",
      run: () =>
        Effect.annotateCurrentSpan("idempotency.outcome", "claimed").pipe(
          Effect.zipRight(Metric.increment(Metric.tagged(counter, "outcome", "claimed"))),
          Effect.withParentSpan(parent)
        )
    },
    {
      label: "Metric.increment(Metric.tagged(...)) alone",
      run: () => Metric.increment(Metric.tagged(counter, "outcome", "claimed"))
    },
    { label: "Metric.increment(counter tagged once, up front)", run: () => Metric.increment(claimedCounter) },
    {
      label: "counter.unsafeUpdate with one label array for good (as the engine counts)",
      run: () => Effect.sync(() => counter.unsafeUpdate(1, claimedLabels))
    },
    {
      label: "annotateCurrentSpan alone, in a span",
      run: () => Effect.withParentSpan(Effect.annotateCurrentSpan("idempotency.outcome", "claimed"), parent)
    },
    {
      label: "Effect.raceFirst(either(succeed), sleep-forever) (heartbeat race)",
      run: () => Effect.raceFirst(Effect.either(Effect.succeed(1)), heartbeat)
    },
    {
      label: "Effect.fork(succeed) + Fiber.await (one forked fiber)",
      run: () => Effect.flatMap(Effect.fork(Effect.succeed(1)), Fiber.await)
    },
    {
      label: "fork a sleeping fiber + Fiber.interrupt (a heartbeat's life)",
      run: () => Effect.flatMap(Effect.fork(heartbeat), Fiber.interrupt)
    },
    { label: "Effect.uninterruptibleMask(restore(succeed))", run: () => Effect.uninterruptibleMask((r) => r(span)) },
    {
      label: "store.claim, fresh key (INSERT ... RETURNING)",
      run: (index) =>
        store.claim({
          key: `profile:claim:${index}`,
          requestHash: "h",
          owner,
          now: 1,
          leaseExpiresAt: hour,
          expiresAt: 24 * hour
        })
    },
    {
      label: "store.claim + store.complete, fresh key",
      run: (index) =>
        Effect.zipRight(
          store.claim({
            key: `profile:complete:${index}`,
            requestHash: "h",
            owner,
            now: 1,
            leaseExpiresAt: hour,
            expiresAt: 24 * hour
          }),
          store.complete({ key: `profile:complete:${index}`, owner, now: 2, response: encoded })
        )
    },
    {
      label: "store.claim, stored key (no-op INSERT + SELECT)",
      run: () =>
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) =>
            store.claim({
              key: "bench:seed:0",
              requestHash: "h",
              owner,
              now,
              leaseExpiresAt: now + hour,
              expiresAt: now + 24 * hour
            })
          )
        )
    },
    {
      label: "store.get, stored key (one SELECT)",
      run: () => Effect.flatMap(Clock.currentTimeMillis, (now) => store.get("bench:seed:0", now))
    },
    {
      label: "sql`SELECT * ... WHERE idem_key = ?` (the (e) baseline)",
      run: () => sql`SELECT * FROM ${sql(Variants.libraryTable)} WHERE idem_key = ${"bench:seed:0"}`
    },
    { label: "execute, fresh, defaults (= (a))", run: (index) => freshCall(index, {}) },
    {
      label: "execute, fresh, heartbeats on (every 100 s, a third of the default lease)",
      run: (index) => freshCall(index, { heartbeat: "100 seconds" })
    },
    { label: "execute, fresh, asynchronous action, defaults (= (g))", run: (index) => freshCall(index, {}, later) },
    {
      label: "execute, fresh, asynchronous action, heartbeats on",
      run: (index) => freshCall(index, { heartbeat: "100 seconds" }, later)
    },
    {
      label: "execute, fresh, memory store",
      run: (index) => Effect.provide(freshCall(index, {}), IdempotencyStore.layerMemory)
    },
    {
      label: "(memory store layer build alone, for the row above)",
      run: () => Effect.provide(IdempotencyStore.IdempotencyStore, IdempotencyStore.layerMemory)
    },
    {
      label: "replay floor: validate + hash + store.get + decode (public pieces, no engine)",
      run: () =>
        Effect.gen(function* () {
          const key = yield* IdempotencyKey.validate("bench:seed:0")
          const requestHash = yield* Fingerprint.hashEffect(Variants.request)
          const now = yield* Clock.currentTimeMillis
          const record = yield* store.get(key, now)
          if (Option.isNone(record) || record.value.requestHash !== requestHash) {
            return yield* Effect.dieMessage("the seeded record is missing or differs")
          }
          const json = Option.getOrElse(record.value.response, () => "null")
          return yield* Schema.decodeUnknown(Variants.Answer)(JSON.parse(json))
        })
    },
    { label: "execute, replay (= (d))", run: () => replayCall }
  ]
}

const main = Effect.gen(function* () {
  countStatements()
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-idempotency-profile-"))),
    (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
  )
  const layer = IdempotencyStore.layerSql().pipe(
    Layer.provideMerge(SqliteClient.layer({ filename: join(dir, "effect.db") }))
  )

  const lines = yield* Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* IdempotencyStore.IdempotencyStore
    const ddl = yield* Variants.copySchema(sql)
    const memory = new Database(":memory:")
    for (const text of ddl) memory.exec(text)
    const raw = Variants.rawStatements(memory)
    yield* Variants.seed(["bench:seed:0"], raw)
    const variant = (id: Variants.VariantId) => Variants.variants(sql, raw).find((each) => each.id === id)!.op
    const effectOf = (op: Variants.Op, key: string) =>
      op._tag === "Effect" ? op.run(key) : Effect.sync(() => op.run(key))

    const shapes = [
      ...(yield* shapeOf("(a) execute, fresh key", (i) => effectOf(variant("a"), `profile:shape:a:${i}`))),
      ...(yield* shapeOf("(b) hand-written, fresh key", (i) => effectOf(variant("b"), `profile:shape:b:${i}`))),
      ...(yield* shapeOf("(d) execute, replay", () => effectOf(variant("d"), "bench:seed:0"))),
      ...(yield* shapeOf("(e) one SELECT", () => effectOf(variant("e"), "bench:seed:0"))),
      ...(yield* shapeOf("(g) execute, fresh key, asynchronous action", (i) =>
        effectOf(variant("g"), `profile:shape:g:${i}`)
      )),
      ...(yield* shapeOf("(h) hand-written, asynchronous action", (i) =>
        effectOf(variant("h"), `profile:shape:h:${i}`)
      ))
    ]

    const parent = yield* Effect.makeSpan("Bench.parent")
    const steps = yield* timeSteps(stepsOf(sql, store, parent))
    return [
      "## One call, counted",
      "",
      ...shapes,
      "",
      `## Hot-path steps timed alone (median us, ${rounds} rounds x ${perRound} ops, interleaved)`,
      "",
      "| step | median us |",
      "| --- | --- |",
      ...steps
    ]
  }).pipe(Effect.provide(layer))

  yield* Console.log(lines.join("\n"))
})

NodeRuntime.runMain(Effect.scoped(main))
