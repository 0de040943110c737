// Scenario 3: many small uploads — 16 KiB each with creation-with-upload (one POST carries the whole
// file), 32 in flight at a time over keep-alive connections: uploads per second and latency.
import crypto from 'node:crypto';
import { benchToken } from './auth-token.ts';
import http from 'node:http';
import path from 'node:path';
import { createWithUpload, uploadId } from './client.ts';
import { deleteRedisPrefix } from './redis-cleanup.ts';
import { rotate, Samples, type BenchContext, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess, type Side } from './servers.ts';
import { median, percentile, summarize } from './stats.ts';

// tuspass twice: as configured by default (md5 + completion form posted and recorded in SQLite for
// every upload), and as the upload server alone (md5, no form), which is the reference's work.
// And 'tuspass-quiet': as 'tuspass' with metrics and logging switched off, to measure what they cost in the same run.
// And 'tuspass-auth': as 'tuspass' with bearer tokens required, each upload with a token of its own
// (no verified token is reused: the whole cost of verification every time).
const SIDES: Side[] = ['tuspass', 'tuspass-redis', 'tuspass-auth', 'tuspass-quiet', 'tuspass-noform', 'reference'];
const SIZE = 16 * 1024;
const CONCURRENCY = 32;
const WARMUP = 64;

/** Runs `count` uploads with `CONCURRENCY` workers; returns the wall time and each upload's latency. */
export async function burst(
  server: ServerProcess,
  body: Buffer,
  count: number,
): Promise<{ ms: number; latencies: number[]; cpuMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  const ids: string[] = [];
  let next = 0;
  const cpuBefore = server.cpuMs();
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      next++;
      const t = await createWithUpload(
        server.url,
        body,
        agent,
        server.side === 'tuspass-auth' ? { Authorization: `Bearer ${benchToken()}` } : {},
      );
      latencies.push(t.answeredAt - t.startedAt);
      ids.push(uploadId(t.location));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - started;
  // Read before the removals below, which are the client's work.
  const cpuMs = server.cpuMs() - cpuBefore;
  agent.destroy();
  for (const id of ids) removeUpload(server.storeDir, id);
  return { ms, latencies, cpuMs };
}

export async function smallUploads(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.quick ? 500 : 2000;
  const body = crypto.randomBytes(SIZE);
  const servers = new Map<Side, ServerProcess>();
  for (const side of SIDES) {
    servers.set(
      side,
      await startServer(side, path.join(ctx.tmp, `small-${side}`), {
        profileDir: side.startsWith('tuspass') ? ctx.profileDir : undefined,
      }),
    );
  }
  const samples = new Samples();
  try {
    for (const server of servers.values()) await burst(server, body, WARMUP);
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of rotate(SIDES, round)) {
        const { ms, latencies, cpuMs } = await burst(servers.get(side)!, body, count);
        samples.add(`${side} rate`, count / (ms / 1000));
        samples.add(`${side} cpu`, (cpuMs * 1000) / count);
        samples.add(`${side} p50`, percentile(latencies, 50));
        samples.add(`${side} p99`, percentile(latencies, 99));
      }
      const last = (s: Side, what: string, digits: number) => samples.get(`${s} ${what}`).at(-1)!.toFixed(digits);
      const line = SIDES.map((s) => `${s} ${last(s, 'rate', 0)}/s p99 ${last(s, 'p99', 1)} ms`).join('; ');
      ctx.log(`  round ${round + 1}: ${line}`);
    }
  } finally {
    for (const server of servers.values()) await server.stop();
    // server-child.ts's prefix for 'tuspass-redis': the server process's pid.
    const redis = servers.get('tuspass-redis');
    if (redis) await deleteRedisPrefix(`tuspass-bench-${redis.pid}:`);
  }

  const ratioTo = (side: Side) => samples.get(`${side} rate`).map((v, i) => v / samples.get('reference rate')[i]!);
  const rate = {
    tuspass: median(samples.get('tuspass rate')),
    noform: median(samples.get('tuspass-noform rate')),
    reference: median(samples.get('reference rate')),
  };
  // Metrics and logs on vs off, round by round (the sides alternate within each round).
  const onOff = samples.get('tuspass rate').map((v, i) => v / samples.get('tuspass-quiet rate')[i]!);
  // Authentication on vs off, round by round.
  const authOnOff = samples.get('tuspass-auth rate').map((v, i) => v / samples.get('tuspass rate')[i]!);
  // The same costs as server CPU time per upload (steadier on a shared machine): off / on, so 0.97
  // means the feature adds 3% to what an upload costs the server.
  const cpuRatio = (on: Side, off: Side) => samples.get(`${off} cpu`).map((v, i) => v / samples.get(`${on} cpu`)[i]!);
  const onOffCpu = cpuRatio('tuspass', 'tuspass-quiet');
  const authOnOffCpu = cpuRatio('tuspass-auth', 'tuspass');
  // The Redis locker (REDIS_URL) against the memory locker, round by round.
  const redisMemory = samples.get('tuspass-redis rate').map((v, i) => v / samples.get('tuspass rate')[i]!);
  return {
    id: 'small',
    title: `3. ${count} uploads of 16 KiB (creation-with-upload), ${CONCURRENCY} at a time`,
    settings: { count, bytes: SIZE, concurrency: CONCURRENCY, warmup: WARMUP, rounds: ctx.rounds },
    figures: [
      ...SIDES.flatMap((side) => [
        { metric: 'uploads per second', unit: '/s', side, summary: summarize(samples.get(`${side} rate`)) },
        { metric: 'latency p50', unit: 'ms', side, summary: summarize(samples.get(`${side} p50`)) },
        { metric: 'latency p99', unit: 'ms', side, summary: summarize(samples.get(`${side} p99`)) },
        { metric: 'server CPU per upload', unit: 'µs', side, summary: summarize(samples.get(`${side} cpu`)) },
      ]),
      { metric: 'ratio uploads/s', unit: 'x', side: 'tuspass/reference', summary: summarize(ratioTo('tuspass')) },
      {
        metric: 'ratio uploads/s',
        unit: 'x',
        side: 'tuspass-noform/reference',
        summary: summarize(ratioTo('tuspass-noform')),
      },
      {
        metric: 'ratio uploads/s',
        unit: 'x',
        side: 'tuspass/tuspass-quiet (metrics+logs on/off)',
        summary: summarize(onOff),
      },
      {
        metric: 'ratio uploads/s',
        unit: 'x',
        side: 'tuspass-auth/tuspass (auth on/off)',
        summary: summarize(authOnOff),
      },
      {
        metric: 'ratio uploads/s',
        unit: 'x',
        side: 'tuspass-redis/tuspass (Redis locker/memory locker)',
        summary: summarize(redisMemory),
      },
      {
        metric: 'ratio CPU per upload',
        unit: 'x',
        side: 'quiet/tuspass (metrics+logs off/on)',
        summary: summarize(onOffCpu),
      },
      {
        metric: 'ratio CPU per upload',
        unit: 'x',
        side: 'tuspass/tuspass-auth (auth off/on)',
        summary: summarize(authOnOffCpu),
      },
    ],
    targets: [
      {
        id: 'small',
        rule: 'tuspass upload server (md5, no form) uploads/s >= reference uploads/s (medians)',
        measured: rate.noform,
        limit: rate.reference,
        unit: '/s',
        pass: rate.noform >= rate.reference,
      },
      {
        id: 'small-metrics-logs',
        rule: 'metrics and logging cost at most 3% of uploads/s: tuspass / tuspass-quiet (median of rounds) >= 0.97',
        measured: median(onOff),
        limit: 0.97,
        unit: 'x',
        pass: median(onOff) >= 0.97,
      },
      {
        id: 'small-auth',
        rule:
          'bearer-token verification and ownership cost at most 5% of uploads/s: tuspass-auth / tuspass (median of ' +
          'rounds) >= 0.95',
        measured: median(authOnOff),
        limit: 0.95,
        unit: 'x',
        pass: median(authOnOff) >= 0.95,
      },
      {
        id: 'small-redis',
        rule: 'the Redis locker costs at most 10% of uploads/s: tuspass-redis / tuspass (median of rounds) >= 0.90',
        measured: median(redisMemory),
        limit: 0.9,
        unit: 'x',
        pass: median(redisMemory) >= 0.9,
      },
      {
        id: 'small-with-form',
        rule: 'tuspass with the completion form uploads/s >= reference uploads/s (medians)',
        measured: rate.tuspass,
        limit: rate.reference,
        unit: '/s',
        pass: rate.tuspass >= rate.reference,
      },
    ],
    checks: [],
  };
}
