/**
 * Deterministic draws for the simulation.
 *
 * The simulation runs many fibers at once, so a single random stream would hand out numbers in whatever order
 * requests happen to arrive, and two runs with the same seed would differ. Instead each decision draws from a
 * hash of the seed and of what the decision is about (an action id, an attempt number, a purpose), which gives
 * the same answer however the fibers interleave.
 *
 * @since 0.1.0
 */

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

const fnv1a = (text: string, start: number): number => {
  let h = start
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return h >>> 0
}

/** The mulberry32 output function: spreads a 32-bit state over [0, 2^32). */
const mix = (state: number): number => {
  let t = (state + 0x6d2b79f5) >>> 0
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (t ^ (t >>> 14)) >>> 0
}

/**
 * A number in [0, 1) that depends only on `seed` and `parts`.
 *
 * @example
 * ```ts
 * import { uniform } from "effect-idempotency/simulation/Prng"
 *
 * uniform(42, "fault", "action-7", 0) === uniform(42, "fault", "action-7", 0) // true
 * ```
 *
 * @since 0.1.0
 * @category draws
 */
export const uniform = (seed: number, ...parts: ReadonlyArray<string | number>): number => {
  const h = fnv1a(parts.join("\u0001"), (FNV_OFFSET ^ mix(seed >>> 0)) >>> 0)
  return mix(mix(h)) / 4294967296
}

/**
 * An integer in [min, max] (both inclusive) that depends only on `seed` and `parts`.
 *
 * @since 0.1.0
 * @category draws
 */
export const intBetween = (min: number, max: number, seed: number, ...parts: ReadonlyArray<string | number>): number =>
  min + Math.floor(uniform(seed, ...parts) * (max - min + 1))
