// Several upload servers on one store with the Redis locker (REDIS_URL): any instance serves any
// request of an upload, locks are handed over across instances, and writes are fenced.
// Real Redis on 127.0.0.1:6379 (.ci/run starts it); each test has its own key prefix, removed after.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { REDIS, redisPair as pair } from './helpers/redis-pair.ts';
import { freePort } from './helpers/ports.ts';
import { create, patch, tus } from './helpers/tus.ts';

/** A PATCH that completes the upload answers with the completion's answer (200) or 204. */
const done = (status: number) => assert.ok(status === 200 || status === 204, `status ${status}`);

const on = (server: TestServer, uploadUrl: string) => `${server.url}${new URL(uploadUrl).pathname}`;

async function recordMd5(base: string, id: string): Promise<string | undefined> {
  const until = Date.now() + 5000;
  for (;;) {
    const list = await recordsWhenPresent(base, 1);
    const rec = list.find((r) => JSON.stringify(r).includes(id));
    if (rec || Date.now() > until) return rec ? String((rec as { md5?: string }).md5 ?? JSON.stringify(rec).match(/"md5":"([0-9a-f]{32})"/)?.[1]) : undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('an upload written through A, then B, then A: each sees the other\'s offset; one record, the right md5', async (t) => {
  const { a, b } = await pair(t);
  const bytes = patternBytes(300_000, 3);
  const url = await create(a.endpoint, bytes.length, { name: 'abc.bin' });
  assert.equal((await patch(on(a, url), 0, bytes.subarray(0, 100_000))).status, 204);
  assert.equal((await tus('HEAD', on(b, url))).headers['upload-offset'], '100000');
  assert.equal((await patch(on(b, url), 100_000, bytes.subarray(100_000, 200_000))).status, 204);
  assert.equal((await tus('HEAD', on(a, url))).headers['upload-offset'], '200000');
  // A's cached digest state is at 100000 from its own write: it must notice B wrote and reload.
  done((await patch(on(a, url), 200_000, bytes.subarray(200_000))).status);
  const id = new URL(url).pathname.split('/').pop()!;
  assert.equal(await recordMd5(a.url, id), md5(bytes));
  assert.equal((await recordsWhenPresent(a.url, 1)).length, 1);
});

test('the digest cache notices another instance wrote even at the same offset (version)', async (t) => {
  const { a, b } = await pair(t);
  const bytes = patternBytes(200_000, 4);
  const url = await create(a.endpoint, bytes.length);
  // A writes 100000 (its live state at 100000); B writes from there with a checksum that fails,
  // so the file goes back to 100000 — same offset, A's state still right; then B writes good bytes
  // and A continues: A's state (at 100000) is behind and must be reloaded.
  assert.equal((await patch(on(a, url), 0, bytes.subarray(0, 100_000))).status, 204);
  const bad = await patch(on(b, url), 100_000, bytes.subarray(100_000, 150_000), { 'Upload-Checksum': `sha1 ${crypto.createHash('sha1').update('x').digest('base64')}` });
  assert.equal(bad.status, 460);
  assert.equal((await patch(on(b, url), 100_000, bytes.subarray(100_000, 150_000))).status, 204);
  done((await patch(on(a, url), 150_000, bytes.subarray(150_000))).status);
  assert.equal(await recordMd5(a.url, new URL(url).pathname.split('/').pop()!), md5(bytes));
});

/** A PATCH whose body arrives slowly; resolves with the status (or 'closed'). */
function slowPatch(url: string, offset: number, body: Buffer, chunk: number, everyMs: number) {
  let sent = 0;
  const req = http.request(url, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(body.length) } });
  const answer = new Promise<number | 'closed'>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', () => resolve(res.statusCode!));
    });
    req.on('error', () => resolve('closed'));
  });
  const timer = setInterval(() => {
    if (sent >= body.length || req.destroyed) return clearInterval(timer);
    req.write(body.subarray(sent, sent + chunk));
    sent += chunk;
  }, everyMs);
  return { answer, sent: () => sent, stop: () => (clearInterval(timer), req.destroy()) };
}

test('a slow PATCH on A and a HEAD on B: the lock is handed over within seconds, the offset consistent', async (t) => {
  const { a, b } = await pair(t);
  const bytes = patternBytes(1_000_000, 5);
  const url = await create(a.endpoint, bytes.length);
  const slow = slowPatch(on(a, url), 0, bytes, 16_384, 20);
  t.after(() => slow.stop());
  await new Promise((r) => setTimeout(r, 600));
  const started = Date.now();
  const head = await tus('HEAD', on(b, url));
  const took = Date.now() - started;
  assert.equal(head.status, 200);
  assert.ok(took < 5000, `handover took ${took} ms`);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset > 0 && offset <= slow.sent(), `offset ${offset}, sent ${slow.sent()}`);
  await slow.answer;
  // The bytes kept are the client's bytes, and the upload finishes through B.
  assert.equal((await tus('HEAD', on(b, url))).headers['upload-offset'], String(offset));
  done((await patch(on(b, url), offset, bytes.subarray(offset))).status);
  assert.equal(await recordMd5(a.url, new URL(url).pathname.split('/').pop()!), md5(bytes));
});

test('two PATCHes at the same offset on two instances at once, many times: never interleaved', async (t) => {
  const { a, b } = await pair(t);
  const size = 400_000;
  for (let round = 0; round < 12; round++) {
    const one = patternBytes(size, 10 + round);
    const two = patternBytes(size, 100 + round);
    const url = await create(a.endpoint, size);
    // A PATCH cut by the handover loses its connection (its bytes are kept): a reset, not an answer.
    const cut = { status: 0, body: 'reset' };
    const answers = await Promise.all([patch(on(a, url), 0, one).catch(() => cut), patch(on(b, url), 0, two).catch(() => cut)]);
    for (const ans of answers) assert.ok([0, 200, 204, 409, 423].includes(ans.status), `round ${round}: ${ans.status} ${ans.body}`);
    const offset = Number((await tus('HEAD', on(a, url))).headers['upload-offset']);
    const id = new URL(url).pathname.split('/').pop()!;
    const file = fs.readFileSync(path.join(a.config.storeDir, id));
    assert.equal(file.length, offset);
    const winner = file.equals(one.subarray(0, offset)) ? one : file.equals(two.subarray(0, offset)) ? two : undefined;
    assert.ok(winner, `round ${round}: the file mixes both bodies`);
    if (offset < size) done((await patch(on(b, url), offset, winner.subarray(offset))).status);
    assert.equal(await recordMd5(a.url, id), md5(winner), `round ${round}`);
  }
});

test('fencing: a holder whose lock was taken over writes nothing more', async (t) => {
  const { a, prefix } = await pair(t);
  const bytes = patternBytes(2_000_000, 6);
  const url = await create(a.endpoint, bytes.length);
  const id = new URL(url).pathname.split('/').pop()!;
  const slow = slowPatch(on(a, url), 0, bytes, 200_000, 100);
  t.after(() => slow.stop());
  await new Promise((r) => setTimeout(r, 350));
  // As if A paused past its lease and another instance took the lock: the key now holds another token.
  const r = new Redis(REDIS);
  t.after(() => r.disconnect());
  await r.set(`${prefix}lock:${id}`, 'someone-else', 'PX', 60_000);
  const file = path.join(a.config.storeDir, id);
  await new Promise((res) => setTimeout(res, 600));
  const frozen = fs.statSync(file).size;
  await new Promise((res) => setTimeout(res, 600));
  assert.equal(fs.statSync(file).size, frozen, 'the file grew after the lock was lost');
  assert.ok(frozen < bytes.length);
  assert.ok(fs.readFileSync(file).equals(bytes.subarray(0, frozen)));
  await r.del(`${prefix}lock:${id}`);
  await slow.answer;
});


async function ownRedis(t: TestContext, port: number): Promise<{ stop(): Promise<void> }> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  t.after(() => proc.kill('SIGKILL'));
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) break;
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { stop: async () => { proc.kill('SIGKILL'); await exited; } };
}

test('Redis going away mid-upload: writes refused with 503, nothing corrupted, recovery when it returns', async (t) => {
  const port = await freePort();
  let redis = await ownRedis(t, port);
  const url0 = `redis://127.0.0.1:${port}`;
  const { a, b } = await pair(t, url0);
  const bytes = patternBytes(300_000, 7);
  const url = await create(a.endpoint, bytes.length);
  const id = new URL(url).pathname.split('/').pop()!;
  assert.equal((await patch(on(a, url), 0, bytes.subarray(0, 100_000))).status, 204);
  await redis.stop();
  const refused = await patch(on(b, url), 100_000, bytes.subarray(100_000, 200_000));
  assert.equal(refused.status, 503);
  assert.match(refused.body, /^ERR_LOCK_UNAVAILABLE/);
  const creation = await tus('POST', a.endpoint, { 'Upload-Length': '10' });
  assert.equal(creation.status, 503, creation.body);
  assert.equal(fs.statSync(path.join(a.config.storeDir, id)).size, 100_000);
  redis = await ownRedis(t, port);
  // ioredis reconnects within its retry delay (at most 2 s).
  let head;
  for (let i = 0; i < 50; i++) {
    head = await tus('HEAD', on(b, url));
    if (head.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(head!.headers['upload-offset'], '100000');
  done((await patch(on(b, url), 100_000, bytes.subarray(100_000))).status);
  assert.equal(await recordMd5(a.url, id), md5(bytes));
});

test('REDIS_URL that cannot be reached fails the start, naming the setting', async (t) => {
  const port = await freePort();
  await assert.rejects(startTestServer(t, { redisUrl: `redis://127.0.0.1:${port}` }), /REDIS_URL/);
});
