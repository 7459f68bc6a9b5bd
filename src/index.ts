/**
 * effect-idempotency: idempotent, retry-safe AI API calls for Effect programs.
 *
 * @since 0.1.0
 */
export {}
