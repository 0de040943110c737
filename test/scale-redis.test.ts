// Several upload servers on one store with the Redis locker (REDIS_URL): any instance serves any
// request of an upload, locks are handed over across instances, and writes are fenced.
// Real Redis on 127.0.0.1:6379 (.ci/run starts it); each test has its own key prefix, removed after.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { prefixFor, REDIS, redisPair as pair } from './helpers/redis-pair.ts';
import { RedisLocker } from '../server/backends/locker/redis-locker.ts';
import { freePort } from './helpers/ports.ts';
import { create, patch, tus } from './helpers/tus.ts';
import { ownRedis } from './helpers/engines.ts';
import { EngineUnavailableError } from '../server/backends/engine-wait.ts';

/** A PATCH that completes the upload answers with the completion's answer (200) or 204. */
const done = (status: number) => assert.ok(status === 200 || status === 204, `status ${status}`);

const on = (server: TestServer, uploadUrl: string) => `${server.url}${new URL(uploadUrl).pathname}`;

async function recordMd5(base: string, id: string): Promise<string | undefined> {
  const until = Date.now() + 5000;
  for (;;) {
    const list = await recordsWhenPresent(base, 1);
    const rec = list.find((r) => JSON.stringify(r).includes(id));
    if (rec || Date.now() > until)
      return rec
        ? String((rec as { md5?: string }).md5 ?? JSON.stringify(rec).match(/"md5":"([0-9a-f]{32})"/)?.[1])
        : undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("an upload written through A, then B, then A: each sees \
the other's offset; one record, the right md5", async (t) => {
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
  const bad = await patch(on(b, url), 100_000, bytes.subarray(100_000, 150_000), {
    'Upload-Checksum': `sha1 ${crypto.createHash('sha1').update('x').digest('base64')}`,
  });
  assert.equal(bad.status, 460);
  assert.equal((await patch(on(b, url), 100_000, bytes.subarray(100_000, 150_000))).status, 204);
  done((await patch(on(a, url), 150_000, bytes.subarray(150_000))).status);
  assert.equal(await recordMd5(a.url, new URL(url).pathname.split('/').pop()!), md5(bytes));
});

/** A PATCH whose body arrives slowly; resolves with the status (or 'closed'). */
function slowPatch(url: string, offset: number, body: Buffer, chunk: number, everyMs: number) {
  let sent = 0;
  const req = http.request(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(body.length),
    },
  });
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
    const answers = await Promise.all([
      patch(on(a, url), 0, one).catch(() => cut),
      patch(on(b, url), 0, two).catch(() => cut),
    ]);
    for (const ans of answers)
      assert.ok([0, 200, 204, 409, 423].includes(ans.status), `round ${round}: ${ans.status} ${ans.body}`);
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

test('Redis going away mid-upload: HEAD answers the offset on disk, a PATCH and a creation wait for it and go on when \
it returns; nothing written meanwhile', async (t) => {
  const redis = await ownRedis(t);
  const { a, b } = await pair(t, redis.url);
  const bytes = patternBytes(300_000, 7);
  const url = await create(a.endpoint, bytes.length);
  const id = new URL(url).pathname.split('/').pop()!;
  assert.equal((await patch(on(a, url), 0, bytes.subarray(0, 100_000))).status, 204);
  await redis.stop();
  // A read: answered without the lock (no write can happen meanwhile), never a status tus clients take for "start
  // over".
  const head = await tus('HEAD', on(b, url));
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], '100000');
  const waiting = patch(on(b, url), 100_000, bytes.subarray(100_000, 200_000));
  const creation = tus('POST', a.endpoint, { 'Upload-Length': '10' });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(fs.statSync(path.join(a.config.storeDir, id)).size, 100_000, 'nothing written while Redis is away');
  await redis.start();
  // ioredis reconnects within its retry delay (at most 2 s); the waiting requests take their locks then.
  assert.equal((await waiting).status, 204);
  assert.equal((await creation).status, 201);
  done((await patch(on(b, url), 200_000, bytes.subarray(200_000))).status);
  assert.equal(await recordMd5(a.url, id), md5(bytes));
});

test('nothing kept per upload outlives it in Redis: finished (through two instances, by concatenation), deleted, \
expired', async (t) => {
  const { a, b, prefix } = await pair(t);
  const keys = async () => {
    const r = new Redis(REDIS, { maxRetriesPerRequest: 1 });
    try {
      return await r.keys(`${prefix}*`);
    } finally {
      r.disconnect();
    }
  };
  const bytes = patternBytes(200_000, 21);
  const finished = await create(a.endpoint, bytes.length);
  assert.equal((await patch(on(a, finished), 0, bytes.subarray(0, 100_000))).status, 204);
  assert.equal((await tus('HEAD', on(b, finished))).status, 200);
  assert.ok(
    (await keys()).includes(`${prefix}upload:${new URL(finished).pathname.split('/').pop()}`),
    'an unfinished upload keeps its version',
  );
  done((await patch(on(b, finished), 100_000, bytes.subarray(100_000))).status);
  const parts = await Promise.all(
    [0, 1].map(async (i) => {
      const part = await tus('POST', a.endpoint, { 'Upload-Length': '1000', 'Upload-Concat': 'partial' });
      const partUrl = new URL(part.headers.location!, a.endpoint).toString();
      assert.equal((await patch(on(b, partUrl), 0, patternBytes(1000, 30 + i))).status, 204);
      return new URL(partUrl).pathname;
    }),
  );
  assert.equal((await tus('POST', b.endpoint, { 'Upload-Concat': `final;${parts.join(' ')}` })).status, 201);
  const deleted = await create(b.endpoint, 50_000);
  assert.equal((await patch(on(a, deleted), 0, patternBytes(20_000, 22))).status, 204);
  assert.equal((await tus('DELETE', on(b, deleted))).status, 204);
  const expired = await create(a.endpoint, 50_000);
  assert.equal((await patch(on(b, expired), 0, patternBytes(20_000, 23))).status, 204);
  const old = new Date(Date.now() - 60_000);
  const expiredId = new URL(expired).pathname.split('/').pop()!;
  fs.utimesSync(path.join(a.config.storeDir, expiredId), old, old);
  fs.writeFileSync(
    path.join(a.config.storeDir, `${expiredId}.json`),
    JSON.stringify({
      ...JSON.parse(fs.readFileSync(path.join(a.config.storeDir, `${expiredId}.json`), 'utf8')),
      creation_date: old.toISOString(),
    }),
  );
  const sweeper = await startTestServer(
    t,
    {
      storeDir: a.config.storeDir,
      redisUrl: REDIS,
      minFreeSpace: 0,
      expireAfterMs: 30_000,
      completionUrl: a.completionUrl,
    },
    { redisPrefix: prefix, completion: false, expirySweepMs: 3_600_000 },
  );
  assert.equal(await sweeper.store.deleteExpired(), 1);
  assert.deepEqual(await keys(), [], 'no lock, version or claim left');
});

test('the completion journal beside the uploads is shared: an instance starting does not rewrite it under the others, \
whose lines all land', async (t) => {
  const { a, storeDir, prefix } = await pair(t);
  const journal = () =>
    fs.readFileSync(path.join(storeDir, '.completions-handled'), 'utf8').split('\n').filter(Boolean);
  const finish = async (variant: number) => {
    const url = await create(a.endpoint, 1000);
    done((await patch(url, 0, patternBytes(1000, variant))).status);
    return new URL(url).pathname.split('/').pop()!;
  };
  const first = await finish(40);
  // Another instance starts on the store (its start-up pass reads the journal), then A finishes one more.
  await startTestServer(
    t,
    { storeDir, redisUrl: REDIS, minFreeSpace: 0, completionUrl: a.completionUrl },
    { redisPrefix: prefix, completion: false },
  );
  const second = await finish(41);
  assert.deepEqual(
    journal().filter((id) => id === first || id === second),
    [first, second],
  );
});

test('REDIS_URL that cannot be reached fails the start once \
STARTUP_TIMEOUT has passed, naming the setting', async (t) => {
  const port = await freePort();
  await assert.rejects(
    startTestServer(t, { redisUrl: `redis://127.0.0.1:${port}`, startupTimeoutMs: 0 }),
    (e: Error) => e instanceof EngineUnavailableError && /REDIS_URL/.test(e.message),
  );
});

test('fencing a new upload: its first write sets a version without asking first, replaces one an earlier upload \
under the same id left, and is refused once the lock is lost', async (t) => {
  const prefix = prefixFor(t);
  const locker = await RedisLocker.connect(REDIS, { prefix, ttlMs: 10_000 });
  t.after(() => locker.close());
  const r = new Redis(REDIS);
  t.after(() => r.disconnect());
  const id = crypto.randomBytes(16).toString('hex');
  // An earlier upload under this id (a hook-chosen one) left its version behind.
  await r.hset(`${prefix}upload:${id}`, 'version', '12345');
  const lock = locker.newLock(id);
  await lock.lock(new AbortController().signal, () => {});
  const start = locker.start(id);
  const next = await locker.advance(id, start, 100);
  assert.equal(next, start + 1);
  assert.equal(await r.hget(`${prefix}upload:${id}`, 'version'), String(start + 1));
  // Later writes are checked against the version kept, as after begin().
  await assert.rejects(locker.advance(id, start, 200), /ERR_LOCK_LOST|written by another/);
  assert.equal(await locker.advance(id, next, 200), next + 1);
  // The lock taken by another: the next write is refused.
  await r.set(`${prefix}lock:${id}`, 'someone-else', 'PX', 60_000);
  await assert.rejects(locker.advance(id, next + 1, 300), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'ERR_LOCK_LOST');
    return true;
  });
  await r.del(`${prefix}lock:${id}`);
  await lock.unlock();
});
