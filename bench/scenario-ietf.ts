// Scenario: the IETF Resumable Uploads draft against tus 1.0.0 on the same tuspass server, same run,
// alternating who goes first: one large upload (the draft's POST with the whole body, Upload-Complete:
// ?1, against tus's POST + one PATCH), and many small ones (the draft's POST against tus's
// creation-with-upload), 32 at a time over keep-alive connections. Both answer with the completion
// form, md5 checked.
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { createUpload, createWithUpload, patchFile, send, uploadId, type Timed } from './client.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer } from './servers.ts';
import { mbps, median, summarize } from './stats.ts';

const PROTOCOLS = ['draft', 'tus'] as const;
const SMALL = 16 * 1024;
const CONCURRENCY = 32;
const MIN_RATIO = 0.95;
const DRAFT = { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' };

/** The draft's creation with the whole body: its final answer (node's client skips the 104s). */
async function draftUpload(
  base: string,
  body: Buffer | { file: string; start: number; end: number },
  length: number,
  agent?: http.Agent,
): Promise<Timed & { location: string }> {
  const t = await send(
    `${base}/files/`,
    'POST',
    { ...DRAFT, 'Content-Length': length, 'Content-Disposition': 'inline; filename="bench.bin"' },
    body,
    agent,
  );
  if (t.answer.status !== 200) throw new Error(`draft POST answered ${t.answer.status} ${t.answer.body.slice(0, 200)}`);
  return { ...t, location: new URL(String(t.answer.headers.location), base).toString() };
}

export async function ietf(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const count = ctx.quick ? 500 : 2000;
  const file = await ctx.file(size);
  const small = crypto.randomBytes(SMALL);
  const server = await startServer('tuspass', path.join(ctx.tmp, 'ietf-tuspass'), { profileDir: ctx.profileDir });
  const samples = new Samples();
  const checks: Check[] = [];
  const md5Of = (t: Timed) => (JSON.parse(t.answer.body || '{}') as { md5?: string }).md5;
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const protocol of rotate(PROTOCOLS, round)) {
        let t: Timed;
        let location: string;
        if (protocol === 'draft') {
          const d = await draftUpload(server.url, { file: file.path, start: 0, end: size }, size);
          ({ location } = d);
          t = d;
        } else {
          const started = performance.now();
          location = await createUpload(server.url, size);
          t = { ...(await patchFile(location, file.path, 0, size)), startedAt: started };
        }
        samples.add(`${protocol} large`, mbps(size, t.answeredAt - t.startedAt));
        checks.push({
          name: `round ${round + 1}: ${protocol} completion md5 = file md5`,
          pass: md5Of(t) === file.md5,
          detail: `${md5Of(t)} vs ${file.md5}`,
        });
        removeUpload(server.storeDir, uploadId(location));
      }
      for (const protocol of rotate(PROTOCOLS, round)) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
        const ids: string[] = [];
        let next = 0;
        const started = performance.now();
        const worker = async () => {
          while (next < count) {
            next++;
            const t =
              protocol === 'draft'
                ? await draftUpload(server.url, small, SMALL, agent)
                : await createWithUpload(server.url, small, agent);
            ids.push(uploadId(t.location));
          }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        samples.add(`${protocol} small`, count / ((performance.now() - started) / 1000));
        agent.destroy();
        for (const id of ids) removeUpload(server.storeDir, id);
      }
      ctx.log(
        `  round ${round + 1}: large draft ${samples.get('draft large').at(-1)!.toFixed(0)} / tus ` +
          `${samples.get('tus large').at(-1)!.toFixed(0)} MB/s; small draft ` +
          `${samples.get('draft small').at(-1)!.toFixed(0)} / tus ${samples.get('tus small').at(-1)!.toFixed(0)} ` +
          'per s',
      );
    }
  } finally {
    await server.stop();
  }
  const ratio = (kind: string) => samples.get(`draft ${kind}`).map((v, i) => v / samples.get(`tus ${kind}`)[i]!);
  const large = median(ratio('large'));
  const smallRatio = median(ratio('small'));
  return {
    id: 'ietf',
    title:
      `IETF draft vs tus on one tuspass: one upload of ${size / MiB} MiB, ${count} of 16 KiB (${CONCURRENCY} at a ` +
      'time)',
    settings: { bytes: size, count, smallBytes: SMALL, concurrency: CONCURRENCY, rounds: ctx.rounds },
    figures: [
      ...PROTOCOLS.map((p) => ({
        metric: 'large upload throughput',
        unit: 'MB/s',
        side: p,
        summary: summarize(samples.get(`${p} large`)),
      })),
      ...PROTOCOLS.map((p) => ({
        metric: 'small uploads per second',
        unit: '/s',
        side: p,
        summary: summarize(samples.get(`${p} small`)),
      })),
      { metric: 'ratio large MB/s', unit: 'x', side: 'draft/tus', summary: summarize(ratio('large')) },
      { metric: 'ratio small uploads/s', unit: 'x', side: 'draft/tus', summary: summarize(ratio('small')) },
    ],
    targets: [
      {
        id: 'ietf-large',
        rule: `one large upload by the draft / by tus (median of rounds) >= ${MIN_RATIO}`,
        measured: large,
        limit: MIN_RATIO,
        unit: 'x',
        pass: large >= MIN_RATIO,
      },
      {
        id: 'ietf-small',
        rule: `small uploads by the draft / by tus (median of rounds) >= ${MIN_RATIO}`,
        measured: smallRatio,
        limit: MIN_RATIO,
        unit: 'x',
        pass: smallRatio >= MIN_RATIO,
      },
    ],
    checks,
  };
}
