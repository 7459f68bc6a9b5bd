/**
 * The `effect-idempotency` command line: parses arguments, runs a subcommand, and turns every failure into
 * one line on stderr and an exit code. Exit codes: 0 success, 1 the run failed (or the idempotent run had
 * duplicates), 2 bad input (unknown flag, invalid value, unusable file).
 *
 * @since 0.1.0
 */
import * as CliApp from "@effect/cli/CliApp"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as CommandDescriptor from "@effect/cli/CommandDescriptor"
import * as CommandDirective from "@effect/cli/CommandDirective"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Console, Effect, Exit, Option } from "effect"
import * as Dlq from "./dlq.js"
import { Output, type OutputShape } from "./Output.js"
import * as Replay from "./replay.js"
import * as Simulate from "./simulate.js"

/**
 * The program's name on the command line.
 *
 * @since 0.1.0
 * @category constants
 */
export const name = "effect-idempotency"

/**
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"

/**
 * The root command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(name).pipe(
  Command.withDescription("Idempotent, retry-safe AI API calls: tools and the simulation."),
  Command.withSubcommands([Simulate.command, Dlq.makeCommand({ rerun: Replay.rerun, check: Replay.check })])
)

// Escape sequences @effect/cli uses to colour its messages.
const ansi = /\u001b\[[0-9;]*m/g

/** One line from any text: colours removed, line breaks and runs of spaces collapsed. */
const oneLine = (text: string): string => text.replace(ansi, "").replace(/\s+/g, " ").trim()

/** Failures that mean "the command line asked for something impossible" rather than "the run failed". */
const isBadInput = (error: unknown): boolean =>
  ValidationError.isValidationError(error) ||
  error instanceof Simulate.BadInput ||
  error instanceof Dlq.DatabaseNotFound ||
  error instanceof Dlq.NotADatabase ||
  error instanceof Dlq.NoDeadLetterTable ||
  error instanceof Replay.ReplayNotConfigured

const exitCode = (error: unknown): number => (isBadInput(error) ? 2 : 1)

const describe = (error: unknown): string => {
  if (ValidationError.isValidationError(error)) {
    return `${oneLine(HelpDoc.toAnsiText(error.error))} (see --help)`
  }
  if (error instanceof Error) {
    return oneLine(error.message)
  }
  return oneLine(String(error))
}

/**
 * Flags are matched exactly: @effect/cli's default ignores case, so `--DB x` would silently set `--db`, and
 * `--DB x --db y` would report `--db` as unknown. Here `--DB` is an unknown argument.
 */
const config = CliConfig.make({ isCaseSensitive: true })
const cliConfig = CliConfig.layer(config)

/**
 * @effect/cli reports a value-taking flag left without its value at the end of the line (`simulate --actions`)
 * as an unknown argument. It is one when parsing the same line with a value after it leaves nothing over; then
 * this answers the flag, so that the message can say what is missing.
 */
const flagMissingItsValue = (args: ReadonlyArray<string>) => {
  const last = args.at(-1)
  if (last === undefined || !last.startsWith("-")) {
    return Effect.succeed(Option.none<string>())
  }
  return CommandDescriptor.parse(command.descriptor, [name, ...args, "0"], config).pipe(
    Effect.map((directive) =>
      CommandDirective.isUserDefined(directive) && directive.leftover.length === 0
        ? Option.some(last)
        : Option.none<string>()
    ),
    Effect.orElseSucceed(() => Option.none<string>())
  )
}

/**
 * @effect/cli prints a usage error itself, over several lines, before failing with it. This console keeps
 * those lines back; they are replaced by one line of our own when the run fails with a `ValidationError`,
 * and written out unchanged otherwise. What it logs (help, version) goes to the `Output`'s stdout, without
 * colours unless stdout is a terminal (@effect/cli always colours its help).
 */
const holdingErrors = (held: Array<string>, output: OutputShape) =>
  Effect.map(
    Effect.console,
    (console): Console.Console => ({
      ...console,
      log: (...args: ReadonlyArray<unknown>) => {
        const text = args.map(String).join(" ")
        return output.stdout(`${output.stdoutIsTTY === true ? text : text.replace(ansi, "")}\n`)
      },
      error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void held.push(args.map(String).join(" ")))
    })
  )

/**
 * Runs the CLI with `args` (the arguments after the program name) and answers the exit code. Never fails:
 * every error has been printed as one line on stderr by the time the code is returned. Set
 * `EFFECT_IDEMPOTENCY_DEBUG=1` to also print the full cause of an unexpected failure.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (args: ReadonlyArray<string>): Effect.Effect<number, never, CliApp.CliApp.Environment | Output> =>
  Effect.gen(function* () {
    const output = yield* Output
    const held: Array<string> = []
    const console = yield* holdingErrors(held, output)

    const exit = yield* Command.run(command, { name, version })(["node", name, ...args]).pipe(
      Effect.withConsole(console),
      Effect.provide(cliConfig),
      Effect.exit
    )

    if (exit._tag === "Success") {
      if (held.length > 0) yield* output.stderr(`${held.join("\n")}\n`)
      return 0
    }

    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
      if (ValidationError.isHelpRequested(failure.value)) return 0
    } else if (held.length > 0) {
      yield* output.stderr(`${held.join("\n")}\n`)
    }

    if (Cause.isInterruptedOnly(exit.cause)) {
      yield* output.stderr(`${name}: interrupted\n`)
      return 130
    }

    if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
      const flag = yield* flagMissingItsValue(args)
      if (Option.isSome(flag)) {
        yield* output.stderr(`${name}: ${flag.value} needs a value (see --help)\n`)
        return 2
      }
    }

    if (Option.isSome(failure)) {
      yield* output.stderr(`${name}: ${describe(failure.value)}\n`)
      return exitCode(failure.value)
    }

    const defect = Cause.squash(exit.cause)
    yield* output.stderr(`${name}: unexpected failure: ${describe(defect)}\n`)
    if (process.env["EFFECT_IDEMPOTENCY_DEBUG"] !== undefined) {
      yield* output.stderr(`${Cause.pretty(exit.cause)}\n`)
    }
    return 1
  })

/**
 * How the process ends once `run` is over: with the code it answered. When the run was interrupted from outside
 * (Ctrl-C or SIGTERM reach `NodeRuntime.runMain`, which interrupts the main fiber and so `run` never answers),
 * `interrupted` is written and the code is 130, the shell's code for a run stopped by SIGINT; finalizers (the
 * database lock, the fake provider) have run by then.
 *
 * @since 0.1.0
 * @category running
 */
export const teardown =
  (writeStderr: (text: string) => void) =>
  <A, E>(exit: Exit.Exit<A, E>, onExit: (code: number) => void): void => {
    if (Exit.isSuccess(exit)) {
      return onExit(typeof exit.value === "number" ? exit.value : 1)
    }
    if (Cause.isInterruptedOnly(exit.cause)) {
      writeStderr(`${name}: interrupted\n`)
      return onExit(130)
    }
    onExit(1)
  }
