/**
 * `effect-idempotency simulate`: the chaos run that compares idempotent and naive AI calls side by side.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Data, Duration, Effect, Option } from "effect"
import { randomUUID } from "node:crypto"
import * as Report from "../simulation/Report.js"
import * as Simulation from "../simulation/Simulation.js"
import * as Workload from "../simulation/Workload.js"
import { defaultDb } from "./dlq.js"
import { Output } from "./Output.js"

/**
 * The command line asked for something that cannot be done. Exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadInput extends Data.TaggedError("BadInput")<{ readonly problem: string }> {
  override get message(): string {
    return this.problem
  }
}

/**
 * The idempotent run produced duplicates. Exit code 1 (after the report has been printed).
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicatesFound extends Data.TaggedError("DuplicatesFound")<{ readonly run: Report.RunReport }> {
  override get message(): string {
    const { duplicateBillableEvents, duplicateOutputs, duplicateRows } = this.run
    return (
      `the idempotent run produced duplicates (billable ${duplicateBillableEvents}, outputs ${duplicateOutputs}, ` +
      `rows ${duplicateRows})`
    )
  }
}

/**
 * The report could not be written. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReportWriteError extends Data.TaggedError("ReportWriteError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `--json ${this.path}: could not write the report (${this.reason})`
  }
}

/** How many distinct requests are generated when `--requests` is not given. */
const generatedRequests = 50

const options = {
  actions: Options.integer("actions").pipe(
    Options.withDefault(1000),
    Options.withDescription("Business actions to run (each is one chat completion).")
  ),
  concurrency: Options.integer("concurrency").pipe(
    Options.withDefault(32),
    Options.withDescription("Deliveries in flight at once.")
  ),
  faultRate: Options.float("fault-rate").pipe(
    Options.withDefault(0.05),
    Options.withDescription("Share of provider requests that meet a fault, in [0, 1].")
  ),
  redeliveryRate: Options.float("redelivery-rate").pipe(
    Options.withDefault(0.05),
    Options.withDescription("Share of actions delivered a second time (at-least-once queues, resubmits), in [0, 1].")
  ),
  seed: Options.integer("seed").pipe(
    Options.withDefault(42),
    Options.withDescription("Seed of every random draw (faults, latency, redeliveries, jitter).")
  ),
  db: Options.text("db").pipe(
    Options.withDefault(defaultDb),
    Options.withDescription(
      "SQLite file for outputs and idempotency records: a new file or one simulate created (its tables are reset)."
    )
  ),
  requests: Options.text("requests").pipe(
    Options.optional,
    Options.withDescription("JSONL file of chat completion request bodies (default: generated requests).")
  ),
  json: Options.text("json").pipe(
    Options.optional,
    Options.withDescription("Also write the report as JSON to this file (written only after a complete run).")
  ),
  costPerCall: Options.float("cost-per-call").pipe(
    Options.withDefault(0.01),
    Options.withDescription("Dollars one billable call costs.")
  ),
  attemptTimeout: Options.float("attempt-timeout").pipe(
    Options.withDefault(3),
    Options.withDescription("Seconds the client waits for each attempt before it counts as timed out.")
  ),
  actionsPerMonth: Options.integer("actions-per-month").pipe(
    Options.withDefault(100_000),
    Options.withDescription("Monthly volume the wasted cost is scaled to.")
  )
}

/**
 * The parsed flags of `simulate`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Flags {
  readonly actions: number
  readonly concurrency: number
  readonly faultRate: number
  readonly redeliveryRate: number
  readonly seed: number
  readonly db: string
  readonly requests: Option.Option<string>
  readonly json: Option.Option<string>
  readonly costPerCall: number
  readonly attemptTimeout: number
  readonly actionsPerMonth: number
}

/**
 * The most actions one run takes: every action is held in memory (workload, ledger, latencies) until the report
 * is made, so a larger run would exhaust the heap after minutes instead of failing at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxActions = 1_000_000

/**
 * The most deliveries in flight at once: each may hold an HTTP connection to the fake provider.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxConcurrency = 1024

const toBadInput = (error: Simulation.NotASimulationDatabase) => Effect.fail(new BadInput({ problem: error.message }))

const check = (ok: boolean, problem: string): Effect.Effect<void, BadInput> =>
  ok ? Effect.void : Effect.fail(new BadInput({ problem }))

const validateNumbers = (flags: Flags) =>
  Effect.all([
    check(flags.actions > 0, `--actions must be a positive integer, got ${flags.actions}`),
    check(
      flags.actions <= maxActions,
      `--actions must be at most ${maxActions.toLocaleString("en-US")}, got ${flags.actions}`
    ),
    check(flags.concurrency > 0, `--concurrency must be a positive integer, got ${flags.concurrency}`),
    check(
      flags.concurrency <= maxConcurrency,
      `--concurrency must be at most ${maxConcurrency}, got ${flags.concurrency}`
    ),
    check(flags.faultRate >= 0 && flags.faultRate <= 1, `--fault-rate must be in [0, 1], got ${flags.faultRate}`),
    check(
      flags.redeliveryRate >= 0 && flags.redeliveryRate <= 1,
      `--redelivery-rate must be in [0, 1], got ${flags.redeliveryRate}`
    ),
    check(
      Number.isFinite(flags.costPerCall) && flags.costPerCall >= 0,
      `--cost-per-call must be a non-negative number, got ${flags.costPerCall}`
    ),
    check(
      Number.isFinite(flags.attemptTimeout) && flags.attemptTimeout > 0,
      `--attempt-timeout must be a positive number of seconds, got ${flags.attemptTimeout}`
    ),
    check(flags.actionsPerMonth >= 0, `--actions-per-month must not be negative, got ${flags.actionsPerMonth}`)
  ])

/**
 * A file we are about to create or overwrite: its directory must exist and be writable, and so must it. With
 * `create.file`, the file is opened for appending (and so created when absent), which catches what permission bits
 * do not (a read-only file system, a pseudo-file system, a process running as root).
 */
const checkWritableFile = (
  flag: string,
  file: string,
  create: { readonly directory: boolean; readonly file: boolean }
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.dirname(path.resolve(file))

    if (create.directory) {
      yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.ignore)
    }

    const dirInfo = yield* fs.stat(directory).pipe(Effect.option)
    if (Option.isNone(dirInfo) || dirInfo.value.type !== "Directory") {
      return yield* Effect.fail(new BadInput({ problem: `${flag} ${file}: directory ${directory} does not exist` }))
    }
    yield* fs
      .access(directory, { writable: true })
      .pipe(Effect.mapError(() => new BadInput({ problem: `${flag} ${file}: directory ${directory} is not writable` })))

    const fileInfo = yield* fs.stat(file).pipe(Effect.option)
    if (Option.isSome(fileInfo)) {
      if (fileInfo.value.type !== "File") {
        return yield* Effect.fail(new BadInput({ problem: `${flag} ${file}: exists and is not a file` }))
      }
      yield* fs
        .access(file, { writable: true })
        .pipe(Effect.mapError(() => new BadInput({ problem: `${flag} ${file}: file is not writable` })))
    }

    if (create.file) {
      yield* Effect.scoped(fs.open(file, { flag: "a" })).pipe(
        Effect.mapError(
          (error) =>
            new BadInput({
              problem: `${flag} ${file}: cannot be written (${error.description ?? error.message})`
            })
        )
      )
    }
  })

/** Whether a process with this id is running (signal 0 only checks; EPERM means it runs as someone else). */
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { readonly code?: unknown }).code === "EPERM"
  }
}

/**
 * Holds `<db>.lock` for the scope, so that a second `simulate` on the same file is refused instead of dropping
 * the tables under the first one. The lock holds the owner's process id: a lock left by a process that is gone
 * (killed with SIGKILL, say) is taken over. Two runs that start at the same moment over a lock left behind may
 * both try to take it over; one of them then wins and the other is refused.
 */
const lockDatabase = (db: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const lock = `${db}.lock`

    const tryCreate = fs.writeFileString(lock, `${process.pid}\n`, { flag: "wx" }).pipe(
      Effect.as(true),
      Effect.catchAll((error) =>
        error._tag === "SystemError" && error.reason === "AlreadyExists" ? Effect.succeed(false) : Effect.fail(error)
      ),
      Effect.mapError(
        (error) => new BadInput({ problem: `--db ${db}: cannot create lock file ${lock} (${error.message})` })
      )
    )
    const owner = fs.readFileString(lock).pipe(
      Effect.map((text) => Number.parseInt(text.trim(), 10)),
      Effect.orElseSucceed(() => Number.NaN)
    )
    const refuse = (pid: number) =>
      new BadInput({
        problem: Number.isNaN(pid)
          ? `--db ${db}: another simulate is using this file (${lock}); wait for it or pass another --db`
          : `--db ${db}: another simulate (process ${pid}) is using this file; wait for it or pass another --db`
      })

    const acquire = Effect.gen(function* () {
      for (let attempt = 0; ; attempt++) {
        if (yield* tryCreate) {
          return
        }

        const pid = yield* owner
        const alive = Number.isInteger(pid) && pid > 0 && isRunning(pid)
        if (alive || attempt > 0) {
          return yield* Effect.fail(refuse(alive ? pid : Number.NaN))
        }

        yield* fs.remove(lock).pipe(Effect.ignore)
      }
    })

    // Uninterruptible from creating the file to registering its removal: a signal in between must not leave it.
    yield* Effect.acquireRelease(acquire, () => fs.remove(lock).pipe(Effect.ignore))
  })

/** `--json` must not name the `--db` file (the report would replace the database), through any path or link. */
const checkDistinct = (db: string, json: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const real = (file: string) => fs.realPath(file).pipe(Effect.orElseSucceed(() => path.resolve(file)))

    if ((yield* real(db)) === (yield* real(json))) {
      return yield* Effect.fail(
        new BadInput({ problem: `--json ${json}: is the --db file; the report would replace the database` })
      )
    }
  })

const temporaryBeside = (file: string): string => `${file}.${randomUUID()}.tmp`

/**
 * What the operating system said, without the path it said it about (that would be a temporary file's name,
 * meaningless to the user): `ENOENT: no such file or directory` rather than `..., open '/x/r.json.<uuid>.tmp'`.
 */
const systemReason = (error: PlatformError): string => {
  const text = error._tag === "SystemError" && error.description !== undefined ? error.description : error.message
  return text.replace(/, \w+ '.*$/, "")
}

/** Writes next to the target and renames over it, so a reader never sees half a report. */
const writeAtomically = (file: string, text: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const temporary = temporaryBeside(file)

    yield* fs.writeFileString(temporary, text).pipe(
      Effect.zipRight(fs.rename(temporary, file)),
      Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)),
      Effect.mapError((error) => new ReportWriteError({ path: file, reason: systemReason(error) }))
    )
  })

/**
 * Proves that the report can be written the way {@link writeAtomically} will: a temporary file is created next
 * to `--json` (and removed again). Permission bits alone do not tell (a pseudo-file system such as /proc, a
 * read-only mount, a process running as root).
 */
const probeReportFile = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const temporary = temporaryBeside(file)

    yield* fs.writeFileString(temporary, "", { flag: "wx" }).pipe(
      Effect.zipRight(fs.remove(temporary)),
      Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)),
      Effect.mapError(
        (error) => new BadInput({ problem: `--json ${file}: cannot be written (${systemReason(error)})` })
      )
    )
  })

const progressReporter = Effect.gen(function* () {
  const output = yield* Output
  const shown = new Map<string, number>()

  return (runner: Report.Runner, done: number, total: number): Effect.Effect<void> => {
    const percent = Math.floor((done * 100) / total)
    if (output.stderrIsTTY) {
      if (percent === shown.get(runner) && done !== total) {
        return Effect.void
      }
      shown.set(runner, percent)
      const line = `\r${runner}: ${percent}% (${done}/${total} deliveries)`
      return output.stderr(done === total ? `${line}\n` : line)
    }
    const tenth = Math.floor((done * 10) / total)
    if (tenth <= (shown.get(runner) ?? 0)) {
      return Effect.void
    }
    shown.set(runner, tenth)
    return output.stderr(`${runner}: ${percent}% (${done}/${total} deliveries)\n`)
  }
})

/**
 * Runs `simulate` with parsed flags: validates them, runs both workloads, prints the table, writes `--json`.
 * Fails with `BadInput` before anything runs, or with `DuplicatesFound` after printing when the idempotent run
 * was not clean.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler = (flags: Flags) =>
  Effect.scoped(
    Effect.gen(function* () {
      const output = yield* Output

      yield* validateNumbers(flags)

      yield* check(flags.db.trim() !== "", `--db needs a file name, got ${JSON.stringify(flags.db)}`)

      yield* Option.match(flags.json, {
        onNone: () => Effect.void,
        onSome: (file) =>
          check(file.trim() !== "", `--json needs a file name, got ${JSON.stringify(file)}`).pipe(
            Effect.zipRight(checkDistinct(flags.db, file))
          )
      })

      yield* checkWritableFile("--db", flags.db, { directory: flags.db === defaultDb, file: true })

      yield* Option.match(flags.json, {
        onNone: () => Effect.void,
        onSome: (file) =>
          checkWritableFile("--json", file, { directory: false, file: false }).pipe(
            Effect.zipRight(probeReportFile(file))
          )
      })

      yield* lockDatabase(flags.db)

      yield* Simulation.checkDatabase(flags.db).pipe(Effect.catchTag("NotASimulationDatabase", toBadInput))

      const requests = yield* Option.match(flags.requests, {
        onNone: () => Effect.succeed(Workload.generateRequests(generatedRequests, flags.seed)),
        onSome: (file) =>
          Workload.loadRequests(file).pipe(Effect.mapError((error) => new BadInput({ problem: error.message })))
      })

      const onProgress = yield* progressReporter

      const report = yield* Simulation.run({
        actions: flags.actions,
        concurrency: flags.concurrency,
        faultRate: flags.faultRate,
        redeliveryRate: flags.redeliveryRate,
        seed: flags.seed,
        db: flags.db,
        requests,
        requestsSource: Option.getOrElse(flags.requests, () => `${generatedRequests} generated`),
        costPerCall: flags.costPerCall,
        actionsPerMonth: flags.actionsPerMonth,
        attemptTimeout: Duration.seconds(flags.attemptTimeout),
        onProgress
      }).pipe(Effect.catchTag("NotASimulationDatabase", toBadInput))

      yield* output.stdout(`${Report.formatTable(report)}\n`)

      yield* Option.match(flags.json, {
        onNone: () => Effect.void,
        onSome: (file) => writeAtomically(file, Report.toJson(report))
      })

      if (!Report.isClean(report.idempotent)) {
        return yield* Effect.fail(new DuplicatesFound({ run: report.idempotent }))
      }
    })
  )

/**
 * The `simulate` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("simulate", options, handler).pipe(
  Command.withDescription(
    "Run a workload against a fake provider with injected faults, the idempotent way and the naive way, and " +
      "compare duplicate billing, duplicate answers and duplicate rows."
  )
)
