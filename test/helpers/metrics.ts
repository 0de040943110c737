// Scraping /metrics in tests: the Prometheus text as a map from a series (name and sorted labels) to its value.
import assert from 'node:assert/strict';

export type Scrape = Map<string, number>;

/** `name{a="1",b="2"}` with the labels sorted, so a series is found whatever order they are written in. */
export function series(name: string, labels: Record<string, string> = {}): string {
  const keys = Object.keys(labels).sort();
  return keys.length ? `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}` : name;
}

export function parseMetrics(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    assert.ok(m, `a well-formed sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.set(series(m[1]!, labels), Number(m[3]));
  }
  return out;
}

export async function scrape(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; text: string; metrics: Scrape }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    text,
    metrics: res.status === 200 ? parseMetrics(text) : new Map(),
  };
}

/** How much each series moved between two scrapes (0 for a series new in the second, counted from 0). */
export const delta = (before: Scrape, after: Scrape, key: string): number =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);
