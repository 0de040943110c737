// Scenario 2: what finishing costs — from the last byte handed to the socket to the final response —
// for a 1 MiB and a 1 GiB upload. Digests are computed on the way in, so it must not grow with size.
// tuspass's final response waits for the completion form's answer; the reference has no hook. The raw
// node:http + md5 server does no finishing work at all: its figures are what the bytes still in
// flight (socket buffers) cost after the client's last write — the floor for every side.
// To take those bytes in flight out, each size is also finished by a separate last PATCH of 1 MiB
// (the rest sent and acknowledged first): then only work that depends on the upload's size remains.
import path from 'node:path';
import { createUpload, patchFile, uploadId } from './client.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess, type Side } from './servers.ts';
import { median, summarize } from './stats.ts';

const SIDES: Side[] = ['tuspass', 'reference', 'raw'];
/** 1 MiB uploads are quick and noisy: each round takes the median of several. */
const SMALL_PER_ROUND = 7;
const MAX_GROWTH = 2;

/** Last byte -> response of the PATCH that finishes the upload; `tail` bytes sent in it (all when undefined). */
async function finishMs(server: ServerProcess, file: string, bytes: number, tail = bytes): Promise<number> {
  const location = await createUpload(server.url, bytes);
  if (tail < bytes) await patchFile(location, file, 0, bytes - tail);
  const t = await patchFile(location, file, bytes - tail, bytes);
  removeUpload(server.storeDir, uploadId(location));
  return t.answeredAt - t.lastByteAt;
}

export async function finishing(ctx: BenchContext): Promise<ScenarioResult> {
  const bigSize = ctx.quick ? 256 * MiB : GiB;
  const small = await ctx.file(MiB);
  const big = await ctx.file(bigSize);
  const servers = new Map<Side, ServerProcess>();
  for (const side of SIDES) {
    servers.set(side, await startServer(side, path.join(ctx.tmp, `finishing-${side}`), { profileDir: side === 'tuspass' ? ctx.profileDir : undefined }));
  }
  const samples = new Samples();
  try {
    // One untimed upload per side: the first request of a process pays for compiling its code paths.
    for (const server of servers.values()) await finishMs(server, small.path, MiB);
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of rotate(SIDES, round)) {
        const server = servers.get(side)!;
        const smalls: number[] = [];
        for (let i = 0; i < SMALL_PER_ROUND; i++) smalls.push(await finishMs(server, small.path, MiB));
        samples.add(`${side} small`, median(smalls));
        samples.add(`${side} big`, await finishMs(server, big.path, bigSize));
        samples.add(`${side} big, last MiB`, await finishMs(server, big.path, bigSize, MiB));
      }
      ctx.log(`  round ${round + 1}: ${SIDES.map((s) => `${s} 1 MiB ${samples.get(`${s} small`).at(-1)!.toFixed(1)} ms, ${bigSize / MiB} MiB ${samples.get(`${s} big`).at(-1)!.toFixed(1)} ms (final 1 MiB PATCH ${samples.get(`${s} big, last MiB`).at(-1)!.toFixed(1)} ms)`).join('; ')}`);
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }

  const growth = (side: Side) => samples.get(`${side} big`).map((v, i) => v / samples.get(`${side} small`)[i]!);
  const tuspassGrowth = median(samples.get('tuspass big')) / median(samples.get('tuspass small'));
  const tuspassFinalGrowth = median(samples.get('tuspass big, last MiB')) / median(samples.get('tuspass small'));
  const figures = SIDES.flatMap((side) => [
    { metric: 'finishing 1 MiB (last byte -> response)', unit: 'ms', side, summary: summarize(samples.get(`${side} small`)) },
    { metric: `finishing ${bigSize / MiB} MiB (last byte -> response)`, unit: 'ms', side, summary: summarize(samples.get(`${side} big`)) },
    { metric: `finishing ${bigSize / MiB} MiB / 1 MiB`, unit: 'x', side, summary: summarize(growth(side)) },
    { metric: `finishing ${bigSize / MiB} MiB, final PATCH of 1 MiB`, unit: 'ms', side, summary: summarize(samples.get(`${side} big, last MiB`)) },
  ]);
  return {
    id: 'finishing',
    title: `2. Finishing cost, 1 MiB vs ${bigSize / MiB} MiB`,
    settings: { smallBytes: MiB, bigBytes: bigSize, smallPerRound: SMALL_PER_ROUND, rounds: ctx.rounds },
    figures,
    targets: [
      {
        id: 'finishing',
        rule: `tuspass finishing ${bigSize / MiB} MiB <= ${MAX_GROWTH} x finishing 1 MiB (medians)`,
        measured: tuspassGrowth,
        limit: MAX_GROWTH,
        unit: 'x',
        pass: tuspassGrowth <= MAX_GROWTH,
      },
      {
        id: 'finishing-final-patch',
        rule: `(supplementary) same, the ${bigSize / MiB} MiB upload finished by a 1 MiB PATCH: no bytes in flight`,
        measured: tuspassFinalGrowth,
        limit: MAX_GROWTH,
        unit: 'x',
        pass: tuspassFinalGrowth <= MAX_GROWTH,
      },
    ],
    checks: [],
  };
}
