/**
 * Vitest global setup: starts a throwaway PostgreSQL cluster for the store tests.
 * Replaced by the PostgreSQL store work; until then it starts nothing.
 */
export default function setup() {}
