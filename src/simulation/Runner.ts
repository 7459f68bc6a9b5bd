/**
 * The two runners of the simulation: the idempotent way and the naive way, over the same workload, the same
 * retry policy and the same seeded provider faults. Each run starts its own provider (so its ledger counts
 * only that run) and its own HTTP connection pool.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Duration, Effect, Layer, Random, Redacted, Schedule } from "effect"
import type { Scope } from "effect"
import { randomUUID } from "node:crypto"
import * as AiClient from "../AiClient.js"
import * as CallError from "../CallError.js"
import * as ChatCompletion from "../ChatCompletion.js"
import * as DeadLetterQueue from "../DeadLetterQueue.js"
import * as Idempotency from "../Idempotency.js"
import type { IdempotencyStore } from "../IdempotencyStore.js"
import * as RetryPolicy from "../RetryPolicy.js"
import * as Ledger from "./Ledger.js"
import * as Outputs from "./Outputs.js"
import * as Provider from "./Provider.js"
import * as Report from "./Report.js"
import type { Action, Delivery } from "./Workload.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  readonly deliveries: ReadonlyArray<Delivery>
  readonly concurrency: number
  readonly faultRate: number
  readonly seed: number
  readonly costPerCall: number
  readonly actionsPerMonth: number
  /**
   * Time the client allows each attempt. Default 3 seconds: the provider answers within milliseconds, but the
   * provider, both clients and SQLite share one event loop, and a loaded machine must not turn queueing into
   * timeouts (that would make a seeded run irreproducible).
   */
  readonly attemptTimeout?: Duration.DurationInput | undefined
  /** The retry policy both runners use. Default `RetryPolicy.make()`. */
  readonly retry?: Schedule.Schedule<unknown, CallError.CallError> | undefined
  /** Called after each delivery finishes. */
  readonly onProgress?: ((done: number, total: number) => Effect.Effect<void>) | undefined
  /** Provider options beyond the fault rate and seed (latency, fault kinds), for tests. */
  readonly provider?: Omit<Provider.Options, "faultRate" | "seed"> | undefined
}

/**
 * What can stop a run (as opposed to one action failing, which is a dead letter): the database, the
 * idempotency store or the dead-letter queue failing, or the provider not starting.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunError =
  | SqlError
  | Provider.ProviderStartError
  | Provider.InvalidProviderOptions
  | DeadLetterQueue.DeadLetterQueueError
  | Idempotency.ExecuteError

/** The API key the simulated client sends and the simulated provider expects. */
const simulationApiKey = "sk-simulation"

interface Harness {
  readonly provider: Provider.Provider
  readonly client: AiClient.AiClientShape
  readonly policy: Schedule.Schedule<unknown, CallError.CallError>
  readonly attempts: () => number
  /** HTTP requests sent so far for one action. */
  readonly attemptsOf: (actionId: string) => number
  readonly retriesByReason: () => Record<string, number>
  readonly delivered: Array<readonly [string, string]>
  readonly latencies: Array<number>
}

/**
 * A provider, an HTTP client that counts requests, and a retry policy that counts retries by reason.
 * `clientRetries` says whether the `AiClient` itself retries (the idempotent way) or leaves retries to the
 * runner (the naive way, which needs a new key per attempt).
 */
const harness = (
  options: RunOptions,
  clientRetries: boolean
): Effect.Effect<Harness, Provider.ProviderStartError | Provider.InvalidProviderOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const provider = yield* Provider.make({
      ...options.provider,
      faultRate: options.faultRate,
      seed: options.seed,
      apiKey: simulationApiKey
    })

    let attempts = 0
    const perAction = new Map<string, number>()
    const reasons: Record<string, number> = {}
    // The retryable check goes inside, so that only decisions that really lead to another attempt are counted.
    const retryable: Schedule.Schedule<unknown, CallError.CallError> = Schedule.whileInput(
      options.retry ?? RetryPolicy.make(),
      CallError.isRetryable
    )
    const policy = Schedule.passthrough(retryable).pipe(
      Schedule.onDecision((error, decision) =>
        Effect.sync(() => {
          if (decision._tag === "Continue") reasons[error._tag] = (reasons[error._tag] ?? 0) + 1
        })
      )
    )

    const countingHttp = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(
        HttpClient.HttpClient,
        HttpClient.tapRequest((request) =>
          Effect.sync(() => {
            attempts += 1
            const action = request.headers[Provider.actionHeader] ?? ""
            perAction.set(action, (perAction.get(action) ?? 0) + 1)
          })
        )
      )
    ).pipe(Layer.provide(NodeHttpClient.layerUndici))
    const clientLayer = AiClient.layer({
      baseUrl: provider.baseUrl,
      apiKey: Redacted.make(simulationApiKey),
      timeout: options.attemptTimeout ?? Duration.seconds(3),
      retry: clientRetries ? policy : Schedule.stop
    }).pipe(Layer.provide(countingHttp))
    const context = yield* Layer.build(clientLayer)

    return {
      provider,
      client: Context.get(context, AiClient.AiClient),
      policy,
      attempts: () => attempts,
      attemptsOf: (actionId) => perAction.get(actionId) ?? 0,
      retriesByReason: () => ({ ...reasons }),
      delivered: [],
      latencies: []
    }
  })

const summarise = (
  runner: Report.Runner,
  options: RunOptions,
  h: Harness,
  deadLetters: number,
  durationMs: number
): Effect.Effect<Report.RunReport, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const ledger = yield* h.provider.ledger

    yield* Ledger.save(runner, ledger)

    const executions = yield* Ledger.executionsPerAction(runner)

    const rows = yield* Outputs.rowsPerAction(runner)

    const actionIds = new Set(options.deliveries.map((d) => d.action.id))
    const actions = actionIds.size
    const answered = new Set(h.delivered.map(([actionId]) => actionId))
    let billedButUndelivered = 0
    for (const [actionId, count] of executions) {
      if (!answered.has(actionId)) billedButUndelivered += count
    }
    const duplicateBillableEvents = Report.beyondFirst(executions.values())
    const retriesByReason = h.retriesByReason()
    const wastedCostUsd = Report.cents(duplicateBillableEvents * options.costPerCall)
    return {
      runner,
      actions,
      deliveries: options.deliveries.length,
      attempts: h.attempts(),
      retries: Object.values(retriesByReason).reduce((a, b) => a + b, 0),
      retriesByReason,
      billableEvents: ledger.length,
      duplicateBillableEvents,
      duplicateOutputs: Report.beyondFirst(Report.distinctPerGroup(h.delivered).values()),
      duplicateRows: Report.beyondFirst(rows.values()),
      deadLetters,
      billedButUndelivered,
      undeliveredCostUsd: Report.cents(billedButUndelivered * options.costPerCall),
      wastedCostUsd,
      wastedCostPerMonthUsd:
        actions === 0
          ? 0
          : Report.cents((duplicateBillableEvents * options.costPerCall * options.actionsPerMonth) / actions),
      latencyP50Ms: Report.percentile(h.latencies, 50),
      latencyP99Ms: Report.percentile(h.latencies, 99),
      durationMs
    }
  })

const drive = <E, R>(
  options: RunOptions,
  h: Harness,
  deliver: (delivery: Delivery) => Effect.Effect<void, E, R>
): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    let done = 0
    const total = options.deliveries.length

    yield* Effect.forEach(
      options.deliveries,
      (delivery) =>
        Effect.gen(function* () {
          const start = yield* Clock.currentTimeMillis

          yield* deliver(delivery)

          const end = yield* Clock.currentTimeMillis
          h.latencies.push(end - start)
          done += 1
          if (options.onProgress !== undefined) yield* options.onProgress(done, total)
        }),
      { concurrency: options.concurrency, discard: true }
    )
  })

const writeOutput = (runner: Report.Runner, actionId: string, completion: ChatCompletion.ChatCompletion) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Outputs.insert(runner, { actionId, completion, now }))

/** A call that finally failed goes to the dead-letter queue, once per key however often it fails. */
const deadLetter = (h: Harness, action: Action, error: CallError.CallError) =>
  DeadLetterQueue.add({ key: action.key, request: action.request, error, attempts: h.attemptsOf(action.id) })

const countDeadLetters = Effect.map(DeadLetterQueue.list(), (entries) => entries.length)

/**
 * The idempotent way: per action one key `chatmsg:<conversation>:<message>`; `Idempotency.execute` around the
 * client call (retried under that key) and the output row, on the `IdempotencyStore` in context, waiting for
 * a delivery of the same action that is still running. An action whose call finally fails goes to the
 * `DeadLetterQueue` in context.
 *
 * @since 0.1.0
 * @category runners
 */
export const runIdempotent = (
  options: RunOptions
): Effect.Effect<
  Report.RunReport,
  RunError,
  SqlClient.SqlClient | IdempotencyStore | DeadLetterQueue.DeadLetterQueue
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const h = yield* harness(options, true)

      yield* Outputs.reset("idempotent")

      yield* drive(options, h, ({ action }) =>
        h.client
          .createChatCompletion(action.request, {
            idempotencyKey: action.key,
            headers: { [Provider.actionHeader]: action.id }
          })
          .pipe(
            Effect.tap((completion) => writeOutput("idempotent", action.id, completion)),
            Idempotency.execute({
              key: action.key,
              request: action.request,
              success: ChatCompletion.ChatCompletion,
              onInProgress: "wait"
            }),
            Effect.flatMap((completion) => Effect.sync(() => h.delivered.push([action.id, completion.id]))),
            Effect.catchIf(CallError.isCallError, (error) => deadLetter(h, action, error))
          )
      )

      const deadLetters = yield* countDeadLetters
      const finished = yield* Clock.currentTimeMillis
      return yield* summarise("idempotent", options, h, deadLetters, finished - started)
    })
  ).pipe(Effect.withRandom(Random.make(options.seed)), Effect.withSpan("Simulation.runIdempotent"))

/**
 * The naive way: the same client and retry policy, but every attempt gets a fresh key (as good as none), no
 * idempotency store, and every delivery (redeliveries included) writes its answer. Dead letters go to a queue
 * in memory, one per action as for the idempotent way.
 *
 * @since 0.1.0
 * @category runners
 */
export const runNaive = (options: RunOptions): Effect.Effect<Report.RunReport, RunError, SqlClient.SqlClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const h = yield* harness(options, false)

      yield* Outputs.reset("naive")

      yield* drive(options, h, ({ action }) =>
        Effect.suspend(() =>
          h.client.createChatCompletion(action.request, {
            idempotencyKey: randomUUID(),
            headers: { [Provider.actionHeader]: action.id }
          })
        ).pipe(
          Effect.retry({ schedule: h.policy, while: CallError.isRetryable }),
          Effect.tap((completion) => writeOutput("naive", action.id, completion)),
          Effect.flatMap((completion) => Effect.sync(() => h.delivered.push([action.id, completion.id]))),
          Effect.catchIf(CallError.isCallError, (error) => deadLetter(h, action, error))
        )
      )

      const deadLetters = yield* countDeadLetters
      const finished = yield* Clock.currentTimeMillis
      return yield* summarise("naive", options, h, deadLetters, finished - started)
    })
  ).pipe(
    Effect.provide(DeadLetterQueue.layerMemory()),
    Effect.withRandom(Random.make(options.seed)),
    Effect.withSpan("Simulation.runNaive")
  )
