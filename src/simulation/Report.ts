/**
 * What a simulation run measured, and how it is shown: the side-by-side table and the JSON report.
 *
 * @since 0.1.0
 */

/**
 * Which way a run called the provider.
 *
 * - `"idempotent"`: one stable key per business action, `Idempotency.execute` over the SQLite store, the
 *   client's retries under that key.
 * - `"naive"`: what a typical application does: the same retry policy, but a fresh key on every attempt and no
 *   idempotency store, so a retry after an unanswered request and a redelivered message both run the model
 *   again.
 *
 * @since 0.1.0
 * @category models
 */
export type Runner = "idempotent" | "naive"

/**
 * The figures of one run.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunReport {
  readonly runner: Runner
  /** Distinct business actions. */
  readonly actions: number
  /** Hand-overs of actions to the runner (actions plus redeliveries). */
  readonly deliveries: number
  /** HTTP requests sent to the provider. */
  readonly attempts: number
  /** Attempts that were followed by another attempt of the same call. */
  readonly retries: number
  /** `retries`, by the `_tag` of the error that caused each. */
  readonly retriesByReason: Readonly<Record<string, number>>
  /** Executions the provider billed. */
  readonly billableEvents: number
  /** Billed executions per action beyond the first. */
  readonly duplicateBillableEvents: number
  /** Distinct completion ids handed to the caller per action beyond the first. */
  readonly duplicateOutputs: number
  /** Rows in the run's outputs table per action beyond the first. */
  readonly duplicateRows: number
  /** Actions whose retries ran out (or hit a fatal error) and went to the dead-letter queue. */
  readonly deadLetters: number
  /**
   * Billed executions of actions that never delivered an answer (they ended in the dead-letter queue): paid
   * for, but nothing to show for it. Counted apart from `duplicateBillableEvents`.
   */
  readonly billedButUndelivered: number
  /** `billedButUndelivered × costPerCall`. */
  readonly undeliveredCostUsd: number
  /** `duplicateBillableEvents × costPerCall`. */
  readonly wastedCostUsd: number
  /** `wastedCostUsd` scaled to `actionsPerMonth` actions. */
  readonly wastedCostPerMonthUsd: number
  /** Median time from delivery to answer (or to giving up), in milliseconds. */
  readonly latencyP50Ms: number
  /** 99th percentile of the same. */
  readonly latencyP99Ms: number
  /** Wall time of the whole run, in milliseconds. */
  readonly durationMs: number
}

/**
 * The settings a report was produced with.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly actions: number
  readonly concurrency: number
  readonly faultRate: number
  readonly redeliveryRate: number
  readonly seed: number
  /** The SQLite file the run wrote (only a file `simulate` created is ever reset). */
  readonly db: string
  /** Where the requests came from: a path, or how many were generated. */
  readonly requests: string
  readonly costPerCall: number
  readonly actionsPerMonth: number
}

/**
 * Both runs of one simulation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly settings: Settings
  readonly idempotent: RunReport
  readonly naive: RunReport
}

/**
 * How many items of each group there are beyond the first: `[1, 3, 2]` gives 3.
 *
 * @since 0.1.0
 * @category measures
 */
export const beyondFirst = (counts: Iterable<number>): number => {
  let total = 0
  for (const count of counts) {
    total += Math.max(0, count - 1)
  }
  return total
}

/**
 * Counts of distinct values per group.
 *
 * @since 0.1.0
 * @category measures
 */
export const distinctPerGroup = (pairs: Iterable<readonly [group: string, value: string]>): Map<string, number> => {
  const sets = new Map<string, Set<string>>()
  for (const [group, value] of pairs) {
    const set = sets.get(group) ?? new Set<string>()
    set.add(value)
    sets.set(group, set)
  }
  return new Map([...sets].map(([group, set]) => [group, set.size]))
}

/**
 * Nearest-rank percentile (`p` in (0, 100]) of `values`; 0 for no values.
 *
 * @since 0.1.0
 * @category measures
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) {
    return 0
  }
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/**
 * Rounds a dollar amount to cents (avoids `0.30000000000000004` in the JSON report).
 *
 * @since 0.1.0
 * @category measures
 */
export const cents = (usd: number): number => Math.round(usd * 100) / 100

/**
 * Whether a run delivered exactly once everywhere it can be measured.
 *
 * @since 0.1.0
 * @category measures
 */
export const isClean = (run: RunReport): boolean =>
  run.duplicateBillableEvents === 0 && run.duplicateOutputs === 0 && run.duplicateRows === 0

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" })

const millis = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${integer.format(ms)} ms`)

const percent = (rate: number): string => `${Math.round(rate * 10000) / 100}%`

/** The last line of the table: whether the idempotent run was clean, and whether it delivered everything. */
const verdict = (run: RunReport): string => {
  if (!isClean(run)) {
    return "idempotent run: DUPLICATES FOUND (see above)."
  }
  if (run.deadLetters === 0) {
    return "idempotent run: no duplicate billing, outputs or rows."
  }
  return (
    `idempotent run: no duplicate billing, outputs or rows, but ${integer.format(run.deadLetters)} of ` +
    `${integer.format(run.actions)} actions FAILED and were dead-lettered.`
  )
}

/** A warning line when the idempotent run gave up on actions, naming what they cost and where they are. */
const deadLetterWarning = (run: RunReport, settings: Settings): ReadonlyArray<string> =>
  run.deadLetters === 0
    ? []
    : [
        `warning: the idempotent run dead-lettered ${integer.format(run.deadLetters)} of ` +
          `${integer.format(run.actions)} actions; ${integer.format(run.billedButUndelivered)} billable events ` +
          `(${money.format(run.undeliveredCostUsd)}) were paid for without an answer; ` +
          `see: effect-idempotency dlq list --db ${settings.db}`
      ]

/**
 * The report as the side-by-side table the CLI prints.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTable = (report: Report): string => {
  const { idempotent, naive, settings } = report
  const reasons = [
    ...new Set([...Object.keys(idempotent.retriesByReason), ...Object.keys(naive.retriesByReason)])
  ].sort()
  const rows: Array<readonly [string, string, string]> = [
    ["actions", integer.format(idempotent.actions), integer.format(naive.actions)],
    ["deliveries (incl. redeliveries)", integer.format(idempotent.deliveries), integer.format(naive.deliveries)],
    ["attempts (HTTP requests)", integer.format(idempotent.attempts), integer.format(naive.attempts)],
    ["retries", integer.format(idempotent.retries), integer.format(naive.retries)],
    ...reasons.map(
      (reason) =>
        [
          `  ${reason}`,
          integer.format(idempotent.retriesByReason[reason] ?? 0),
          integer.format(naive.retriesByReason[reason] ?? 0)
        ] as const
    ),
    ["billable events", integer.format(idempotent.billableEvents), integer.format(naive.billableEvents)],
    [
      "duplicate billable events",
      integer.format(idempotent.duplicateBillableEvents),
      integer.format(naive.duplicateBillableEvents)
    ],
    ["duplicate outputs", integer.format(idempotent.duplicateOutputs), integer.format(naive.duplicateOutputs)],
    ["duplicate rows", integer.format(idempotent.duplicateRows), integer.format(naive.duplicateRows)],
    ["dead letters", integer.format(idempotent.deadLetters), integer.format(naive.deadLetters)],
    [
      "billed but undelivered",
      integer.format(idempotent.billedButUndelivered),
      integer.format(naive.billedButUndelivered)
    ],
    [
      "cost of undelivered billing",
      money.format(idempotent.undeliveredCostUsd),
      money.format(naive.undeliveredCostUsd)
    ],
    [
      `wasted cost (at ${money.format(settings.costPerCall)}/call)`,
      money.format(idempotent.wastedCostUsd),
      money.format(naive.wastedCostUsd)
    ],
    [
      `wasted cost per ${integer.format(settings.actionsPerMonth)} actions/month`,
      money.format(idempotent.wastedCostPerMonthUsd),
      money.format(naive.wastedCostPerMonthUsd)
    ],
    ["latency p50", millis(idempotent.latencyP50Ms), millis(naive.latencyP50Ms)],
    ["latency p99", millis(idempotent.latencyP99Ms), millis(naive.latencyP99Ms)],
    ["run time", millis(idempotent.durationMs), millis(naive.durationMs)]
  ]
  const header = ["", "idempotent", "naive"] as const
  const first = Math.max(...[header, ...rows].map((row) => row[0].length))
  const second = Math.max(...[header, ...rows].map((row) => row[1].length))
  const third = Math.max(...[header, ...rows].map((row) => row[2].length))
  const line = (row: readonly [string, string, string]) =>
    `${row[0].padEnd(first)}  ${row[1].padStart(second)}  ${row[2].padStart(third)}`

  const title =
    `effect-idempotency simulate: ${integer.format(settings.actions)} actions, concurrency ${settings.concurrency}, ` +
    `fault rate ${percent(settings.faultRate)}, redelivery rate ${percent(settings.redeliveryRate)}, seed ${settings.seed}`
  return [
    title,
    `requests: ${settings.requests}; database: ${settings.db}`,
    "",
    line(header),
    ...rows.map(line),
    "",
    ...deadLetterWarning(idempotent, settings),
    verdict(idempotent)
  ].join("\n")
}

/**
 * The report as the JSON document written by `--json`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const toJson = (report: Report): string =>
  `${JSON.stringify({ settings: report.settings, idempotent: report.idempotent, naive: report.naive }, null, 2)}\n`
