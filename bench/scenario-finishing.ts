// Scenario 2: what finishing costs — from the last byte handed to the socket to the final response —
// for a 1 MiB and a 1 GiB upload, each in one PATCH. Digests are computed on the way in, so it must
// not grow with size. tuspass's final response waits for the completion form's answer; the reference
// has no hook; the raw node:http + md5 server does no finishing work at all.
// Measured two ways:
// - drained (the target): the client holds the last 64 KiB back until the server has had 300 ms to
//   read everything before it and the bytes it wrote are flushed to disk (fdatasync of the stored file,
//   from the bench). Without the flush, the kernel's writeback of those megabytes runs during the
//   finish on this 2-core machine (about 2 GB are dirty here at any time, the background threshold)
//   and slows every process: the raw server's finish grew 1.9x. Then the time measured is the
//   server's own work after its last byte;
// - in flight: the body sent without a pause. Then the figure also holds the megabytes still queued in
//   the two sockets' kernel buffers when the client's last write returns; the raw server shows what
//   that transfer alone costs on this machine.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createUpload, patchFile, uploadId } from './client.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess, type Side } from './servers.ts';
import { median, summarize } from './stats.ts';

const SIDES: Side[] = ['tuspass', 'reference', 'raw'];
/** 1 MiB uploads are quick and noisy: each round takes the median of several. */
const SMALL_PER_ROUND = 7;
const MAX_GROWTH = 2;

const SETTLE = { tailBytes: 64 * 1024, ms: 300 };

/** fsync of the upload's file as the server has it so far (same machine): its dirty pages written back. */
async function flushed(file: string): Promise<void> {
  const handle = await fsp.open(file, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Last byte -> response of one PATCH carrying the whole upload. */
async function finishMs(
  server: ServerProcess,
  file: string,
  bytes: number,
  settle: typeof SETTLE | undefined,
): Promise<number> {
  const location = await createUpload(server.url, bytes);
  const stored = path.join(server.storeDir, uploadId(location));
  const t = await patchFile(location, file, 0, bytes, {}, settle && { ...settle, before: () => flushed(stored) });
  removeUpload(server.storeDir, uploadId(location));
  return t.answeredAt - t.lastByteAt;
}

export async function finishing(ctx: BenchContext): Promise<ScenarioResult> {
  const bigSize = ctx.quick ? 256 * MiB : GiB;
  const small = await ctx.file(MiB);
  const big = await ctx.file(bigSize);
  const servers = new Map<Side, ServerProcess>();
  for (const side of SIDES) {
    servers.set(
      side,
      await startServer(side, path.join(ctx.tmp, `finishing-${side}`), {
        profileDir: side === 'tuspass' ? ctx.profileDir : undefined,
      }),
    );
  }
  const samples = new Samples();
  try {
    // One untimed upload per side: the first request of a process pays for compiling its code paths.
    for (const server of servers.values()) await finishMs(server, small.path, MiB, SETTLE);
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of rotate(SIDES, round)) {
        const server = servers.get(side)!;
        for (const [mode, settle] of [
          ['drained', SETTLE],
          ['in flight', undefined],
        ] as const) {
          const smalls: number[] = [];
          for (let i = 0; i < SMALL_PER_ROUND; i++) smalls.push(await finishMs(server, small.path, MiB, settle));
          samples.add(`${side} small ${mode}`, median(smalls));
          samples.add(`${side} big ${mode}`, await finishMs(server, big.path, bigSize, settle));
        }
      }
      const at = (key: string) => samples.get(key).at(-1)!.toFixed(1);
      const drained = (s: Side) =>
        `${s} 1 MiB ${at(`${s} small drained`)} ms, ${bigSize / MiB} MiB ${at(`${s} big drained`)} ms`;
      const inFlight = (s: Side) => `(in flight ${at(`${s} small in flight`)} / ${at(`${s} big in flight`)} ms)`;
      ctx.log(`  round ${round + 1}: ${SIDES.map((s) => `${drained(s)} ${inFlight(s)}`).join('; ')}`);
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }

  const growth = (side: Side, mode: string) =>
    samples.get(`${side} big ${mode}`).map((v, i) => v / samples.get(`${side} small ${mode}`)[i]!);
  const medianGrowth = (side: Side, mode: string) =>
    median(samples.get(`${side} big ${mode}`)) / median(samples.get(`${side} small ${mode}`));
  const figures = (['drained', 'in flight'] as const).flatMap((mode) =>
    SIDES.flatMap((side) => [
      {
        metric: `finishing 1 MiB, ${mode}`,
        unit: 'ms',
        side,
        summary: summarize(samples.get(`${side} small ${mode}`)),
      },
      {
        metric: `finishing ${bigSize / MiB} MiB, ${mode}`,
        unit: 'ms',
        side,
        summary: summarize(samples.get(`${side} big ${mode}`)),
      },
      {
        metric: `finishing ${bigSize / MiB} MiB / 1 MiB, ${mode}`,
        unit: 'x',
        side,
        summary: summarize(growth(side, mode)),
      },
    ]),
  );
  const drained = medianGrowth('tuspass', 'drained');
  const inFlight = medianGrowth('tuspass', 'in flight');
  const rawInFlight = medianGrowth('raw', 'in flight');
  return {
    id: 'finishing',
    title: `2. Finishing cost, 1 MiB vs ${bigSize / MiB} MiB (one PATCH each)`,
    settings: {
      smallBytes: MiB,
      bigBytes: bigSize,
      smallPerRound: SMALL_PER_ROUND,
      rounds: ctx.rounds,
      settle: SETTLE,
    },
    figures,
    targets: [
      {
        id: 'finishing',
        rule:
          `tuspass finishing ${bigSize / MiB} MiB <= ${MAX_GROWTH} x finishing 1 MiB (medians; last 64 KiB sent ` +
          'once the server has read and flushed the rest)',
        measured: drained,
        limit: MAX_GROWTH,
        unit: 'x',
        pass: drained <= MAX_GROWTH,
      },
      {
        id: 'finishing-in-flight',
        rule:
          `(context) the same with the body sent without a pause: tuspass's growth within 1.5 x the raw server's ` +
          `(${rawInFlight.toFixed(1)} x), which only moves bytes`,
        measured: inFlight,
        limit: rawInFlight * 1.5,
        unit: 'x',
        pass: inFlight <= rawInFlight * 1.5,
      },
    ],
    checks: [],
  };
}
