// Human units for byte counts, speeds and durations, shared by the page and `tuspass push`
// so both say "412 MB of 1.0 GB" the same way.

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

/**
 * The one convention, said where sizes are shown (the page's footer, `tuspass push --help`): decimal
 * SI units, as disk makers and network speeds count, so a 1 GiB file shows as "1.1 GB".
 */
export const UNIT_CONVENTION = '1 kB = 1000 bytes, 1 MB = 1000 kB, 1 GB = 1000 MB (a 1 GiB file shows as 1.1 GB)';

/**
 * Decimal units (1 kB = 1000 B): "412 MB of 1.0 GB"; one decimal below 10. At most three digits:
 * a value that rounds up to 1000 is shown in the next unit (999.96 MB is "1.0 GB", never "1000 MB").
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  if (Math.round(value) >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  // 9.96 would read "10.0": past 9.95 no decimal, as from 10 on.
  const digits = value < 9.95 ? 1 : 0;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** The most characters formatBytes writes below 1000 TB ("999 MB", "9.9 kB"): a column that does not move. */
export const BYTES_WIDTH = 6;

export function formatSpeed(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** "1h 02m", "3m 05s", "12s"; "?" when unknown (no speed yet). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(rest)}s`;
  return `${rest}s`;
}
