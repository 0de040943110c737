// The byte ranges a resumable session has received, as the nginx upload module lists them: inclusive
// ends, sorted and merged, written `a-b,c-d/total`.

export type Range = [start: number, end: number];

export function formatRanges(ranges: readonly Range[], total: number): string {
  return `${ranges.map(([a, b]) => `${a}-${b}`).join(',')}/${total}`;
}

/** The ranges with one more, sorted and merged (touching ranges join). */
export function addRange(ranges: readonly Range[], [a, b]: Range): Range[] {
  const all = [...ranges, [a, b] as Range].sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The end (exclusive) of the run received from byte 0. */
export const prefixEnd = (ranges: readonly Range[]): number => (ranges[0]?.[0] === 0 ? ranges[0][1] + 1 : 0);

/** Whether every byte of `range` was received. */
export const covered = (ranges: readonly Range[], [a, b]: Range): boolean => ranges.some(([x, y]) => x <= a && b <= y);

/** Whether the ranges hold every byte of a file of `total` bytes. */
export const coversAll = (ranges: readonly Range[], total: number): boolean => prefixEnd(ranges) === total;

/** How many bytes the (merged) ranges hold. */
export const bytesIn = (ranges: readonly Range[]): number => ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
