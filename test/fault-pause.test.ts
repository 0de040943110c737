// Fencing under a pause: instance A holds an upload's lock mid-PATCH and is stopped with SIGSTOP past
// its lease; instance B takes the upload over and finishes it; the rest of A's body (other bytes than
// the file's) waits in A's socket meanwhile. When A resumes, none of those late bytes may land: the
// store holds B's bytes and the upload's md5 is the file's. A and B are `tuspass upload-server`
// processes on the test's own redis-server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { ownRedis } from './helpers/engines.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startCluster } from './helpers/cluster.ts';
import { until } from './helpers/instances.ts';
import { recordsWhenPresent } from './helpers/server.ts';
import { create, tus } from './helpers/tus.ts';

const KiB = 1024;

test('a lock holder stopped (SIGSTOP) past its lease while B takes over and finishes: resumed, none of its late bytes \
land; the right md5, one record', async (t) => {
  const redis = await ownRedis(t);
  const {
    storeDir,
    service,
    instances: [a, b],
  } = await startCluster(t, 2, { redisUrl: redis.url });
  // SIGKILL ends a stopped process too, but a stopped process keeps the test's after-hooks waiting on nothing else.
  t.after(() => void a!.child.kill('SIGCONT'));

  const file = patternBytes(2048 * KiB, 61);
  const late = patternBytes(file.length, 62);
  const url = await create(`${b!.url}/files/`, file.length, { name: 'paused.bin' });
  const id = new URL(url).pathname.split('/').pop()!;
  const onA = `${a!.url}/files/${id}`;
  const onB = `${b!.url}/files/${id}`;
  const stored = path.join(storeDir, id);

  // A PATCH of the whole file through A; its first 512 KiB sent, and A writing them. (A may keep the
  // last of them in memory until more comes: the file's own bytes, for the offsets they belong at.)
  const first = 512 * KiB;
  const req = http.request(onA, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(file.length),
    },
  });
  const answered = new Promise<number | 'closed'>((resolve) => {
    req.on('response', (res) => (res.resume(), res.on('end', () => resolve(res.statusCode!))));
    req.on('error', () => resolve('closed'));
  });
  req.write(file.subarray(0, first));
  assert.ok(
    (await until(
      () => fs.statSync(stored).size,
      (n) => n >= first / 2,
    )) >=
      first / 2,
    'A writes what it was sent',
  );

  a!.child.kill('SIGSTOP');
  const stopped = Date.now();
  // A's late bytes: not the file's. They wait in A's socket while A is stopped.
  req.write(late.subarray(first));

  // A's lease ends: its watchdog is stopped too. (Only then does B ask: a request finding the lock
  // held would publish a release request, and A would end its PATCH on that before reading a late
  // byte. Here only the fence stands between A's late bytes and the file.)
  const r = new Redis(redis.url);
  t.after(() => r.disconnect());
  await until(
    () => r.exists(`tuspass:lock:${id}`),
    (n) => n === 0,
  );
  const head = await tus('HEAD', onB);
  const tookOver = Date.now() - stopped;
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset > 0 && offset <= first, `offset ${offset}`);
  const rest = await tus(
    'PATCH',
    onB,
    { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
    file.subarray(offset),
  );
  assert.ok(rest.status === 200 || rest.status === 204, `B's PATCH ${rest.status}`);

  a!.child.kill('SIGCONT');
  // A reads its late bytes, finds its lock gone before writing any, and ends its PATCH.
  const aAnswer = await answered;
  t.diagnostic(
    `B answered the offset ${tookOver} ms after A stopped (lease 2 s); A's PATCH ended with ${aAnswer} once resumed`,
  );
  assert.ok(aAnswer === 'closed' || aAnswer === 503, `A's PATCH: ${aAnswer}`);
  assert.match(
    await until(
      () => a!.output(),
      (out) => /lock lost/.test(out),
    ),
    new RegExp(`upload ${id}: lock lost`),
  );
  assert.ok(fs.readFileSync(stored).equals(file), "the store holds the file's bytes, none of A's late ones");
  const records = await recordsWhenPresent(service.url, 1, 10_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(file)],
  );
  assert.equal((await tus('OPTIONS', `${a!.url}/files/`)).status, 204, 'A serves on');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await recordsWhenPresent(service.url, 1)).length, 1, 'one record');
});
