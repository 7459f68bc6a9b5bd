/**
 * Where the CLI writes: the report to stdout, progress and errors to stderr. A service, so tests run the CLI
 * in-process and read what it printed.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface OutputShape {
  /** Writes text to stdout as given (no newline added). */
  readonly stdout: (text: string) => Effect.Effect<void>
  /** Writes text to stderr as given (no newline added). */
  readonly stderr: (text: string) => Effect.Effect<void>
  /** Whether stderr is a terminal (then progress redraws one line). */
  readonly stderrIsTTY: boolean
  /** Whether stdout is a terminal (only then does help text keep its colours). */
  readonly stdoutIsTTY?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Output extends Context.Tag("effect-idempotency/cli/Output")<Output, OutputShape>() {}

/**
 * The process's own stdout and stderr.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProcess: Layer.Layer<Output> = Layer.sync(Output, () => ({
  stdout: (text) => Effect.sync(() => void process.stdout.write(text)),
  stderr: (text) => Effect.sync(() => void process.stderr.write(text)),
  stderrIsTTY: process.stderr.isTTY === true,
  stdoutIsTTY: process.stdout.isTTY === true
}))

/**
 * An in-memory output for tests: everything written is kept in `stdout` and `stderr`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCapture = (): OutputShape & { readonly out: Array<string>; readonly err: Array<string> } => {
  const out: Array<string> = []
  const err: Array<string> = []
  return {
    out,
    err,
    stdout: (text) => Effect.sync(() => void out.push(text)),
    stderr: (text) => Effect.sync(() => void err.push(text)),
    stderrIsTTY: false,
    stdoutIsTTY: false
  }
}
