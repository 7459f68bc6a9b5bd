/**
 * Turns the samples into the Markdown the run prints (and docs/benchmarks.md quotes).
 */
import type { Machine } from "./machine.js"
import { fixed, quantile, sorted, summarize } from "./stats.js"
import type { Variant, VariantId } from "./variants.js"

export interface Measured {
  readonly variants: ReadonlyArray<Variant>
  readonly samples: ReadonlyMap<VariantId, ReadonlyArray<number>>
  /** Each round's median per variant, for the spread of the ratios across rounds. */
  readonly roundMedians: ReadonlyMap<VariantId, ReadonlyArray<number>>
  readonly rounds: number
  readonly batch: number
  readonly warmup: number
  readonly seconds: number
  readonly loadBefore: string
  readonly loadAfter: string
  readonly sqlite: { readonly version: string; readonly journal: string; readonly synchronous: number }
  readonly gc: boolean
}

interface Ratio {
  readonly over: VariantId
  readonly under: VariantId
  readonly what: string
  readonly target: number | undefined
}

const ratios: ReadonlyArray<Ratio> = [
  { over: "a", under: "b", what: "fresh: execute / hand-written @effect/sql", target: 1.5 },
  { over: "d", under: "e", what: "replay: execute / one @effect/sql PK SELECT", target: 2 },
  { over: "g", under: "h", what: "fresh, asynchronous action: execute / hand-written", target: 1.5 },
  { over: "a", under: "c", what: "fresh: execute / raw better-sqlite3", target: undefined },
  { over: "d", under: "f", what: "replay: execute / raw better-sqlite3 SELECT", target: undefined },
  { over: "b", under: "c", what: "fresh: @effect/sql / raw (cost of the SQL layer)", target: undefined },
  { over: "e", under: "f", what: "SELECT: @effect/sql / raw (cost of the SQL layer)", target: undefined }
]

const synchronousNames = ["OFF", "NORMAL", "FULL", "EXTRA"]

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n")

export const report = (machine: Machine, measured: Measured): string => {
  const medians = new Map<VariantId, number>()
  const fastest = new Map<VariantId, number>()
  const rows = measured.variants.map((variant) => {
    const summary = summarize(measured.samples.get(variant.id) ?? [])
    medians.set(variant.id, summary.median)
    fastest.set(variant.id, summary.p10)
    return [
      `(${variant.id})`,
      variant.label,
      fixed(summary.median),
      fixed(summary.p10),
      fixed(summary.p90),
      String(summary.count)
    ]
  })

  const ratioRows = ratios
    .filter((ratio) => medians.has(ratio.over) && medians.has(ratio.under))
    .map((ratio) => {
      const value = medians.get(ratio.over)! / medians.get(ratio.under)!
      const over = measured.roundMedians.get(ratio.over)!
      const under = measured.roundMedians.get(ratio.under)!
      const perRound = sorted(over.map((median, round) => median / under[round]!))
      const verdict = ratio.target === undefined ? "" : value <= ratio.target ? "met" : "MISSED"
      return [
        `${ratio.over}/${ratio.under}`,
        ratio.what,
        fixed(value, 2),
        `${fixed(quantile(perRound, 0.1), 2)} to ${fixed(quantile(perRound, 0.9), 2)}`,
        fixed(medians.get(ratio.over)! - medians.get(ratio.under)!),
        fixed(fastest.get(ratio.over)! / fastest.get(ratio.under)!, 2),
        ratio.target === undefined ? "" : `<= ${ratio.target}`,
        verdict
      ]
    })

  const sqlite = measured.sqlite
  return [
    "## effect-idempotency benchmark: Idempotency.execute on the SQLite store",
    "",
    `- machine: Node ${machine.node}, CPU ${machine.cpu}, ${machine.cores} cores; ` +
      `load average (1/5/15 min) ${measured.loadBefore} before, ${measured.loadAfter} after`,
    `- stack: effect ${machine.effect}, @effect/sql ${machine.sql}, @effect/sql-sqlite-node ${machine.sqliteNode}, ` +
      `better-sqlite3 ${machine.betterSqlite3}, SQLite ${sqlite.version} ` +
      `(journal_mode ${sqlite.journal}, synchronous ${synchronousNames[sqlite.synchronous] ?? sqlite.synchronous})`,
    `- run: ${measured.warmup} warm-up rounds, then ${measured.rounds} rounds x ${measured.batch} ops per variant, ` +
      `interleaved, order rotated each round, ${fixed(measured.seconds)} s measured` +
      (measured.gc ? "; full GC before each batch" : ""),
    "",
    table(["", "variant", "median us", "p10 us", "p90 us", "ops"], rows),
    "",
    table(["ratio", "what", "of medians", "per-round p10 to p90", "difference us", "of p10s", "target", ""], ratioRows),
    ""
  ].join("\n")
}
