#!/usr/bin/env node
/**
 * Executable entry of the `effect-idempotency` command.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { run, teardown } from "./main.js"
import * as Output from "./Output.js"

run(process.argv.slice(2)).pipe(
  Effect.provide(Layer.merge(NodeContext.layer, Output.layerProcess)),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: teardown((text) => void process.stderr.write(text))
  })
)
