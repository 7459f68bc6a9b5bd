/**
 * SQL text of the SQL store, per dialect. Every statement is built once per layer, so the hot path only binds
 * parameters to a statement the driver has already seen.
 *
 * @internal
 */

/** What differs between the supported databases. */
export interface Dialect {
  readonly name: "sqlite" | "pg"
  /** Placeholder for the `index`-th parameter (1-based). */
  readonly param: (index: number) => string
  /** Column type for epoch-millisecond times: they overflow a 32-bit INTEGER in PostgreSQL. */
  readonly epochMillis: string
}

export const sqlite: Dialect = { name: "sqlite", param: () => "?", epochMillis: "INTEGER" }

export const pg: Dialect = { name: "pg", param: (index) => `$${index}`, epochMillis: "BIGINT" }

export const columns =
  "idem_key, request_hash, status, response_json, error_text, owner_token, lease_expires_at, attempts, " +
  "created_at, updated_at, expires_at"

export const createTable = (table: string, dialect: Dialect): ReadonlyArray<string> => [
  `CREATE TABLE IF NOT EXISTS ${table} (
  idem_key TEXT PRIMARY KEY NOT NULL,
  request_hash TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
  response_json TEXT,
  error_text TEXT,
  owner_token TEXT,
  lease_expires_at ${dialect.epochMillis} NOT NULL,
  attempts INTEGER NOT NULL,
  created_at ${dialect.epochMillis} NOT NULL,
  updated_at ${dialect.epochMillis} NOT NULL,
  expires_at ${dialect.epochMillis} NOT NULL
)`,
  `CREATE INDEX IF NOT EXISTS ${table}_expires_at_idx ON ${table} (expires_at)`
]

/**
 * The claim, as one statement. Parameters: key, request hash, owner, lease end, now (as created_at), now (as
 * updated_at), expiry. The conflicting row is replaced when it has expired, and taken over (attempts + 1)
 * when it is processing, its lease has ended and the request hash matches; otherwise nothing is written and
 * no row comes back. A claimed row holds the request's own values but for `attempts` and `created_at`, so
 * only those come back.
 */
const claim = (table: string, p: Dialect["param"]): string => {
  const now = "excluded.updated_at"
  const expired = `${table}.expires_at <= ${now}`
  return `INSERT INTO ${table} (${columns})
VALUES (${p(1)}, ${p(2)}, 'processing', NULL, NULL, ${p(3)}, ${p(4)}, 1, ${p(5)}, ${p(6)}, ${p(7)})
ON CONFLICT (idem_key) DO UPDATE SET
  request_hash = excluded.request_hash,
  status = 'processing',
  response_json = NULL,
  error_text = NULL,
  owner_token = excluded.owner_token,
  lease_expires_at = excluded.lease_expires_at,
  attempts = CASE WHEN ${expired} THEN 1 ELSE ${table}.attempts + 1 END,
  created_at = CASE WHEN ${expired} THEN excluded.created_at ELSE ${table}.created_at END,
  updated_at = ${now},
  expires_at = excluded.expires_at
WHERE ${expired}
  OR (${table}.status = 'processing' AND ${table}.lease_expires_at <= ${now}
    AND ${table}.request_hash = excluded.request_hash)
RETURNING attempts, created_at`
}

/** A write that only the current owner of a processing record may make; `set` uses parameters from 1. */
const owned = (table: string, p: Dialect["param"], set: string, setParams: number): string =>
  `UPDATE ${table} SET ${set} WHERE idem_key = ${p(setParams + 1)} AND owner_token = ${p(setParams + 2)} ` +
  `AND status = 'processing' RETURNING idem_key`

export interface Statements {
  readonly claim: string
  readonly select: string
  readonly get: string
  readonly complete: string
  readonly fail: string
  readonly heartbeat: string
  readonly release: string
  readonly purge: string
}

export const statements = (table: string, dialect: Dialect): Statements => {
  const p = dialect.param
  return {
    claim: claim(table, p),
    select: `SELECT ${columns} FROM ${table} WHERE idem_key = ${p(1)}`,
    get: `SELECT ${columns} FROM ${table} WHERE idem_key = ${p(1)} AND expires_at > ${p(2)}`,
    complete: owned(
      table,
      p,
      `status = 'succeeded', response_json = ${p(1)}, owner_token = NULL, updated_at = ${p(2)}`,
      2
    ),
    fail: owned(table, p, `status = 'failed', error_text = ${p(1)}, owner_token = NULL, updated_at = ${p(2)}`, 2),
    heartbeat: owned(table, p, `lease_expires_at = ${p(1)}, updated_at = ${p(2)}`, 2),
    release:
      `DELETE FROM ${table} WHERE idem_key = ${p(1)} AND owner_token = ${p(2)} AND status = 'processing' ` +
      `RETURNING idem_key`,
    purge: `DELETE FROM ${table} WHERE expires_at <= ${p(1)}`
  }
}
