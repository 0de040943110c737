// The stdout table and the JSON file (bench/results/) that later runs are compared against.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { ScenarioResult } from './scenario.ts';
import type { Summary } from './stats.ts';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
}

export interface BenchReport {
  date: string;
  mode: 'quick' | 'full';
  /** The code measured: git commit, "-dirty" when server/ or hooks/ had uncommitted changes. */
  commit: string;
  machine: Machine;
  client: string;
  durationSeconds: number;
  scenarios: ScenarioResult[];
  targets: { id: string; rule: string; measured: number; limit: number; unit: string; pass: boolean }[];
  checksPassed: boolean;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** BENCH_COMMIT names the code when it is not a git checkout (a `git archive` snapshot). */
export function commit(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'server', 'hooks'], { encoding: 'utf8' }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

const fmt = (n: number): string => {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  return abs >= 100 ? n.toFixed(0) : abs >= 10 ? n.toFixed(1) : n.toFixed(2);
};

const cells = (s: Summary) => [fmt(s.median), `${fmt(s.min)}..${fmt(s.max)}`, `${s.spreadPct.toFixed(0)}%`];

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function render(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `tuspass bench (${report.mode}) ${report.date} — ${m.cpus} CPUs ${m.cpuModel}, ` +
      `${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${m.node}, code ${report.commit}, ` +
      `${report.durationSeconds.toFixed(0)} s`,
  );
  out.push(`client: ${report.client}`);
  out.push('MB = 10^6 bytes; every figure is the median over rounds, with min..max and spread (max-min)/median.');
  for (const s of report.scenarios) {
    out.push('', s.title);
    out.push(
      table([
        ['metric', 'side', 'unit', 'median', 'min..max', 'spread'],
        ...s.figures.map((f) => [f.metric, f.side, f.unit, ...cells(f.summary)]),
      ]),
    );
    const failed = s.checks.filter((c) => !c.pass);
    if (s.checks.length)
      out.push(
        failed.length
          ? `checks: ${failed.length} of ${s.checks.length} FAILED: ` +
              `${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`
          : `checks: ${s.checks.length} passed`,
      );
  }
  out.push('', 'Targets');
  out.push(
    table([
      ['target', 'rule', 'unit', 'measured', 'limit', 'result'],
      ...report.targets.map((t) => [t.id, t.rule, t.unit, fmt(t.measured), fmt(t.limit), t.pass ? 'pass' : 'FAIL']),
    ]),
  );
  return out.join('\n');
}

export function writeJson(file: string, report: BenchReport): void {
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
