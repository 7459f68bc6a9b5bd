/**
 * Vitest global setup: starts a throwaway PostgreSQL cluster for the store tests and stops it afterwards.
 *
 * The cluster lives in a fresh temporary directory, listens on 127.0.0.1 on a free port (and on a Unix socket
 * inside that directory), trusts local connections and is deleted at teardown. Tests read its URL with
 * `inject("pgUrl")` (or `process.env.EFFECT_IDEMPOTENCY_TEST_PG_URL`). When the PostgreSQL binaries
 * (`initdb`, `pg_ctl`) are not on PATH, no URL is provided and `pgUnavailable` says why; see
 * `test/setup/pgAvailability.ts` for how tests treat that (they fail under CI=true, skip visibly otherwise).
 */
import { execFile } from "node:child_process"
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the throwaway PostgreSQL cluster, or null when none could be started. */
    pgUrl: string | null
    /** Why there is no cluster, when `pgUrl` is null. */
    pgUnavailable: string
  }
}

const run = promisify(execFile)

const isRoot = typeof process.getuid === "function" && process.getuid() === 0

/** Runs a PostgreSQL program, as the `postgres` user when this process is root (PostgreSQL refuses root). */
const pgCommand = (program: string, args: ReadonlyArray<string>) =>
  isRoot ? run("runuser", ["-u", "postgres", "--", program, ...args]) : run(program, [...args])

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const binariesMissing = async (): Promise<string | undefined> => {
  try {
    await run("initdb", ["--version"])
    await run("pg_ctl", ["--version"])
    return undefined
  } catch (error) {
    return `PostgreSQL binaries (initdb, pg_ctl) are not on PATH: ${(error as Error).message}`
  }
}

const makeDirectories = () => {
  const root = mkdtempSync(join(tmpdir(), "effect-idempotency-pg-"))
  const data = join(root, "data")
  const socket = join(root, "sock")
  mkdirSync(data)
  mkdirSync(socket)
  if (isRoot) {
    const { uid, gid } = postgresIds()
    for (const dir of [root, data, socket]) chownSync(dir, uid, gid)
  }
  return { root, data, socket, log: join(root, "postgres.log") }
}

const postgresIds = () => {
  const entry = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((line) => line.startsWith("postgres:"))
  if (entry === undefined) throw new Error("running as root, but there is no 'postgres' user to run PostgreSQL as")
  const [, , uid, gid] = entry.split(":")
  return { uid: Number(uid), gid: Number(gid) }
}

const startCluster = async (dirs: ReturnType<typeof makeDirectories>): Promise<number> => {
  await pgCommand("initdb", ["-D", dirs.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
  for (let round = 1; ; round++) {
    const port = await freePort()
    const options = `-k ${dirs.socket} -h 127.0.0.1 -p ${port} -c fsync=off -c full_page_writes=off`
    try {
      await pgCommand("pg_ctl", ["-D", dirs.data, "-l", dirs.log, "-o", options, "-w", "start"])
      return port
    } catch (error) {
      if (round >= 3) throw error
    }
  }
}

export default async function setup(project: TestProject) {
  const missing = await binariesMissing()
  if (missing !== undefined) {
    process.stderr.write(`[test/setup/postgres] no PostgreSQL test cluster: ${missing}\n`)
    project.provide("pgUrl", null)
    project.provide("pgUnavailable", missing)
    return
  }

  const dirs = makeDirectories()
  const port = await startCluster(dirs).catch((error: unknown) => {
    rmSync(dirs.root, { recursive: true, force: true })
    throw new Error(`Could not start the test PostgreSQL cluster: ${(error as Error).message}`)
  })
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  project.provide("pgUrl", url)
  project.provide("pgUnavailable", "")
  process.env["EFFECT_IDEMPOTENCY_TEST_PG_URL"] = url

  return async () => {
    await pgCommand("pg_ctl", ["-D", dirs.data, "-m", "fast", "-w", "stop"]).catch(() => undefined)
    rmSync(dirs.root, { recursive: true, force: true })
  }
}
