/**
 * The CLI end to end, in-process: `run(args)` is exactly what the `effect-idempotency` binary runs, with stdout
 * and stderr captured instead of written to the terminal.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { assertFalse, assertTrue, deepStrictEqual, strictEqual } from "@effect/vitest/utils"
import Database from "better-sqlite3"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { ConfigProvider, Duration, Effect, Layer, Option } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Main from "../../src/cli/main.js"
import type * as DeadLetterQueue from "../../src/DeadLetterQueue.js"
import * as Output from "../../src/cli/Output.js"
import * as Replay from "../../src/cli/replay.js"
import * as Provider from "../../src/simulation/Provider.js"

const runCli = (args: ReadonlyArray<string>, options: { readonly tty?: boolean } = {}) =>
  Effect.gen(function* () {
    const capture = { ...Output.makeCapture(), stderrIsTTY: options.tty === true }

    const code = yield* Main.run(args).pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Layer.succeed(Output.Output, capture)))
    )

    return { code, stdout: capture.out.join(""), stderr: capture.err.join("") }
  })

const tempDir = () => mkdtempSync(join(tmpdir(), "effect-idempotency-cli-"))

const progressLine = /^(idempotent|naive): \d+% \(\d+\/\d+ deliveries\)$/

describe("effect-idempotency simulate", () => {
  it.live(
    "runs both ways, prints progress and the table, writes the JSON report, and exits 0",
    () =>
      Effect.gen(function* () {
        const dir = tempDir()
        const db = join(dir, "sim.db")
        const json = join(dir, "report.json")

        const result = yield* runCli([
          "simulate",
          "--actions",
          "40",
          "--concurrency",
          "8",
          "--seed",
          "3",
          "--db",
          db,
          "--json",
          json
        ])

        strictEqual(
          result.stderr
            .split("\n")
            .filter((l) => l !== "" && !progressLine.test(l))
            .join("\n"),
          ""
        )
        assert.include(result.stderr, "idempotent: 100% (")
        assert.include(result.stderr, "naive: 100% (")
        strictEqual(result.code, 0)
        assert.include(result.stdout, "effect-idempotency simulate: 40 actions, concurrency 8, fault rate 5%")
        assert.match(result.stdout, /\nduplicate billable events\s+0\s+\d+\n/)
        assert.match(result.stdout, /\nduplicate outputs\s+0\s+\d+\n/)
        assert.match(result.stdout, /\nduplicate rows\s+0\s+\d+\n/)
        assert.include(result.stdout, "idempotent run: no duplicate billing, outputs or rows.")
        const report = JSON.parse(readFileSync(json, "utf8"))
        for (const run of [report.idempotent, report.naive]) {
          for (const field of [
            "actions",
            "attempts",
            "billableEvents",
            "duplicateBillableEvents",
            "duplicateOutputs",
            "duplicateRows",
            "deadLetters",
            "wastedCostUsd"
          ]) {
            assert.isNumber(run[field], field)
          }
        }
        strictEqual(report.idempotent.actions, 40)
        strictEqual(report.idempotent.duplicateBillableEvents, 0)
        strictEqual(report.settings.db, db)
        deepStrictEqual(
          readdirSync(dir).filter((f) => f.startsWith("report")),
          ["report.json"]
        )
      }),
    60_000
  )

  it.live(
    "redraws one progress line per run when stderr is a terminal",
    () =>
      Effect.gen(function* () {
        const dir = tempDir()

        const result = yield* runCli(
          ["simulate", "--actions", "10", "--fault-rate", "0", "--db", join(dir, "sim.db")],
          {
            tty: true
          }
        )

        strictEqual(result.code, 0)
        const lines = result.stderr.split("\n")
        deepStrictEqual(
          lines.map((line) => line.split("\r").at(-1)),
          ["idempotent: 100% (10/10 deliveries)", "naive: 100% (10/10 deliveries)", ""]
        )
        assertTrue(lines[0]!.startsWith("\ridempotent: 10% (1/10 deliveries)\ridempotent: 20% (2/10 deliveries)"))
      }),
    60_000
  )

  describe("bad input: one line on stderr naming the problem, exit 2, no report", () => {
    const cases: ReadonlyArray<readonly [string, (dir: string) => ReadonlyArray<string>, string | RegExp]> = [
      [
        "fault rate above 1",
        () => ["--fault-rate", "1.5"],
        "effect-idempotency: --fault-rate must be in [0, 1], got 1.5"
      ],
      [
        "fault rate below 0",
        () => ["--fault-rate", "-0.1"],
        "effect-idempotency: --fault-rate must be in [0, 1], got -0.1"
      ],
      [
        "zero attempt timeout",
        () => ["--attempt-timeout", "0"],
        "effect-idempotency: --attempt-timeout must be a positive number of seconds, got 0"
      ],
      ["zero actions", () => ["--actions", "0"], "effect-idempotency: --actions must be a positive integer, got 0"],
      [
        "negative actions",
        () => ["--actions", "-5"],
        "effect-idempotency: --actions must be a positive integer, got -5"
      ],
      [
        "actions over the bound in exponent notation",
        () => ["--actions", "1e9", "--fault-rate", "2"],
        "effect-idempotency: --actions must be at most 1,000,000, got 1000000000"
      ],
      [
        "one action over the bound",
        () => ["--actions", "1000001", "--fault-rate", "2"],
        "effect-idempotency: --actions must be at most 1,000,000, got 1000001"
      ],
      [
        "concurrency over the bound",
        () => ["--concurrency", "1025", "--fault-rate", "2"],
        "effect-idempotency: --concurrency must be at most 1024, got 1025"
      ],
      [
        "zero concurrency",
        () => ["--concurrency", "0"],
        "effect-idempotency: --concurrency must be a positive integer, got 0"
      ],
      ["non-numeric actions", () => ["--actions", "many"], "effect-idempotency: 'many' is not a integer (see --help)"],
      ["unknown flag", () => ["--bogus", "1"], "effect-idempotency: Received unknown argument: '--bogus' (see --help)"],
      [
        "a flag in the wrong case (--DB)",
        () => ["--DB", "x.db", "--actions", "0"],
        "effect-idempotency: Received unknown argument: '--DB' (see --help)"
      ],
      [
        "a flag in the wrong case (--FAULT-RATE)",
        () => ["--FAULT-RATE", "2", "--actions", "0"],
        "effect-idempotency: Received unknown argument: '--FAULT-RATE' (see --help)"
      ],
      [
        "a flag in the wrong case (--SEED)",
        () => ["--SEED", "9", "--actions", "0"],
        "effect-idempotency: Received unknown argument: '--SEED' (see --help)"
      ],
      [
        "--db under a file",
        (dir) => {
          writeFileSync(join(dir, "plain"), "")
          return ["--db", join(dir, "plain", "sim.db")]
        },
        /^effect-idempotency: --db .*\/plain\/sim\.db: directory .*\/plain does not exist$/
      ],
      [
        "--db that cannot be created",
        () => ["--db", "/proc/effect-idempotency-sim.db"],
        /^effect-idempotency: --db \/proc\/effect-idempotency-sim\.db: cannot be written \(/
      ],
      [
        "--db naming an application's database",
        (dir) => {
          const file = join(dir, "app.db")
          const db = new Database(file)
          db.exec("CREATE TABLE users (id INTEGER); CREATE TABLE ai_idempotency (idem_key TEXT)")
          db.close()
          return ["--db", file]
        },
        /^effect-idempotency: --db .*\/app\.db: is not a simulation database \(it holds users and no effect_idempotency_simulation table\); simulate resets the tables of its database, so pass a new file or one simulate created$/
      ],
      [
        "--db naming a text file",
        (dir) => {
          writeFileSync(join(dir, "notes.db"), "not a database\n")
          return ["--db", join(dir, "notes.db")]
        },
        /^effect-idempotency: --db .*\/notes\.db: is not a SQLite database; pass a new file or one simulate created$/
      ],
      [
        "malformed JSONL line",
        (dir) => {
          const file = join(dir, "requests.jsonl")
          writeFileSync(
            file,
            '{"model":"m","messages":[{"role":"user","content":"hi"}]}\n\n{"model":"m","messages":[{"role":"user"\n'
          )
          return ["--requests", file]
        },
        /^effect-idempotency: --requests .*requests\.jsonl line 3: not valid JSON \(.*\)$/
      ],
      [
        "JSONL line that is not a request",
        (dir) => {
          const file = join(dir, "requests.jsonl")
          writeFileSync(file, '{"model":"m","messages":[{"role":"robot","content":"hi"}]}\n')
          return ["--requests", file]
        },
        /^effect-idempotency: --requests .*requests\.jsonl line 1: not a chat completion request \(messages\[0\]\.role: /
      ],
      [
        "missing requests file",
        (dir) => ["--requests", join(dir, "absent.jsonl")],
        /^effect-idempotency: --requests .*absent\.jsonl: no such file$/
      ]
    ]

    for (const [name, args, expected] of cases) {
      it.live(name, () =>
        Effect.gen(function* () {
          const dir = tempDir()
          const json = join(dir, "report.json")

          const result = yield* runCli(["simulate", ...args(dir), "--json", json])

          strictEqual(result.code, 2)
          strictEqual(result.stdout, "")
          assertTrue(result.stderr.endsWith("\n"))
          const lines = result.stderr.slice(0, -1).split("\n")
          strictEqual(lines.length, 1, result.stderr)
          if (typeof expected === "string") {
            strictEqual(lines[0], expected)
          } else {
            assert.match(lines[0]!, expected)
          }
          assert.notInclude(result.stderr, "    at ")
          assertFalse(existsSync(json))
        })
      )
    }

    it.live("--json naming the --db file by another path", () =>
      Effect.gen(function* () {
        const dir = tempDir()

        const result = yield* runCli(["simulate", "--db", join(dir, "sim.db"), "--json", join(dir, ".", "sim.db")])

        strictEqual(result.code, 2)
        strictEqual(result.stdout, "")
        strictEqual(
          result.stderr,
          `effect-idempotency: --json ${join(dir, ".", "sim.db")}: is the --db file; the report would replace the database\n`
        )
        deepStrictEqual(readdirSync(dir), [])
      })
    )

    it.live("an application's database is left as it was", () =>
      Effect.gen(function* () {
        const file = join(tempDir(), "app.db")
        const before = new Database(file)
        before.exec("CREATE TABLE users (id INTEGER); INSERT INTO users VALUES (7); CREATE TABLE ai_dead_letters (k)")
        before.close()

        const result = yield* runCli(["simulate", "--db", file, "--actions", "2"])

        strictEqual(result.code, 2)
        const after = new Database(file, { readonly: true })
        const tables = after.prepare("SELECT name FROM sqlite_master ORDER BY name").all()
        const mode = after.pragma("journal_mode", { simple: true })
        after.close()
        deepStrictEqual(tables, [{ name: "ai_dead_letters" }, { name: "users" }])
        strictEqual(mode, "delete")
        assertFalse(existsSync(`${file}.lock`))
      })
    )

    it.live(
      "a second simulate on the same --db is refused while the first runs; a lock left by a dead process is taken over",
      () =>
        Effect.gen(function* () {
          const dir = tempDir()
          const db = join(dir, "sim.db")
          const gone = spawnSync(process.execPath, ["-e", ""]).pid
          writeFileSync(`${db}.lock`, `${gone}\n`)
          const args = ["simulate", "--db", db, "--actions", "20", "--fault-rate", "0"]

          const alone = yield* runCli(args)
          const [first, second] = yield* Effect.all([runCli(args), runCli(args)], { concurrency: 2 })

          strictEqual(alone.code, 0)

          deepStrictEqual([first.code, second.code].sort(), [0, 2])
          const refused = first.code === 2 ? first : second
          strictEqual(
            refused.stderr,
            `effect-idempotency: --db ${db}: another simulate (process ${process.pid}) is using this file; wait for it or pass another --db\n`
          )
          assertFalse(existsSync(`${db}.lock`))
        }),
      60_000
    )

    it.live("a --json file that cannot be created is refused before the run, naming the --json path", () =>
      Effect.gen(function* () {
        const dir = tempDir()
        const db = join(dir, "sim.db")
        const targets = ["/proc/effect-idempotency-report.json", "/proc/version", "", " "]

        const results = yield* Effect.forEach(targets, (json) =>
          runCli(["simulate", "--actions", "2", "--db", db, "--json", json])
        )

        deepStrictEqual(
          results.map((result) => [result.code, result.stdout, result.stderr]),
          [
            [
              2,
              "",
              "effect-idempotency: --json /proc/effect-idempotency-report.json: cannot be written (ENOENT: no such file or directory)\n"
            ],
            [
              2,
              "",
              "effect-idempotency: --json /proc/version: cannot be written (ENOENT: no such file or directory)\n"
            ],
            [2, "", 'effect-idempotency: --json needs a file name, got ""\n'],
            [2, "", 'effect-idempotency: --json needs a file name, got " "\n']
          ]
        )
      })
    )

    it.live("a flag without its value at the end of the line", () =>
      Effect.gen(function* () {
        const lines = [
          ["simulate", "--actions"],
          ["simulate", "--seed", "3", "--json"],
          ["dlq", "list", "--limit"],
          ["dlq", "replay", "k", "--db"]
        ]

        const results = yield* Effect.forEach(lines, (args) => runCli(args))

        deepStrictEqual(
          results.map((result) => [result.code, result.stdout, result.stderr]),
          [
            [2, "", "effect-idempotency: --actions needs a value (see --help)\n"],
            [2, "", "effect-idempotency: --json needs a value (see --help)\n"],
            [2, "", "effect-idempotency: --limit needs a value (see --help)\n"],
            [2, "", "effect-idempotency: --db needs a value (see --help)\n"]
          ]
        )
      })
    )

    it.live("an unknown subcommand", () =>
      Effect.gen(function* () {
        const result = yield* runCli(["simulat"])

        strictEqual(result.code, 2)
        strictEqual(result.stdout, "")
        strictEqual(
          result.stderr,
          "effect-idempotency: Invalid subcommand for effect-idempotency - use one of 'simulate', 'dlq' (see --help)\n"
        )
      })
    )
  })
})

describe("effect-idempotency help and dlq input", () => {
  it.live("prints help without colour codes when stdout is not a terminal", () =>
    Effect.gen(function* () {
      const result = yield* runCli(["simulate", "--help"])

      strictEqual(result.code, 0)
      assert.include(result.stdout, "\nUSAGE\n")
      assert.include(result.stdout, "--fault-rate float")
      assert.notInclude(result.stdout, "\u001b[")
    })
  )

  it.live("dlq list on an empty file or a text file: one line, exit 2, the file unchanged", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const empty = join(dir, "empty.db")
      const text = join(dir, "notes.txt")
      writeFileSync(empty, "")
      writeFileSync(text, "hello\n")

      const results = yield* Effect.forEach([empty, text], (db) => runCli(["dlq", "list", "--db", db]))

      deepStrictEqual(
        results.map((result) => [result.code, result.stdout, result.stderr]),
        [
          [
            2,
            "",
            `effect-idempotency: no dead-letter table in ${empty} (ai_dead_letters); pass the file the application writes its dead letters to\n`
          ],
          [
            2,
            "",
            `effect-idempotency: --db ${text}: is not a SQLite database; pass the file the application writes its dead letters to\n`
          ]
        ]
      )
      strictEqual(readFileSync(empty, "utf8"), "")
      deepStrictEqual(readdirSync(dir).sort(), ["empty.db", "notes.txt"])
    })
  )
})

describe("effect-idempotency dlq replay bounds", () => {
  it.live("gives up on a provider that never answers within the total bound, with a typed error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = join(tempDir(), "app.db")
        const provider = yield* Provider.make({ faultRate: 1, faultKinds: ["hang"] })
        const config = ConfigProvider.fromMap(new Map([[Replay.baseUrlVariable, provider.baseUrl]]))
        const entry = {
          key: "order-7",
          request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
          lastError: { tag: "ServerError", message: "down", status: Option.none() },
          attempts: 1,
          deadLetteredAt: 0,
          updatedAt: 0
        } as unknown as DeadLetterQueue.DeadLetter

        const error = yield* Replay.makeRerun({ attemptTimeout: "200 millis", totalTimeout: "300 millis" })(entry).pipe(
          Effect.flip,
          Effect.provide(SqliteClient.layer({ filename: db })),
          Effect.withConfigProvider(config)
        )

        assertTrue(error instanceof Replay.ReplayTimedOut)
        strictEqual(
          (error as Replay.ReplayTimedOut).message,
          'cannot replay "order-7": no answer from the provider within 300ms; the entry is kept, try again later (the same key is sent, so a request the provider did run is not billed twice)'
        )
        deepStrictEqual(Duration.toMillis(Replay.totalTimeout), 60_000)
        deepStrictEqual(Duration.toMillis(Replay.attemptTimeout), 15_000)
      })
    )
  )
})

describe("effect-idempotency, the process", () => {
  const viteNode = fileURLToPath(new URL("../../node_modules/vite-node/vite-node.mjs", import.meta.url))
  const bin = fileURLToPath(new URL("../../src/cli/bin.ts", import.meta.url))

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it.live(
      `${signal} stops a run with one line, exit code 130, and the database lock released`,
      () =>
        Effect.gen(function* () {
          const db = join(tempDir(), "sim.db")
          const child = spawn(process.execPath, [viteNode, bin, "simulate", "--actions", "200000", "--db", db], {
            stdio: ["ignore", "pipe", "pipe"]
          })
          let stderr = ""
          child.stderr.on("data", (chunk) => void (stderr += String(chunk)))
          const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))

          const started = yield* Effect.promise(async () => {
            for (let i = 0; i < 200 && !existsSync(`${db}.lock`); i++) {
              await new Promise((resolve) => setTimeout(resolve, 100))
            }
            return existsSync(`${db}.lock`)
          })
          child.kill(signal)
          const code = yield* Effect.promise(() => exited).pipe(
            Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the CLI did not stop") }),
            Effect.ensuring(Effect.sync(() => child.kill("SIGKILL")))
          )

          assertTrue(started)
          strictEqual(code, 130)
          strictEqual(stderr, "effect-idempotency: interrupted\n")
          assertFalse(existsSync(`${db}.lock`))
        }),
      60_000
    )
  }
})

describe("effect-idempotency dlq", () => {
  it.live(
    "lists the dead letters of a simulation and replays one under its key, billing once",
    () =>
      Effect.gen(function* () {
        const dir = tempDir()
        const db = join(dir, "sim.db")

        const simulated = yield* runCli([
          "simulate",
          "--actions",
          "2",
          "--fault-rate",
          "1",
          "--redelivery-rate",
          "0",
          "--attempt-timeout",
          "0.5",
          "--db",
          db
        ])
        const listed = yield* runCli(["dlq", "list", "--db", db])
        const unconfigured = yield* runCli(["dlq", "replay", "chatmsg:conv_0:msg_0", "--db", db])
        const empty = yield* runCli(["dlq", "replay", "chatmsg:conv_0:msg_0", "--db", db]).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([[Replay.baseUrlVariable, ""]])))
        )
        const listedAgain = yield* runCli(["dlq", "list", "--db", db])

        strictEqual(simulated.code, 0)
        assert.match(simulated.stdout, /\ndead letters\s+2\s+2\n/)
        assert.include(simulated.stdout, "\nwarning: the idempotent run dead-lettered 2 of 2 actions; ")
        assertTrue(
          simulated.stdout.endsWith(
            "\nidempotent run: no duplicate billing, outputs or rows, but 2 of 2 actions FAILED and were dead-lettered.\n"
          )
        )
        strictEqual(listed.code, 0)
        deepStrictEqual(
          listed.stdout
            .trim()
            .split("\n")
            .map((line) => line.split("  ")[0])
            .sort(),
          ["chatmsg:conv_0:msg_0", "chatmsg:conv_0:msg_1"]
        )
        strictEqual(unconfigured.code, 2)
        strictEqual(
          unconfigured.stderr,
          `effect-idempotency: cannot replay "chatmsg:conv_0:msg_0": set ${Replay.baseUrlVariable} to the provider's API root (e.g. http://127.0.0.1:8080/v1)\n`
        )
        deepStrictEqual([empty.code, empty.stderr], [2, unconfigured.stderr])
        strictEqual(listedAgain.stdout, listed.stdout)

        const replayed = yield* Effect.scoped(
          Effect.gen(function* () {
            const provider = yield* Provider.make({ faultRate: 0 })
            const config = ConfigProvider.fromMap(new Map([[Replay.baseUrlVariable, provider.baseUrl]]))

            const result = yield* runCli(["dlq", "replay", "chatmsg:conv_0:msg_0", "--db", db]).pipe(
              Effect.withConfigProvider(config)
            )

            return { result, ledger: yield* provider.ledger }
          })
        )
        const after = yield* runCli(["dlq", "list", "--db", db])

        strictEqual(replayed.result.stderr, "")
        strictEqual(replayed.result.code, 0)
        deepStrictEqual(
          replayed.ledger.map((entry) => entry.idempotencyKey),
          ["chatmsg:conv_0:msg_0"]
        )
        deepStrictEqual(
          after.stdout
            .trim()
            .split("\n")
            .map((line) => line.split("  ")[0]),
          ["chatmsg:conv_0:msg_1"]
        )
      }),
    60_000
  )
})
