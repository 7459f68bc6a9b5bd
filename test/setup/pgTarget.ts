/**
 * How a test file reaches the throwaway PostgreSQL cluster started by `test/setup/postgres.ts`.
 *
 * `describePg(name, body)` runs `body(url)` inside `describe(name)` when the cluster is up. Without one it
 * registers a failing test under CI=true (CI must not pass by skipping the PostgreSQL tests) and a visibly
 * skipped block elsewhere, whose name carries the reason.
 */
import { describe, inject, it } from "vitest"

export const describePg = (name: string, body: (url: string) => void): void => {
  const url = inject("pgUrl")
  if (url !== null) {
    describe(name, () => body(url))
    return
  }
  const reason = inject("pgUnavailable")
  if (process.env["CI"] === "true") {
    describe(name, () => {
      it("needs the test PostgreSQL cluster", () => {
        throw new Error(`PostgreSQL is required when CI=true, but no test cluster was started: ${reason}`)
      })
    })
    return
  }
  describe.skip(`${name} (skipped: ${reason})`, () => body("postgres://unavailable"))
}
