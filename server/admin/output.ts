// What admin commands share: exit codes (sysexits, as the server's 78 for a bad configuration),
// argument splitting, and printing a table for people or JSON for scripts.
import { ConfigError, load, type Config } from '../config/config.ts';

export const ADMIN_EXIT = {
  OK: 0,
  /** A doctor check failed, or the command could not do what was asked (no such notice). */
  FAILED: 1,
  /** EX_USAGE: unknown subcommand, flag or argument. */
  USAGE: 64,
} as const;

export class UsageError extends Error {}

/** One line of `tuspass doctor` (doctor.ts, and doctor-s3.ts with S3_BUCKET). */
export interface Check {
  check: string;
  ok: boolean;
  /** What was found (ok) or what is wrong. */
  detail: string;
  /** What to do, when not ok. */
  remedy?: string;
}

export interface AdminArgs {
  config: Config;
  json: boolean;
  /** Positional arguments (after the subcommand). */
  positional: string[];
  flags: Set<string>;
}

/**
 * Splits an admin command line: the configuration's flags (--data-dir and the rest) and environment,
 * `--json`, the command's own flags (`known`), and positional arguments. Anything else is a usage error.
 */
export function parseAdminArgs(args: readonly string[], known: readonly string[] = []): AdminArgs {
  const own = args.filter((a) => a === '--json' || known.includes(a));
  const { config, rest } = load(
    process.env,
    args.filter((a) => !own.includes(a)),
  );
  const unknown = rest.filter((a) => a.startsWith('-'));
  if (unknown.length) throw new UsageError(`unknown option ${unknown.map((a) => `"${a}"`).join(', ')}`);
  return { config, json: own.includes('--json'), positional: rest, flags: new Set(own) };
}

/**
 * A cell as the terminal shows it inert: clients choose some cells (file names, owners), and a control
 * character in them would clear the screen, retitle the window or start a made-up row — `\u001b`.
 */
const inert = (cell: string) =>
  cell.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Rows as aligned columns under a header, or "(none)" text. */
export function table(headers: readonly string[], unsafeRows: readonly (readonly string[])[]): string {
  const rows = unsafeRows.map((r) => r.map(inert));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** "3m 20s", "2h 5m", "4d 1h": how long ago or how far ahead, for people. */
export function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export { ConfigError };
