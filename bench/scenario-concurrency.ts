// Scenario 4: many uploads at once — 64 of 32 MiB (quick: 16), each a create + one PATCH, all in
// flight together: aggregate MB/s and the server process's peak RSS. Each round gets a fresh server
// process, so its VmHWM is this round's peak and nothing else's.
import fs from 'node:fs';
import path from 'node:path';
import { createUpload, patchFile, uploadId } from './client.ts';
import { MiB, rotate, Samples, type BenchContext, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type Side } from './servers.ts';
import { mbps, summarize } from './stats.ts';

const SIDES: Side[] = ['tuspass', 'reference'];
const SIZE = 32 * MiB;
const MAX_PEAK_MB = 200;

export async function concurrency(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.quick ? 16 : 64;
  const file = await ctx.file(SIZE);
  const samples = new Samples();
  for (let round = 0; round < ctx.rounds; round++) {
    for (const side of rotate(SIDES, round)) {
      const dataDir = path.join(ctx.tmp, `concurrency-${side}-${round}`);
      const server = await startServer(side, dataDir, { profileDir: side === 'tuspass' ? ctx.profileDir : undefined });
      try {
        const idle = await server.memory();
        const started = performance.now();
        const locations = await Promise.all(
          Array.from({ length: count }, async () => {
            const location = await createUpload(server.url, SIZE);
            await patchFile(location, file.path, 0, SIZE);
            return location;
          }),
        );
        const ms = performance.now() - started;
        const memory = await server.memory();
        samples.add(`${side} MB/s`, mbps(SIZE * count, ms));
        samples.add(`${side} peak`, memory.peakRss / 1e6);
        samples.add(`${side} idle`, idle.rss / 1e6);
        for (const location of locations) removeUpload(server.storeDir, uploadId(location));
      } finally {
        await server.stop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
    const last = (s: Side, what: string) => samples.get(`${s} ${what}`).at(-1)!.toFixed(0);
    const line = SIDES.map((s) => `${s} ${last(s, 'MB/s')} MB/s, peak RSS ${last(s, 'peak')} MB`).join('; ');
    ctx.log(`  round ${round + 1}: ${line}`);
  }

  const worstPeak = Math.max(...samples.get('tuspass peak'));
  return {
    id: 'concurrency',
    title: `4. ${count} concurrent uploads of 32 MiB`,
    settings: { count, bytes: SIZE, rounds: ctx.rounds },
    figures: SIDES.flatMap((side) => [
      { metric: 'aggregate throughput', unit: 'MB/s', side, summary: summarize(samples.get(`${side} MB/s`)) },
      { metric: 'server peak RSS (VmHWM)', unit: 'MB', side, summary: summarize(samples.get(`${side} peak`)) },
      {
        metric: 'server RSS when idle, before the uploads',
        unit: 'MB',
        side,
        summary: summarize(samples.get(`${side} idle`)),
      },
    ]),
    targets: [
      {
        id: 'memory',
        rule: `tuspass peak RSS with ${count} x 32 MiB in flight < ${MAX_PEAK_MB} MB (worst round)`,
        measured: worstPeak,
        limit: MAX_PEAK_MB,
        unit: 'MB',
        pass: worstPeak < MAX_PEAK_MB,
      },
    ],
    checks: [],
  };
}
