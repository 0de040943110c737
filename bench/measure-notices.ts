// Measures post-finish notice delivery through the durable queue (figures for a report):
//  1. receiver up: delay from the client's final PATCH answer to the notice's arrival, over 100 uploads;
//  2. receiver down for 30 s under 50 uploads: how many arrive, how long after it is back, duplicates.
//   node --import tsx bench/measure-notices.ts [--outage-seconds 30] [--uploads 100] [--outage-uploads 50]
// Uses the default queue backoff (RETRY_MIN_MS 1000, RETRY_MAX_MS 300000) unless set in the environment.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { configFor } from '../server/config/config.ts';
import { startTuspass } from '../server/start/start.ts';
import type { HookRequest } from '../hooks/types.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const UPLOADS = arg('uploads', 100);
const OUTAGE_UPLOADS = arg('outage-uploads', 50);
const OUTAGE_MS = arg('outage-seconds', 30) * 1000;

const arrivals = new Map<string, { at: number; noticeIds: string[] }>();
let port = 0;
let receiver: http.Server | undefined;

async function receiverUp(): Promise<void> {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const request = JSON.parse(body) as HookRequest;
      const entry = arrivals.get(request.Event.Upload.ID) ?? { at: Date.now(), noticeIds: [] };
      entry.noticeIds.push(String(req.headers['hook-notice-id']));
      arrivals.set(request.Event.Upload.ID, entry);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver!.listen(port, '127.0.0.1', () => r()));
  port = (receiver.address() as { port: number }).port;
}

async function receiverDown(): Promise<void> {
  const s = receiver!;
  receiver = undefined;
  await new Promise<void>((r) => {
    s.close(() => r());
    s.closeAllConnections();
  });
}

const tusHeaders = { 'Tus-Resumable': '1.0.0' };
async function upload(base: string, i: number): Promise<{ id: string; finishedAt: number }> {
  const post = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...tusHeaders,
      'Upload-Length': '1024',
      'Upload-Metadata': `filename ${Buffer.from(`m${i}.bin`).toString('base64')}`,
    },
  });
  const url = new URL(post.headers.get('location')!, base).toString();
  const patch = await fetch(url, {
    method: 'PATCH',
    headers: { ...tusHeaders, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: Buffer.alloc(1024, i),
  });
  await patch.text();
  if (patch.status >= 300) throw new Error(`upload ${i}: PATCH answered ${patch.status}`);
  return { id: url.split('/').pop()!, finishedAt: Date.now() };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  await receiverUp();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-measure-'));
  const config = configFor({
    dataDir,
    port: 0,
    hooksHttp: `http://127.0.0.1:${port}/hooks`,
    hooksEnabledEvents: ['post-finish'],
    ...(process.env.RETRY_MIN_MS ? { retryMinMs: Number(process.env.RETRY_MIN_MS) } : {}),
    ...(process.env.RETRY_MAX_MS ? { retryMaxMs: Number(process.env.RETRY_MAX_MS) } : {}),
  });
  const s = await startTuspass(config, { log: () => {} });
  try {
    // 1. Receiver up.
    const delays: number[] = [];
    for (let i = 0; i < UPLOADS; i++) {
      const { id, finishedAt } = await upload(s.url, i);
      while (!arrivals.has(id)) await new Promise((r) => setTimeout(r, 1));
      delays.push(arrivals.get(id)!.at - finishedAt);
    }
    console.log(
      `receiver up, ${UPLOADS} uploads: post-finish notice after the final PATCH answer: median ${median(delays)} ` +
        `ms, p90 ${pct(delays, 90)} ms, max ${Math.max(...delays)} ms`,
    );

    // 2. Receiver down for the outage, uploads spread over it.
    arrivals.clear();
    await receiverDown();
    const downAt = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < OUTAGE_UPLOADS; i++) {
      ids.push((await upload(s.url, i)).id);
      await new Promise((r) => setTimeout(r, (OUTAGE_MS * 0.8) / OUTAGE_UPLOADS));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
    const pendingAtReturn = s.queue.pending().length;
    const deliveredDuringOutage = ids.filter((id) => arrivals.has(id)).length;
    await receiverUp();
    const upAt = Date.now();
    const drained = await s.queue.drained(10 * 60_000);
    const lastAt = Math.max(...ids.map((id) => arrivals.get(id)?.at ?? NaN));
    const got = ids.filter((id) => arrivals.has(id));
    const firstAfter = Math.min(...got.map((id) => arrivals.get(id)!.at)) - upAt;
    const copies = [...arrivals.values()].reduce((n, a) => n + a.noticeIds.length, 0);
    const withoutId = [...arrivals.values()]
      .flatMap((a) => a.noticeIds)
      .filter((x) => !/^[0-9a-f-]{36}$/.test(x)).length;
    console.log(
      `receiver down ${OUTAGE_MS / 1000} s, ${OUTAGE_UPLOADS} uploads: ${deliveredDuringOutage} delivered during ` +
        `the outage, ${pendingAtReturn} queued when it came back; ` +
        `${got.length}/${OUTAGE_UPLOADS} delivered in the end (queue drained: ${drained}), first ${firstAfter} ms ` +
        `and last ${lastAt - upAt} ms after it came back; ` +
        `${copies - got.length} duplicate deliveries, ${withoutId} without a notice id`,
    );
  } finally {
    await s.close();
    await receiverDown().catch(() => {});
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
