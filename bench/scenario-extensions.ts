// Scenario 6: what tus extensions the reference lacks cost on tuspass — a single PATCH with and
// without `Upload-Checksum` (sha1 and md5 of the body verified while it streams), and tus-js-client
// sending the same file in one stream and with `parallelUploads: 4` (concatenation). tuspass only:
// @tus/server + @tus/file-store supports neither extension.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { createUpload, patchFile, uploadId } from './client.ts';
import { GiB, MiB, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer } from './servers.ts';
import { mbps, summarize } from './stats.ts';

async function digestOf(file: string, algorithm: string): Promise<string> {
  const h = crypto.createHash(algorithm);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('base64');
}

/** tus-js-client from this process, the file streamed from disk; resolves with the completion answer's md5. */
function tusJsUpload(endpoint: string, file: string, parallelUploads: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(fs.createReadStream(file), {
      endpoint,
      chunkSize: parallelUploads > 1 ? 64 * MiB : 256 * MiB,
      parallelUploads,
      retryDelays: [],
      metadata: { filename: 'bench.bin' },
      onSuccess: ({ lastResponse }) => resolve((JSON.parse(lastResponse.getBody() || '{}') as { md5?: string }).md5),
      onError: reject,
    });
    upload.start();
  });
}

export async function extensions(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const file = await ctx.file(size);
  const sums = { sha1: await digestOf(file.path, 'sha1'), md5: await digestOf(file.path, 'md5') };
  const server = await startServer('tuspass', path.join(ctx.tmp, 'extensions'));
  const samples = new Samples();
  const checks: Check[] = [];
  const sides = ['plain', 'sha1', 'md5'] as const;
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of sides) {
        const location = await createUpload(server.url, size);
        const extra = side === 'plain' ? {} : { 'Upload-Checksum': `${side} ${sums[side]}` };
        const t = await patchFile(location, file.path, 0, size, extra);
        samples.add(side, mbps(size, t.answeredAt - t.startedAt));
        removeUpload(server.storeDir, uploadId(location));
      }
      for (const parallel of [1, 4]) {
        const started = performance.now();
        const md5 = await tusJsUpload(`${server.url}/files/`, file.path, parallel);
        samples.add(`tus-js-client x${parallel}`, mbps(size, performance.now() - started));
        checks.push({
          name: `round ${round + 1}: parallelUploads ${parallel}: completion md5 = file md5`,
          pass: md5 === file.md5,
          detail: `${md5} vs ${file.md5}`,
        });
      }
      const measured = [...sides, 'tus-js-client x1', 'tus-js-client x4'];
      ctx.log(
        `  round ${round + 1}: ${measured.map((s) => `${s} ${samples.get(s).at(-1)!.toFixed(0)}`).join(', ')} MB/s`,
      );
      // Uploads made by tus-js-client: clear the store between rounds.
      for (const name of fs.readdirSync(server.storeDir)) fs.rmSync(path.join(server.storeDir, name), { force: true });
    }
  } finally {
    await server.stop();
  }
  const ratio = (a: string) => samples.get(a).map((v, i) => v / samples.get('plain')[i]!);
  return {
    id: 'extensions',
    title: `6. tus extensions on tuspass, ${size / MiB} MiB: checksum verification, parallel uploads (tuspass only)`,
    settings: { bytes: size, rounds: ctx.rounds },
    figures: [
      { metric: 'single PATCH, no checksum', unit: 'MB/s', side: 'tuspass', summary: summarize(samples.get('plain')) },
      {
        metric: 'single PATCH, Upload-Checksum sha1',
        unit: 'MB/s',
        side: 'tuspass',
        summary: summarize(samples.get('sha1')),
      },
      {
        metric: 'single PATCH, Upload-Checksum md5',
        unit: 'MB/s',
        side: 'tuspass',
        summary: summarize(samples.get('md5')),
      },
      { metric: 'with sha1 checksum / without', unit: 'x', side: 'tuspass', summary: summarize(ratio('sha1')) },
      { metric: 'with md5 checksum / without', unit: 'x', side: 'tuspass', summary: summarize(ratio('md5')) },
      {
        metric: 'tus-js-client, one stream',
        unit: 'MB/s',
        side: 'tuspass',
        summary: summarize(samples.get('tus-js-client x1')),
      },
      {
        metric: 'tus-js-client, parallelUploads 4',
        unit: 'MB/s',
        side: 'tuspass',
        summary: summarize(samples.get('tus-js-client x4')),
      },
    ],
    targets: [],
    checks,
  };
}
