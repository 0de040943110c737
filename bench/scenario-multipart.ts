// Scenario: the nginx upload module's multipart POST (/upload) next to tuspass's own tus PATCH, one
// large file with md5 each, alternated round by round, each side in its own server process (so each
// peak RSS is that path's alone). Target: multipart >= 0.9 x tus PATCH, with no more memory.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createUpload, patchFile, uploadId } from './client.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess } from './servers.ts';
import { mbps, median, summarize } from './stats.ts';

const SIDES = ['tus PATCH', 'multipart POST'] as const;
type Path = (typeof SIDES)[number];
const MIN_RATIO = 0.9;
const BOUNDARY = '----tuspassBench7MA4YWxkTrZu0gW';

/** POST <base>/upload with one file part streamed from disk (1 MiB reads), as curl -F would send it. */
function postMultipart(
  base: string,
  file: string,
  size: number,
): Promise<{ status: number; body: string; ms: number }> {
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; ` +
      `name="terminal"\r\n\r\nyes\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="file1"; ` +
      'filename="bench.bin"\r\nContent-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      `${base}/upload`,
      {
        method: 'POST',
        headers: {
          'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`,
          'Content-Length': head.length + size + tail.length,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(parts).toString(),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.on('error', reject);
    const body = (async function* () {
      yield head;
      yield* fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
      yield tail;
    })();
    pipeline(body, req).catch(() => undefined);
  });
}

export async function multipart(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const file = await ctx.file(size);
  const servers = new Map<Path, ServerProcess>();
  for (const side of SIDES)
    servers.set(side, await startServer('tuspass', path.join(ctx.tmp, `multipart-${side.split(' ')[0]}`)));
  const samples = new Samples();
  const checks: Check[] = [];
  const peaks = new Map<Path, number>();
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of rotate(SIDES, round)) {
        const server = servers.get(side)!;
        let md5: string | undefined;
        if (side === 'tus PATCH') {
          const location = await createUpload(server.url, size);
          const t = await patchFile(location, file.path, 0, size);
          samples.add(side, mbps(size, t.answeredAt - t.startedAt));
          md5 = (JSON.parse(t.answer.body || '{}') as { md5?: string }).md5;
          removeUpload(server.storeDir, uploadId(location));
        } else {
          const r = await postMultipart(server.url, file.path, size);
          if (r.status !== 200) throw new Error(`multipart POST answered ${r.status} ${r.body.slice(0, 200)}`);
          samples.add(side, mbps(size, r.ms));
          md5 = (JSON.parse(r.body) as { md5?: string }).md5;
          for (const name of fs.readdirSync(server.storeDir))
            if (!name.startsWith('.')) fs.rmSync(path.join(server.storeDir, name), { force: true });
        }
        checks.push({
          name: `round ${round + 1}: ${side} completion md5 = file md5`,
          pass: md5 === file.md5,
          detail: `${md5} vs ${file.md5}`,
        });
      }
      ctx.log(`  round ${round + 1}: ${SIDES.map((s) => `${s} ${samples.get(s).at(-1)!.toFixed(0)}`).join(', ')} MB/s`);
    }
    for (const [side, server] of servers) peaks.set(side, (await server.memory()).peakRss / 1e6);
  } finally {
    for (const server of servers.values()) await server.stop();
  }
  const ratios = samples.get('multipart POST').map((v, i) => v / samples.get('tus PATCH')[i]!);
  const memoryRatio = peaks.get('multipart POST')! / peaks.get('tus PATCH')!;
  return {
    id: 'multipart',
    title: `Multipart POST /upload (nginx upload module clients) vs tus PATCH, one file of ${size / MiB} MiB with md5`,
    settings: { bytes: size, rounds: ctx.rounds },
    figures: [
      ...SIDES.map((side) => ({ metric: 'throughput', unit: 'MB/s', side, summary: summarize(samples.get(side)) })),
      ...SIDES.map((side) => ({
        metric: 'server peak RSS over the rounds',
        unit: 'MB',
        side,
        summary: summarize([peaks.get(side)!]),
      })),
      { metric: 'ratio', unit: 'x', side: 'multipart/tus', summary: summarize(ratios) },
    ],
    targets: [
      {
        id: 'multipart-throughput',
        rule: `multipart POST >= ${MIN_RATIO} x tus PATCH`,
        measured: median(ratios),
        limit: MIN_RATIO,
        unit: 'x',
        pass: median(ratios) >= MIN_RATIO,
      },
      // 5% slack: two processes' peaks differ by a few MB of heap timing alone.
      {
        id: 'multipart-memory',
        rule: 'multipart peak RSS <= tus PATCH peak RSS (+5%)',
        measured: memoryRatio,
        limit: 1.05,
        unit: 'x',
        pass: memoryRatio <= 1.05,
      },
    ],
    checks,
  };
}
