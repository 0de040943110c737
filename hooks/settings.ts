// Parsers for the hook settings in server/config.ts, written to accept what tusd's flags accept so a
// tusd command line carries over: Go durations (500ms, 1s, 1m30s; a bare number is seconds, as older
// tusd took it) and comma-separated event lists whose unknown names are refused by name.
import { HOOK_EVENTS, isHookEvent, type HookEventType } from './types.ts';
import { BUILTIN_MODULES } from './transports/module.ts';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in ms. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) throw new Error(`is not a duration like 500ms, 2s or 1m30s: "${raw}"`);
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}

/** A duration in ms that must be above zero (a zero timeout or interval would refuse everything). */
export function parsePositiveDuration(raw: string): number {
  const ms = parseDuration(raw);
  if (ms <= 0) throw new Error(`must be longer than 0, got "${raw}"`);
  return ms;
}

export function parseEventList(raw: string): HookEventType[] {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !isHookEvent(n));
  if (unknown.length) throw new Error(`unknown hook event ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${HOOK_EVENTS.join(', ')}`);
  return [...new Set(names)] as HookEventType[];
}

export function parseList(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Built-in module names; `none` turns them all off. */
export function parseBuiltins(raw: string): string[] {
  const names = parseList(raw);
  if (names.length === 1 && names[0] === 'none') return [];
  const unknown = names.filter((n) => !BUILTIN_MODULES.includes(n));
  if (unknown.length) throw new Error(`unknown built-in hook ${unknown.join(', ')}; known: ${BUILTIN_MODULES.join(', ')}, or none`);
  return names;
}

export function parseBoolean(raw: string): boolean {
  const t = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw new Error(`must be true or false, got "${raw}"`);
}
