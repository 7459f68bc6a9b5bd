/**
 * What the figures were measured on. A benchmark without its machine is a rumour.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { availableParallelism, loadavg } from "node:os"

export interface Machine {
  readonly node: string
  readonly cpu: string
  readonly cores: number
  readonly load: string
  readonly effect: string
  readonly sql: string
  readonly sqliteNode: string
  readonly betterSqlite3: string
}

const require = createRequire(import.meta.url)

const versionOf = (name: string): string => {
  try {
    return (require(`${name}/package.json`) as { readonly version: string }).version
  } catch {
    return "unknown"
  }
}

const cpuModel = (): string => {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((text) => text.startsWith("model name"))
    return line === undefined ? "unknown" : line.slice(line.indexOf(":") + 1).trim()
  } catch {
    return "unknown (no /proc/cpuinfo)"
  }
}

/** The 1, 5 and 15 minute load averages: how busy the shared machine was. */
export const loadAverage = (): string =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(" / ")

export const machine = (): Machine => ({
  node: process.version,
  cpu: cpuModel(),
  cores: availableParallelism(),
  load: loadAverage(),
  effect: versionOf("effect"),
  sql: versionOf("@effect/sql"),
  sqliteNode: versionOf("@effect/sql-sqlite-node"),
  betterSqlite3: versionOf("better-sqlite3")
})
