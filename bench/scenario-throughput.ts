// Scenario 1: one large upload in a single PATCH over loopback — tuspass (md5 + completion form),
// the reference (@tus/server + FileStore, no hooks) and a raw node:http + md5 pipeline (and the same
// without md5), next to the machine's copy and md5 limits, all alternated round by round.
import path from 'node:path';
import { createUpload, patchFile, uploadId } from './client.ts';
import { copyMBps, copyWithMd5MBps, md5MBps } from './machine-limits.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess, type Side } from './servers.ts';
import { mbps, median, summarize } from './stats.ts';

const SIDES: Side[] = ['tuspass', 'reference', 'raw', 'raw-plain'];
const MIN_RATIO_TO_RAW = 0.8;
// md5 costs nothing on the request's core: as fast as the reference, which computes nothing, and
// close to raw-plain (node:http piped to a file); the byte path's CPU close to what node allows
// (raw: the same pipe with md5 inline).
const MIN_RATIO_TO_REFERENCE = 1.0;
const MIN_RATIO_TO_RAW_PLAIN = 0.9;
const MAX_CPU_TO_RAW = 1.25;

export async function throughput(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const file = await ctx.file(size);
  const servers = new Map<Side, ServerProcess>();
  for (const side of SIDES) {
    servers.set(
      side,
      await startServer(side, path.join(ctx.tmp, `throughput-${side}`), {
        profileDir: side === 'tuspass' ? ctx.profileDir : undefined,
      }),
    );
  }
  const samples = new Samples();
  const checks: Check[] = [];
  const peaks = new Map<Side, number>();
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      samples.add('copy', await copyMBps(file.path, path.join(ctx.tmp, 'copy.bin'), size));
      samples.add('md5', await md5MBps(file.path, size));
      samples.add('copy+md5', await copyWithMd5MBps(file.path, path.join(ctx.tmp, 'copy.bin'), size));
      for (const side of rotate(SIDES, round)) {
        const server = servers.get(side)!;
        const location = await createUpload(server.url, size);
        const cpuBefore = server.cpuMs();
        const t = await patchFile(location, file.path, 0, size);
        samples.add(side, mbps(size, t.answeredAt - t.startedAt));
        // The server's CPU (all its threads) for the PATCH, its completion included, per GiB.
        samples.add(`${side} cpu`, ((server.cpuMs() - cpuBefore) / 1000) * (GiB / size));
        if (side === 'tuspass') {
          const md5 = (JSON.parse(t.answer.body || '{}') as { md5?: string }).md5;
          checks.push({
            name: `round ${round + 1}: tuspass completion md5 = file md5`,
            pass: md5 === file.md5,
            detail: `${md5} vs ${file.md5}`,
          });
        }
        removeUpload(server.storeDir, uploadId(location));
      }
      ctx.log(
        `  round ${round + 1}: ${SIDES.map((s) => `${s} ${samples.get(s).at(-1)!.toFixed(0)}`).join(', ')} MB/s; ` +
          `copy ${samples.get('copy').at(-1)!.toFixed(0)}, md5 ${samples.get('md5').at(-1)!.toFixed(0)}`,
      );
    }
    // Each side's process served every round: its VmHWM is the peak over all of them.
    for (const [side, server] of servers) peaks.set(side, (await server.memory()).peakRss / 1e6);
  } finally {
    for (const server of servers.values()) await server.stop();
  }

  // Ratios round by round: both sides of a ratio ran back to back, so they saw the same machine.
  const ratio = (a: string, b: string) => samples.get(a).map((v, i) => v / samples.get(b)[i]!);
  const toRaw = ratio('tuspass', 'raw');
  const toReference = ratio('tuspass', 'reference');
  const toRawPlain = ratio('tuspass', 'raw-plain');
  const cpuToRaw = ratio('tuspass cpu', 'raw cpu');
  const mb = (side: string) => ({
    metric: 'single PATCH throughput',
    unit: 'MB/s',
    side,
    summary: summarize(samples.get(side)),
  });
  return {
    id: 'throughput',
    title: `1. Large upload, one PATCH of ${size / MiB} MiB`,
    settings: { bytes: size, rounds: ctx.rounds },
    figures: [
      mb('tuspass'),
      mb('reference'),
      mb('raw'),
      mb('raw-plain'),
      {
        metric: 'machine: file copy (stream, 1 MiB reads)',
        unit: 'MB/s',
        side: 'machine',
        summary: summarize(samples.get('copy')),
      },
      {
        metric: 'machine: node md5 of the file',
        unit: 'MB/s',
        side: 'machine',
        summary: summarize(samples.get('md5')),
      },
      {
        metric: 'machine: file copy + md5, no HTTP',
        unit: 'MB/s',
        side: 'machine',
        summary: summarize(samples.get('copy+md5')),
      },
      ...SIDES.map((side) => ({
        metric: 'server peak RSS over the rounds',
        unit: 'MB',
        side,
        summary: summarize([peaks.get(side)!]),
      })),
      ...SIDES.map((side) => ({
        metric: 'server CPU per GiB (all threads)',
        unit: 's',
        side,
        summary: summarize(samples.get(`${side} cpu`)),
      })),
      { metric: 'ratio', unit: 'x', side: 'tuspass/reference', summary: summarize(toReference) },
      { metric: 'ratio', unit: 'x', side: 'tuspass/raw', summary: summarize(toRaw) },
      { metric: 'ratio', unit: 'x', side: 'tuspass/raw-plain', summary: summarize(toRawPlain) },
      { metric: 'ratio of server CPU per GiB', unit: 'x', side: 'tuspass/raw', summary: summarize(cpuToRaw) },
    ],
    targets: [
      {
        id: 'throughput',
        rule: `tuspass single upload with md5 >= ${MIN_RATIO_TO_RAW} x raw node:http + md5`,
        measured: median(toRaw),
        limit: MIN_RATIO_TO_RAW,
        unit: 'x',
        pass: median(toRaw) >= MIN_RATIO_TO_RAW,
      },
      {
        id: 'throughput-reference',
        rule: `tuspass single upload with md5 >= ${MIN_RATIO_TO_REFERENCE} x the reference (median of rounds)`,
        measured: median(toReference),
        limit: MIN_RATIO_TO_REFERENCE,
        unit: 'x',
        pass: median(toReference) >= MIN_RATIO_TO_REFERENCE,
      },
      {
        id: 'throughput-raw-plain',
        rule: `tuspass single upload with md5 >= ${MIN_RATIO_TO_RAW_PLAIN} x raw-plain, no md5 (median of rounds)`,
        measured: median(toRawPlain),
        limit: MIN_RATIO_TO_RAW_PLAIN,
        unit: 'x',
        pass: median(toRawPlain) >= MIN_RATIO_TO_RAW_PLAIN,
      },
      {
        id: 'throughput-cpu',
        rule: `tuspass server CPU per GiB with md5 <= ${MAX_CPU_TO_RAW} x raw's, md5 inline (median of rounds)`,
        measured: median(cpuToRaw),
        limit: MAX_CPU_TO_RAW,
        unit: 'x',
        pass: median(cpuToRaw) <= MAX_CPU_TO_RAW,
      },
    ],
    checks,
  };
}
