/**
 * Summarises a V8 CPU profile (from `node --cpu-prof`): self time per source file and per function, and
 * total time (self plus callees) of this project's own functions, for the synchronous work under them.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof node_modules/.bin/vite-node bench/run.ts --only a --rounds 30
 *   node_modules/.bin/vite-node bench/hotspots.ts /tmp/prof/<file>.cpuprofile
 */
import { readFileSync } from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** `.../node_modules/effect/dist/esm/internal/fiberRuntime.js` reads as `effect/internal/fiberRuntime.js`. */
const shortFile = (url: string): string => {
  if (url === "") return "(native / VM)"
  const modules = url.lastIndexOf("node_modules/")
  const path = modules === -1 ? url.replace(/^.*\/work\/main\//, "") : url.slice(modules + "node_modules/".length)
  return path.replace("/dist/esm/", "/").replace("/dist/cjs/", "/")
}

const top = (totals: Map<string, number>, all: number, count: number): Array<string> =>
  [...totals]
    .sort((left, right) => right[1] - left[1])
    .slice(0, count)
    .map(([name, micros]) => `| ${((micros / all) * 100).toFixed(1)}% | ${name} |`)

const path = process.argv.slice(2).find((argument) => argument.endsWith(".cpuprofile"))
if (path === undefined) throw new Error("give the path of a .cpuprofile file")

const profile = JSON.parse(readFileSync(path, "utf8")) as Profile
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parentOf = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
const byFile = new Map<string, number>()
const byFunction = new Map<string, number>()
const ownTotal = new Map<string, number>()
let all = 0

const nameOf = (node: ProfileNode): string =>
  `${node.callFrame.functionName || "(anonymous)"} ${shortFile(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`

/** Adds `delta` once to every project function on the sample's stack. */
const addTotals = (leaf: number, delta: number): void => {
  const seen = new Set<string>()
  for (let id: number | undefined = leaf; id !== undefined; id = parentOf.get(id)) {
    const node = byId.get(id)!
    if (!/\/work\/main\/(src|bench)\//.test(node.callFrame.url)) continue
    const name = nameOf(node)
    if (seen.has(name)) continue
    seen.add(name)
    ownTotal.set(name, (ownTotal.get(name) ?? 0) + delta)
  }
}

profile.samples.forEach((id, index) => {
  const node = byId.get(id)!
  const delta = profile.timeDeltas[index] ?? 0
  if (node.callFrame.functionName === "(idle)") return
  all += delta
  const file = shortFile(node.callFrame.url)
  const name = nameOf(node)
  addTotals(id, delta)
  byFile.set(file, (byFile.get(file) ?? 0) + delta)
  byFunction.set(name, (byFunction.get(name) ?? 0) + delta)
})

process.stdout.write(
  [
    `busy ${(all / 1000).toFixed(0)} ms`,
    "",
    "| self | file |",
    "| --- | --- |",
    ...top(byFile, all, 25),
    "",
    "| self | function |",
    "| --- | --- |",
    ...top(byFunction, all, 40),
    "",
    "| total | project function |",
    "| --- | --- |",
    ...top(ownTotal, all, 30),
    ""
  ].join("\n")
)
