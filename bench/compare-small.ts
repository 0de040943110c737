// The small uploads of scenario 3 (16 KiB creation-with-upload, 32 at a time: scenario-small.ts's
// bursts) for this tree's `tuspass` and `tuspass-noform` (or the sides `--sides` names: any of
// server-child.ts's tuspass sides, e.g. tuspass-redis), the same sides of another checkout
// (`--before DIR`: a `git archive` of the commit before a change, its node_modules linked) and the
// reference, in one run, the order rotated round by round: uploads/s and server CPU per upload, and
// each side's ratios to the reference round by round (both ran in the same round).
//   node --import tsx bench/compare-small.ts --before DIR [--rounds 7] [--count 500] [--sides tuspass,tuspass-redis]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { burst } from './scenario-small.ts';
import { rotate, Samples } from './scenario.ts';
import type { Side } from './server-child.ts';
import { startServer, type ServerProcess } from './servers.ts';
import { summarize, type Summary } from './stats.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg('rounds') ?? 7);
const COUNT = Number(arg('count') ?? 500);
const WARMUP = 64;
const before = arg('before');

type Start = (side: Side, dir: string) => Promise<ServerProcess>;
const sides: Array<{ name: string; start: () => Promise<ServerProcess> }> = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-compare-small-'));
const add = (name: string, start: Start, side: Parameters<Start>[0]) =>
  sides.push({ name, start: () => start(side, path.join(tmp, name.replace(/\W+/g, '-'))) });
const compared = (arg('sides') ?? 'tuspass,tuspass-noform').split(',').map((s) => s.trim() as Side);
for (const side of compared) add(side, startServer, side);
if (before) {
  const other = (await import(path.resolve(before, 'bench/servers.ts'))) as typeof import('./servers.ts');
  for (const side of compared) add(`${side} (before)`, other.startServer, side);
}
add('reference', startServer, 'reference');

const body = crypto.randomBytes(16 * 1024);
const servers = new Map<string, ServerProcess>();
const samples = new Samples();
try {
  for (const side of sides) servers.set(side.name, await side.start());
  for (const server of servers.values()) await burst(server, body, WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    for (const { name } of rotate(sides, round)) {
      const { ms, cpuMs } = await burst(servers.get(name)!, body, COUNT);
      samples.add(`${name} rate`, COUNT / (ms / 1000));
      samples.add(`${name} cpu`, (cpuMs * 1000) / COUNT);
    }
    const line = sides.map(({ name }) => `${name} ${samples.get(`${name} rate`).at(-1)!.toFixed(0)}/s`).join('; ');
    console.error(`round ${round + 1}: ${line}`);
  }
} finally {
  for (const server of servers.values()) await server.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}

const show = (s: Summary, digits: number) =>
  `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}..${s.max.toFixed(digits)})`;
const perRound = (name: string, what: string) =>
  samples.get(`${name} ${what}`).map((v, i) => v / samples.get(`reference ${what}`)[i]!);
console.log(`${ROUNDS} rounds of ${COUNT} uploads of 16 KiB, 32 at a time; medians (min..max)`);
console.log('| side | uploads/s | server CPU per upload (µs) | uploads/s ÷ reference | CPU ÷ reference |');
console.log('|---|---|---|---|---|');
for (const { name } of sides) {
  const cells = [
    show(summarize(samples.get(`${name} rate`)), 0),
    show(summarize(samples.get(`${name} cpu`)), 0),
    name === 'reference' ? '' : show(summarize(perRound(name, 'rate')), 2),
    name === 'reference' ? '' : show(summarize(perRound(name, 'cpu')), 2),
  ];
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
