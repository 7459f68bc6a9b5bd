/**
 * Guards against assertions that cannot fail.
 *
 * chai's deep equality (the `assert` re-exported by `@effect/vitest`, and `expect(...).to.deep` / `.eql`) uses
 * deep-eql, which cannot tell `Option.none()` from `Option.some(x)`: when the key counts differ it compares the
 * values' iterator entries, and every Option yields exactly one `YieldWrap`. It also compares errors by name,
 * message and code only, so two same-named errors with different fields are "equal". chai's `assert.equal` is
 * `==` (`1 == "1"`, `null == undefined`), and vitest's `toEqual` ignores properties whose value is undefined.
 * Tests and the store conformance suite use `deepStrictEqual`, `strictEqual`, `assertTrue`... from
 * `@effect/vitest/utils` (node:assert) instead; this file fails, naming file:line, when one of those holes is
 * written again.
 */
import { describe, it } from "@effect/vitest"
import { deepStrictEqual, throws } from "@effect/vitest/utils"
import { Option } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Rule {
  readonly name: string
  readonly pattern: RegExp
  readonly instead: string
}

const rules: ReadonlyArray<Rule> = [
  {
    name: "chai deep equality",
    pattern: /\bassert\.\w*[dD]eep\w*\(/,
    instead: "deepStrictEqual / notDeepStrictEqual from @effect/vitest/utils"
  },
  {
    name: "chai loose equality (==)",
    pattern: /\bassert\.(?:equal|notEqual)\(/,
    instead: "strictEqual from @effect/vitest/utils, or chai's assert.notStrictEqual"
  },
  {
    name: "chai deep equality in an expect chain",
    pattern: /\.deep\.|\.eql\(/,
    instead: "deepStrictEqual from @effect/vitest/utils"
  },
  {
    name: "toEqual, which ignores undefined properties",
    pattern: /\.toEqual\(/,
    instead: "deepStrictEqual from @effect/vitest/utils"
  },
  {
    name: "renamed or destructured chai assert",
    pattern: /\bassert as \w+|\}\s*=\s*assert\b/,
    instead: "import the helpers from @effect/vitest/utils by name"
  }
]

/** This file names the holes in its own sample, so it is the one file not scanned. */
const self = "test/honesty.test.ts"

const filesUnder = (directory: string): ReadonlyArray<string> =>
  readdirSync(join(root, directory), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => `${directory}/${name}`)

const scannedFiles = (): ReadonlyArray<string> =>
  [...filesUnder("test"), ...filesUnder("src/testing"), "src/internal/storeConformance.ts"]
    .filter((file) => file !== self)
    .sort()

const findHoles = (text: string): ReadonlyArray<{ readonly line: number; readonly rule: Rule }> =>
  text
    .split("\n")
    .flatMap((content, index) =>
      rules.filter((rule) => rule.pattern.test(content)).map((rule) => ({ line: index + 1, rule }))
    )

const holesIn = (file: string): ReadonlyArray<string> =>
  findHoles(readFileSync(join(root, file), "utf8")).map(
    ({ line, rule }) => `${file}:${line}: ${rule.name}; use ${rule.instead}`
  )

describe("assertion honesty", () => {
  it("no test, fixture or conformance case uses an assertion that cannot tell Effect values apart", () => {
    const found = scannedFiles().flatMap(holesIn)

    deepStrictEqual(found, [])
  })

  it("the scanner flags each hole and lets the replacements through", () => {
    const sample = [
      "assert.deepStrictEqual(a, b)",
      "assert.deepEqual(a, b)",
      "assert.notDeepStrictEqual(a, b)",
      "assert.sameDeepMembers(a, b)",
      "assert.equal(a, b)",
      "expect(a).to.deep.equal(b)",
      "expect(a).to.eql(b)",
      "expect(a).toEqual(b)",
      'import { assert as chai } from "@effect/vitest"',
      "const { deepEqual } = assert",
      "deepStrictEqual(a, b)",
      "notDeepStrictEqual(a, b)",
      "strictEqual(a, b)",
      "assert.strictEqual(a, b)",
      "assert.notStrictEqual(a, b)",
      "expect(a).toStrictEqual(b)",
      'assert.include(message, "key")'
    ].join("\n")

    deepStrictEqual(
      findHoles(sample).map(({ line, rule }) => [line, rule.name]),
      [
        [1, "chai deep equality"],
        [2, "chai deep equality"],
        [3, "chai deep equality"],
        [4, "chai deep equality"],
        [5, "chai loose equality (==)"],
        [6, "chai deep equality in an expect chain"],
        [7, "chai deep equality in an expect chain"],
        [8, "toEqual, which ignores undefined properties"],
        [9, "renamed or destructured chai assert"],
        [10, "renamed or destructured chai assert"]
      ]
    )
  })

  it("the replacement tells Option.none() from Option.some(1)", () => {
    throws(() => deepStrictEqual<Option.Option<number>>(Option.none(), Option.some(1)))
  })
})
