/**
 * Small statistics over timing samples (microseconds). Medians, not means: on a shared machine a few ops
 * land on a GC pause, a WAL checkpoint or a stolen time slice, and a mean would report the machine's noise.
 */

/** Sorted copy of the samples. */
export const sorted = (samples: ReadonlyArray<number>): Float64Array => Float64Array.from(samples).sort()

/** The `q`-quantile of sorted samples, interpolating between neighbours. */
export const quantile = (ascending: Float64Array, q: number): number => {
  if (ascending.length === 0) return Number.NaN
  const position = (ascending.length - 1) * q
  const below = Math.floor(position)
  const above = Math.ceil(position)
  return ascending[below]! + (ascending[above]! - ascending[below]!) * (position - below)
}

export const median = (samples: ReadonlyArray<number>): number => quantile(sorted(samples), 0.5)

export interface Summary {
  readonly count: number
  readonly p10: number
  readonly median: number
  readonly p90: number
}

export const summarize = (samples: ReadonlyArray<number>): Summary => {
  const ascending = sorted(samples)
  return {
    count: ascending.length,
    p10: quantile(ascending, 0.1),
    median: quantile(ascending, 0.5),
    p90: quantile(ascending, 0.9)
  }
}

/** Fixed-point text for a figure in microseconds or a ratio. */
export const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : "n/a")
