/**
 * The backoff formulas of "Exponential Backoff And Jitter" (Marc Brooker, AWS Architecture Blog, 2015), as pure
 * functions of milliseconds and a random number in [0, 1).
 *
 * @internal
 */

/** @internal */
export type Jitter = "none" | "full" | "equal" | "decorrelated"

/** @internal */
export interface ResolvedBackoff {
  readonly baseMillis: number
  readonly factor: number
  readonly capMillis: number
  readonly jitter: Jitter
}

/**
 * `min(cap, base * factor^attempt)`. A base of zero stays zero (guarding `0 * Infinity` when the power
 * overflows); an overflowing power is the cap.
 */
const exponential = (backoff: ResolvedBackoff, attempt: number): number =>
  backoff.baseMillis === 0 ? 0 : Math.min(backoff.capMillis, backoff.baseMillis * Math.pow(backoff.factor, attempt))

const clamp = (millis: number, cap: number): number => (Number.isNaN(millis) ? 0 : Math.min(cap, Math.max(0, millis)))

/**
 * The delay before retry number `attempt` (0 for the first retry), in whole milliseconds rounded down, always in
 * [0, cap]. `random` is a draw in [0, 1); `previousMillis` is the delay before the previous retry (the base for
 * the first), used only by decorrelated jitter.
 *
 * @internal
 */
export const delayMillis = (
  backoff: ResolvedBackoff,
  attempt: number,
  random: number,
  previousMillis: number
): number => {
  const r = clamp(random, 1)
  switch (backoff.jitter) {
    case "none":
      return Math.floor(clamp(exponential(backoff, attempt), backoff.capMillis))
    case "full":
      return Math.floor(clamp(r * exponential(backoff, attempt), backoff.capMillis))
    case "equal": {
      const ceiling = exponential(backoff, attempt)
      return Math.floor(clamp(ceiling / 2 + (r * ceiling) / 2, backoff.capMillis))
    }
    case "decorrelated": {
      const upper = Math.max(backoff.baseMillis, previousMillis * 3)
      return Math.floor(clamp(backoff.baseMillis + r * (upper - backoff.baseMillis), backoff.capMillis))
    }
  }
}
