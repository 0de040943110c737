// What every scenario gets (options, temp space, test files) and what it hands back (figures,
// targets, checks) — the shape of bench/results/latest.json.
import type { Summary } from './stats.ts';

export interface BenchContext {
  quick: boolean;
  rounds: number;
  /** Scratch space under os.tmpdir(), removed at the end of the run. */
  tmp: string;
  /** Set with --profile: tuspass's server processes run under `node --cpu-prof` and write here. */
  profileDir?: string;
  /** A file of `bytes` bytes under tmp (made once per size), with its md5. */
  file(bytes: number): Promise<{ path: string; md5: string }>;
  log(line: string): void;
}

export interface Figure {
  metric: string;
  unit: string;
  /** tuspass, reference, raw, machine, or a ratio like tuspass/raw. */
  side: string;
  summary: Summary;
}

export interface Target {
  id: string;
  rule: string;
  measured: number;
  limit: number;
  unit: string;
  pass: boolean;
}

/** A correctness check made along the way (digest equal to the file's, offsets right). */
export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  settings: Record<string, unknown>;
  figures: Figure[];
  targets: Target[];
  checks: Check[];
}

export type Scenario = (ctx: BenchContext) => Promise<ScenarioResult>;

export const MiB = 1 << 20;
export const GiB = 1 << 30;

/** Alternates who goes first from round to round, so warm caches and background writeback favour no side. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Collects per-side values round by round. */
export class Samples {
  private readonly values = new Map<string, number[]>();
  add(key: string, value: number): void {
    const list = this.values.get(key) ?? [];
    list.push(value);
    this.values.set(key, list);
  }
  get(key: string): number[] {
    return this.values.get(key) ?? [];
  }
}
