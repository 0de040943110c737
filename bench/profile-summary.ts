// Reads .cpuprofile files (node --cpu-prof) and prints where the time went: the functions with the
// most self time, the same grouped by package or project file, and tuspass's own functions by
// inclusive time (their callees counted, native calls too — what a fix in that function can win).
// Run on its own:
//   node --import tsx bench/profile-summary.ts <file.cpuprofile|dir> [top]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<pkg> (scoped too), node: internals, or the file path inside the project. */
function origin(url: string): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return url;
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1]!;
  // The servers run as esbuild bundles (bin/bundle.js, servers.ts): their frames are the project's.
  const bundle = /\/(dist\/[^/]+\.mjs)$/.exec(url);
  if (bundle) return bundle[1]!;
  const project = /\/(server|hooks|bench|client)\/.*$/.exec(url);
  return project ? project[0].slice(1) : url;
}

export function summarizeProfile(file: string, top = 20): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attributing it to sample i is how DevTools does it.
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fns = new Map<string, number>();
  const origins = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const name = `${functionName || '(anonymous)'}  ${origin(url)}${url ? `:${lineNumber + 1}` : ''}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    origins.set(origin(url), (origins.get(origin(url)) ?? 0) + us);
    // Each project function on the sample's stack gets the sample once (recursion is not counted twice).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const where = origin(frame.url);
      if (!/^(server|hooks|client|dist)\//.test(where)) continue;
      const key = `${frame.functionName || '(anonymous)'}  ${where}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, us]) =>
          `  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
      );
  return [
    `${path.relative(process.cwd(), file)}: ${(total / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle`,
    ' top functions by self time:',
    ...rows(fns),
    ' by package / file:',
    ...rows(origins).slice(0, 12),
    ' tuspass functions by inclusive time (callees included):',
    ...rows(inclusive),
  ].join('\n');
}

/**
 * The main-thread profiles under a directory (recursively). Node names them
 * CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; thread 0 is the main thread, the others are
 * tsx's module loader, which only compiles at startup.
 */
export function profilesIn(target: string): string[] {
  if (!fs.statSync(target).isDirectory()) return [target];
  return (fs.readdirSync(target, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.cpuprofile') && !/\.\d+\.[1-9]\d*\.\d+\.cpuprofile$/.test(f))
    .sort()
    .map((f) => path.join(target, f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [target, top] = process.argv.slice(2);
  if (!target) {
    console.error('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile|dir> [top]');
    process.exit(2);
  }
  for (const file of profilesIn(target)) console.log(`${summarizeProfile(file, Number(top) || 20)}\n`);
}
