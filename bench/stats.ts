// Summaries of repeated measurements. The machine is noisy, so every figure is a median with its
// spread (min..max and (max-min)/median), never a single run.

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent: how much the rounds disagree. */
  spreadPct: number;
  values: number[];
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest-rank on the sorted values: p99 of 2,000 latencies is the 1,980th.
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const med = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { median: med, min, max, spreadPct: med ? ((max - min) / Math.abs(med)) * 100 : 0, values: [...values] };
}

/** Megabytes (10^6 bytes) per second. */
export const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
