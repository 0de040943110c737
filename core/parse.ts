// Parsers of setting values (server/config/config.ts, the token command, hook examples), written to accept
// what tusd's flags accept so a tusd command line carries over: Go durations (500ms, 1s, 1m30s; a bare
// number is seconds, as older tusd took it), sizes with units, comma-separated lists, booleans.

// `d` (days) is ours, beyond Go's units: expiry periods are counted in days.
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A duration in ms. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text)
    throw new Error(`is not a duration like 500ms, 2s or 1m30s: "${raw}"`);
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}

/** A duration in ms that must be above zero (a zero timeout or interval would refuse everything). */
export function parsePositiveDuration(raw: string): number {
  const ms = parseDuration(raw);
  if (ms <= 0) throw new Error(`must be longer than 0, got "${raw}"`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** A size in bytes: a whole number of bytes, or a number with a unit (4MiB, 1GiB, 500MB; KiB = 1024, KB = 1000). */
export function parseSize(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(raw.trim());
  if (!m) throw new Error(`is not a size like 4MiB, 1GiB or a number of bytes: "${raw}"`);
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new Error(`is too large: "${raw}"`);
  return bytes;
}

/** A size, or a share of something (`50%`, kept as 0.5). */
export type SizeOrShare = { bytes: number } | { share: number };

/** `50%` (more than 0, at most 100) or a size as parseSize reads it. */
export function parseSizeOrShare(raw: string): SizeOrShare {
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(raw.trim());
  if (!m) return { bytes: parseSize(raw) };
  const percent = Number(m[1]);
  if (percent <= 0 || percent > 100) throw new Error(`must be a percentage above 0 and at most 100, got "${raw}"`);
  return { share: percent / 100 };
}

export function parseList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parseBoolean(raw: string): boolean {
  const t = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw new Error(`must be true or false, got "${raw}"`);
}
