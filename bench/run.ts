// `npm run bench [-- --quick] [--only throughput,small] [--rounds N] [--profile]`
// Runs the scenarios one after another, each alternating tuspass and its reference round by round,
// prints the table and writes bench/results/latest.json (and quick.json or full.json).
// --profile runs tuspass's server processes under `node --cpu-prof` and prints where the time goes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CLIENT_DESCRIPTION } from './client.ts';
import { makeFile, md5File } from './files.ts';
import { profilesIn, summarizeProfile } from './profile-summary.ts';
import { commit, machine, render, writeJson, type BenchReport } from './report.ts';
import type { BenchContext, Scenario, ScenarioResult } from './scenario.ts';
import { balancer } from './scenario-balancer.ts';
import { concurrency } from './scenario-concurrency.ts';
import { extensions } from './scenario-extensions.ts';
import { finishing } from './scenario-finishing.ts';
import { ietf } from './scenario-ietf.ts';
import { multipart } from './scenario-multipart.ts';
import { resume } from './scenario-resume.ts';
import { s3 } from './scenario-s3.ts';
import { smallUploads } from './scenario-small.ts';
import { throughput } from './scenario-throughput.ts';

const SCENARIOS: Record<string, Scenario> = {
  throughput,
  multipart,
  finishing,
  small: smallUploads,
  concurrency,
  resume,
  extensions,
  balancer,
  ietf,
  s3,
};
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
const only = args.only ? args.only.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS);
const unknown = only.filter((s) => !SCENARIOS[s]);
if (unknown.length) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
// Full runs have the time for more rounds, which steadies the medians.
const rounds = args.rounds ? Number(args.rounds) : args.quick ? 3 : 5;
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`--rounds must be a whole number >= 1, got ${args.rounds}`);
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-bench-'));
const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
const profileDir = args.profile
  ? path.join(RESULTS, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'))
  : undefined;
const files = new Map<number, Promise<{ path: string; md5: string }>>();
const ctx: BenchContext = {
  quick: args.quick,
  rounds,
  tmp,
  profileDir,
  file(bytes) {
    let made = files.get(bytes);
    if (!made) {
      const file = path.join(tmp, `source-${bytes}.bin`);
      made = makeFile(file, bytes).then(async () => ({ path: file, md5: (await md5File(file)).md5 }));
      files.set(bytes, made);
    }
    return made;
  },
  log: (line) => console.error(line),
};

const started = performance.now();
const results: ScenarioResult[] = [];
try {
  for (const name of only) {
    console.error(`${name}...`);
    results.push(await SCENARIOS[name]!(ctx));
  }
} finally {
  cleanup();
}

const report: BenchReport = {
  date: new Date().toISOString(),
  mode: args.quick ? 'quick' : 'full',
  commit: commit(),
  machine: machine(),
  client: CLIENT_DESCRIPTION,
  durationSeconds: (performance.now() - started) / 1000,
  scenarios: results,
  targets: results.flatMap((r) => r.targets),
  checksPassed: results.every((r) => r.checks.every((c) => c.pass)),
};
console.log(render(report));
// Partial or profiled runs are not comparable with full ones: they do not replace latest.json.
const name = args.only || args.profile || args.rounds ? 'partial.json' : 'latest.json';
fs.mkdirSync(RESULTS, { recursive: true });
writeJson(path.join(RESULTS, name), report);
if (name === 'latest.json') writeJson(path.join(RESULTS, `${report.mode}.json`), report);
console.log(`\nresults: ${path.relative(process.cwd(), path.join(RESULTS, name))}`);
if (profileDir) {
  console.log(
    `\nCPU profiles of tuspass's server processes (open in Chrome DevTools or speedscope): ` +
      `${path.relative(process.cwd(), profileDir)}`,
  );
  for (const file of profilesIn(profileDir)) console.log(`\n${summarizeProfile(file, 15)}`);
}
if (!report.checksPassed) process.exitCode = 1;
