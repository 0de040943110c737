// The IETF draft across two instances on one store with the Redis locker: a draft upload created
// on A is appended on B, and a draft upload is finished by tus (one upload, two protocols).
// Real Redis on 127.0.0.1:6379, with this test's own key prefix, removed after.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { exchange, md5Hex } from './helpers/draft-http.ts';
import { ownRedis } from './helpers/engines.ts';
import { patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { patch } from './helpers/tus.ts';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function twoInstances(t: TestContext) {
  const prefix = `tuspass-ietf-${crypto.randomBytes(6).toString('hex')}:`;
  t.after(async () => {
    const r = new Redis(REDIS, { maxRetriesPerRequest: 1 });
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  });
  const storeDir = tmpDir(t);
  const a = await startTestServer(t, { storeDir, redisUrl: REDIS, minFreeSpace: 0 }, { redisPrefix: prefix });
  const b = await startTestServer(
    t,
    { storeDir, redisUrl: REDIS, minFreeSpace: 0, completionUrl: a.completionUrl },
    { redisPrefix: prefix, completion: false },
  );
  return { a, b };
}

const v8 = { 'Upload-Draft-Interop-Version': '8' };
const append = { ...v8, 'Content-Type': 'application/partial-upload' };

test('created on A by the draft, appended on B, completed on A: one record, the right md5', async (t) => {
  const { a, b } = await twoInstances(t);
  const bytes = patternBytes(600_000, 21);
  const created = await exchange(
    'POST',
    a.endpoint,
    { ...v8, 'Upload-Complete': '?0', 'Upload-Length': bytes.length },
    bytes.subarray(0, 200_000),
  );
  assert.equal(created.final.status, 201);
  const path = new URL(created.final.headers.location!).pathname;
  const onB = `${b.url}${path}`;
  assert.equal((await exchange('HEAD', onB, v8)).final.headers['upload-offset'], '200000');
  const middle = await exchange(
    'PATCH',
    onB,
    { ...append, 'Upload-Complete': '?0', 'Upload-Offset': 200_000 },
    bytes.subarray(200_000, 400_000),
  );
  assert.equal(middle.final.status, 204);
  const last = await exchange(
    'PATCH',
    `${a.url}${path}`,
    { ...append, 'Upload-Complete': '?1', 'Upload-Offset': 400_000 },
    bytes.subarray(400_000),
  );
  assert.equal(last.final.status, 200, last.final.body.toString());
  const records = await recordsWhenPresent(a.url, 1);
  assert.equal(records.length, 1);
  assert.equal(records[0]!.md5, md5Hex(bytes));
});

test('a draft upload is an upload: created by the draft on A, finished by tus on B', async (t) => {
  const { a, b } = await twoInstances(t);
  const bytes = patternBytes(300_000, 22);
  const created = await exchange(
    'POST',
    a.endpoint,
    { ...v8, 'Upload-Complete': '?0', 'Upload-Length': bytes.length },
    bytes.subarray(0, 100_000),
  );
  const path = new URL(created.final.headers.location!).pathname;
  const res = await patch(`${b.url}${path}`, 100_000, bytes.subarray(100_000));
  assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`);
  assert.equal((await recordsWhenPresent(a.url, 1))[0]!.md5, md5Hex(bytes));
});

test('Redis away: the draft\'s offset retrieval reads the offset from the store, as tus\'s HEAD does (never an answer \
a client reads as "start over")', async (t) => {
  const redis = await ownRedis(t);
  const s = await startTestServer(
    t,
    { redisUrl: redis.url, minFreeSpace: 0 },
    { redisPrefix: `tuspass-test-${crypto.randomUUID()}:` },
  );
  const bytes = patternBytes(300_000, 9);
  const created = await exchange(
    'POST',
    s.endpoint,
    { ...v8, 'Upload-Complete': '?0', 'Upload-Length': bytes.length },
    bytes.subarray(0, 120_000),
  );
  assert.equal(created.final.status, 201);
  const url = new URL(created.final.headers.location!, s.endpoint).toString();
  await redis.stop();
  const head = await exchange('HEAD', url, v8);
  assert.equal(head.final.status, 204, JSON.stringify(head.final.headers));
  assert.equal(head.final.headers['upload-offset'], '120000');
  await redis.start();
});
