// One owner cannot take the store: at most OWNER_MAX_OPEN unfinished uploads and OWNER_MAX_OWED
// bytes declared and not yet sent, per token subject (or client address without authentication),
// refused with 429; another owner is not stopped by the first. Uploads that received no byte expire
// after EXPIRE_UNSTARTED_AFTER and free what they held. The per-owner totals survive a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { patternBytes } from './helpers/files.ts';
import { openRaw, readResponse } from './helpers/raw-http.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { startTestServer } from './helpers/server.ts';
import { until } from './helpers/instances.ts';
import { tmpDir } from './helpers/tmp.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';
import { patch, tus, type TusAnswer } from './helpers/tus.ts';

const MiB = 2 ** 20;
const alice = bearer(tokenFor('alice', 'upload'));
const bob = bearer(tokenFor('bob', 'upload'));

const post = (endpoint: string, headers: Record<string, string>) => tus('POST', endpoint, headers);
const urlOf = (endpoint: string, created: TusAnswer) => new URL(created.headers.location!, endpoint).toString();

function refused(res: TusAnswer, code: string): void {
  assert.equal(res.status, 429, res.body);
  assert.match(res.body, new RegExp(`^${code}: `));
}

test('OWNER_MAX_OPEN: an owner at its count of unfinished uploads gets 429; another owner does not; finishing or \
removing one makes room', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, ownerMaxOpen: 3, minFreeSpace: 0 });
  const mine: string[] = [];
  for (const length of ['10', '10'])
    mine.push(urlOf(s.endpoint, await post(s.endpoint, { ...alice, 'Upload-Length': length })));
  // A deferred length is an unfinished upload too.
  mine.push(urlOf(s.endpoint, await post(s.endpoint, { ...alice, 'Upload-Defer-Length': '1' })));
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': '10' }), 'ERR_OWNER_UPLOADS_LIMIT');
  // A creation-with-upload, a partial and a final count the same.
  refused(
    await tus(
      'POST',
      s.endpoint,
      { ...alice, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' },
      'abc',
    ),
    'ERR_OWNER_UPLOADS_LIMIT',
  );
  refused(
    await post(s.endpoint, { ...alice, 'Upload-Length': '10', 'Upload-Concat': 'partial' }),
    'ERR_OWNER_UPLOADS_LIMIT',
  );

  const other = await post(s.endpoint, { ...bob, 'Upload-Length': '10' });
  assert.equal(other.status, 201, 'one owner at its limit does not stop another');

  // A finished upload is no longer open.
  const finished = await patch(mine[0]!, 0, 'x'.repeat(10), alice);
  assert.equal(finished.status, 200, finished.body);
  assert.equal((await post(s.endpoint, { ...alice, 'Upload-Length': '10' })).status, 201);
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': '10' }), 'ERR_OWNER_UPLOADS_LIMIT');
  // Nor is a removed one.
  assert.equal((await tus('DELETE', mine[1]!, alice)).status, 204);
  assert.equal((await post(s.endpoint, { ...alice, 'Upload-Length': '10' })).status, 201);
  // Bob holds 1 of 3: empty uploads are finished as they are created, and never held open.
  for (let i = 0; i < 4; i++) assert.equal((await post(s.endpoint, { ...bob, 'Upload-Length': '0' })).status, 201);
  assert.deepEqual(s.store.space.ownerTotals('sub:bob'), { owed: 10, open: 1 });
});

test('a resumable session finished by segments sent out of order is no longer open', async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 1, minFreeSpace: 0 });
  const bytes = patternBytes(200_000, 4);
  const segment = (a: number, b: number) =>
    fetch(`${s.url}/upload`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Disposition': 'attachment; filename="r.bin"',
        'X-Content-Range': `bytes ${a}-${b}/${bytes.length}`,
        'Session-ID': '4242',
      },
      body: new Uint8Array(bytes.subarray(a, b + 1)),
    });
  assert.equal((await segment(100_000, 199_999)).status, 201);
  refused(await post(s.endpoint, { 'Upload-Length': '10' }), 'ERR_OWNER_UPLOADS_LIMIT');
  assert.equal((await segment(0, 99_999)).status, 200);
  assert.deepEqual(s.store.space.ownerTotals('address:127.0.0.1'), { owed: 0, open: 0 });
  assert.equal((await post(s.endpoint, { 'Upload-Length': '10' })).status, 201);
});

test('OWNER_MAX_OWED: bytes declared and not yet sent are limited per owner, at creation, for a deferred length and \
for a final', async (t) => {
  const s = await startTestServer(t, {
    authJwtSecret: TEST_JWT_SECRET,
    ownerMaxOwed: { bytes: 10 * MiB },
    minFreeSpace: 0,
  });
  const first = urlOf(s.endpoint, await post(s.endpoint, { ...alice, 'Upload-Length': String(6 * MiB) }));
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': String(6 * MiB) }), 'ERR_OWNER_SPACE_LIMIT');
  assert.equal(
    (await post(s.endpoint, { ...bob, 'Upload-Length': String(6 * MiB) })).status,
    201,
    'another owner is not stopped',
  );

  // Bytes received are no longer owed: 3 MiB sent leaves 3 owed, and 6 more fit in 10.
  assert.equal((await patch(first, 0, patternBytes(3 * MiB), alice)).status, 204);
  assert.equal((await post(s.endpoint, { ...alice, 'Upload-Length': String(6 * MiB) })).status, 201);
  assert.equal(s.store.space.ownerTotals('sub:alice').owed, 9 * MiB);

  // A deferred length counts once declared: refused, and the length is still to come.
  const deferred = urlOf(s.endpoint, await post(s.endpoint, { ...alice, 'Upload-Defer-Length': '1' }));
  refused(await patch(deferred, 0, '', { ...alice, 'Upload-Length': String(2 * MiB) }), 'ERR_OWNER_SPACE_LIMIT');
  assert.equal((await tus('HEAD', deferred, alice)).headers['upload-defer-length'], '1');

  // A final counts whole while it is built: 9 owed + 2 > 10.
  const parts: string[] = [];
  for (const variant of [1, 2]) {
    const part = urlOf(
      s.endpoint,
      await post(s.endpoint, { ...alice, 'Upload-Length': String(MiB), 'Upload-Concat': 'partial' }),
    );
    assert.equal((await patch(part, 0, patternBytes(MiB, variant), alice)).status, 204);
    parts.push(part);
  }
  const final = () => post(s.endpoint, { ...alice, 'Upload-Concat': `final;${parts.join(' ')}` });
  refused(await final(), 'ERR_OWNER_SPACE_LIMIT');
  assert.equal((await tus('DELETE', first, alice)).status, 204);
  assert.equal((await final()).status, 201);
});

test('OWNER_MAX_OWED by default: half the space uploads may \
use; one owner cannot take the store from another', async (t) => {
  const dir = mountTmpfs(t, 64 * MiB);
  if (!dir) return;
  const s = await startTestServer(t, {
    dataDir: path.join(dir, 'data'),
    authJwtSecret: TEST_JWT_SECRET,
    minFreeSpace: MiB,
  });
  // About 62 MiB usable: alice may hold about 31.
  assert.equal((await post(s.endpoint, { ...alice, 'Upload-Length': String(20 * MiB) })).status, 201);
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': String(20 * MiB) }), 'ERR_OWNER_SPACE_LIMIT');
  // Many empty creations of one owner, each small: they stop at its share too.
  let made = 0;
  for (; made < 20; made++)
    if ((await post(s.endpoint, { ...alice, 'Upload-Length': String(2 * MiB) })).status !== 201) break;
  assert.ok(made < 8, `${made} more made`);
  // What the store has left is bob's to use.
  assert.equal((await post(s.endpoint, { ...bob, 'Upload-Length': String(25 * MiB) })).status, 201);
});

test('a body of unknown length announcing a large Content-Length holds no more than a step of the store while it \
trickles in: another owner can still create', async (t) => {
  const dir = mountTmpfs(t, 64 * MiB);
  if (!dir) return;
  const s = await startTestServer(t, {
    dataDir: path.join(dir, 'data'),
    authJwtSecret: TEST_JWT_SECRET,
    minFreeSpace: MiB,
  });
  const mallory = bearer(tokenFor('mallory', 'upload'));
  const deferred = new URL(urlOf(s.endpoint, await post(s.endpoint, { ...mallory, 'Upload-Defer-Length': '1' })));
  const headOf = (length: number) =>
    `PATCH ${deferred.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: ` +
    `${mallory.Authorization}\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: ` +
    `0\r\nContent-Length: ${length}\r\n\r\n`;
  // A body that cannot fit is still refused before a byte of it is read.
  const first = await openRaw(s.url);
  t.after(() => first.socket.destroy());
  first.socket.write(headOf(70 * MiB));
  assert.equal((await readResponse(first, 10_000))?.status, 507);
  // One byte of 60 MiB announced, and the rest (as far as the server can tell) still to come.
  const conn = await openRaw(s.url);
  t.after(() => conn.socket.destroy());
  conn.socket.write(`${headOf(60 * MiB)}x`);
  while (s.store.space.owed === 0) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(
    (await post(s.endpoint, { ...alice, 'Upload-Length': String(20 * MiB) })).status,
    201,
    'the trickling body does not hold the store',
  );
});

test('without authentication the owner is the client address: with BEHIND_PROXY the one the proxy saw, which a client \
cannot choose', async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 2, minFreeSpace: 0, behindProxy: true });
  const from = (address: string) => ({ 'X-Forwarded-For': address, 'Upload-Length': '10' });
  for (let i = 0; i < 2; i++) assert.equal((await post(s.endpoint, from('10.0.0.1'))).status, 201);
  refused(await post(s.endpoint, from('10.0.0.1')), 'ERR_OWNER_UPLOADS_LIMIT');
  // What a client writes before the proxy's own entry is not read.
  refused(await post(s.endpoint, from('10.0.0.2, 10.0.0.1')), 'ERR_OWNER_UPLOADS_LIMIT');
  refused(
    await post(s.endpoint, { Forwarded: 'for=10.0.0.2, for="10.0.0.1:4711"', 'Upload-Length': '10' }),
    'ERR_OWNER_UPLOADS_LIMIT',
  );
  assert.equal((await post(s.endpoint, from('10.0.0.2'))).status, 201, 'another client is not stopped');

  // Without BEHIND_PROXY, X-Forwarded-For is not believed: every request here is 127.0.0.1.
  const direct = await startTestServer(t, { ownerMaxOpen: 2, minFreeSpace: 0 });
  for (let i = 0; i < 2; i++) assert.equal((await post(direct.endpoint, from(`10.0.1.${i}`))).status, 201);
  refused(await post(direct.endpoint, from('10.0.1.9')), 'ERR_OWNER_UPLOADS_LIMIT');
  // A multipart upload counts its parts while they stream; finished, they are not open.
  const file = path.join(tmpDir(t), 'f.txt');
  fs.writeFileSync(file, 'hello');
  const form = new FormData();
  form.append('file1', new Blob([fs.readFileSync(file)]), 'f.txt');
  assert.equal(
    (await fetch(`${direct.url}/upload`, { method: 'POST', body: form })).status,
    429,
    'the part could not be opened',
  );
});

test("behind the shipped nginx (which appends to X-Forwarded-For and passes Forwarded through as the client wrote it), \
a Forwarded header of the client's own does not choose its owner", async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 2, minFreeSpace: 0, behindProxy: true });
  // What nginx's $proxy_add_x_forwarded_for makes of a client at 10.0.0.1 that wrote no X-Forwarded-For.
  const proxied = (forwarded: string) => ({
    'X-Forwarded-For': '10.0.0.1',
    Forwarded: forwarded,
    'Upload-Length': '10',
  });
  for (let i = 0; i < 2; i++) assert.equal((await post(s.endpoint, proxied(`for=10.9.9.${i}`))).status, 201);
  refused(await post(s.endpoint, proxied('for=10.9.9.7')), 'ERR_OWNER_UPLOADS_LIMIT');
  assert.deepEqual(s.store.space.ownerTotals('address:10.0.0.1'), { owed: 20, open: 2 });
});

test('an IPv6 client is counted by its /64: one host has a whole /64 of addresses to send from (its per-owner limits, \
and so its share of the resumable sessions)', async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 2, minFreeSpace: 0, behindProxy: true });
  const from = (address: string) => ({ 'X-Forwarded-For': address, 'Upload-Length': '10' });
  assert.equal((await post(s.endpoint, from('2001:db8:0:7::1'))).status, 201);
  assert.equal((await post(s.endpoint, from('[2001:db8:0:7::2]:5000'))).status, 201);
  refused(await post(s.endpoint, from('2001:db8:0:7:ffff:ffff:ffff:ffff')), 'ERR_OWNER_UPLOADS_LIMIT');
  refused(await post(s.endpoint, from('2001:0DB8:0000:0007::3')), 'ERR_OWNER_UPLOADS_LIMIT');
  assert.equal((await post(s.endpoint, from('2001:db8:0:8::1'))).status, 201, 'another /64 is another client');
  assert.equal((await post(s.endpoint, from('10.0.0.1'))).status, 201);
});

test("a creation refused after its upload was made (its body past Upload-Length, or past MAX_SIZE with a deferred \
length) leaves no upload: its client got no Location and its owner's count is not held", async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 2, minFreeSpace: 0, maxSize: 100 });
  const withBody = { 'Content-Type': 'application/offset+octet-stream' };
  const attempts = [
    () => tus('POST', s.endpoint, { ...withBody, 'Upload-Length': '10' }, 'x'.repeat(20)),
    () => tus('POST', s.endpoint, { ...withBody, 'Upload-Defer-Length': '1' }, 'x'.repeat(200)),
    // Chunked: the length is found past only as the body streams.
    () =>
      tus(
        'POST',
        s.endpoint,
        { ...withBody, 'Upload-Length': '10' },
        Readable.from([Buffer.alloc(8, 1), Buffer.alloc(8, 2)]) as never,
      ),
  ];
  for (let round = 0; round < 2; round++) {
    for (const attempt of attempts) {
      const res = await attempt();
      assert.equal(res.status, 413, res.body);
      assert.equal(res.headers.location, undefined);
    }
  }
  assert.deepEqual(s.store.space.ownerTotals('address:127.0.0.1'), { owed: 0, open: 0 });
  assert.equal(s.store.space.owed, 0);
  assert.deepEqual(
    fs.readdirSync(s.config.storeDir).filter((n) => !n.startsWith('.')),
    [],
  );
  assert.equal((await post(s.endpoint, { 'Upload-Length': '10' })).status, 201);
});

test('the per-owner totals are rebuilt at start from the stored uploads', async (t) => {
  const dataDir = tmpDir(t);
  const settings = {
    dataDir,
    authJwtSecret: TEST_JWT_SECRET,
    ownerMaxOpen: 2,
    ownerMaxOwed: { bytes: 100 },
    minFreeSpace: 0,
  };
  const before = await startTestServer(t, settings);
  assert.equal((await post(before.endpoint, { ...alice, 'Upload-Length': '60' })).status, 201);
  assert.equal((await post(before.endpoint, { ...alice, 'Upload-Defer-Length': '1' })).status, 201);
  assert.equal((await post(before.endpoint, { ...bob, 'Upload-Length': '60' })).status, 201);
  await before.close();

  const s = await startTestServer(t, settings);
  assert.deepEqual(s.store.space.ownerTotals('sub:alice'), { owed: 60, open: 2 });
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': '1' }), 'ERR_OWNER_UPLOADS_LIMIT');
  refused(await post(s.endpoint, { ...bob, 'Upload-Length': '60' }), 'ERR_OWNER_SPACE_LIMIT');
  assert.equal((await post(s.endpoint, { ...bob, 'Upload-Length': '40' })).status, 201);
});

/** Moves an upload's creation (and its file's last write) `ms` into the past, as if that time had gone by. */
function age(storeDir: string, url: string, ms: number): void {
  const id = url.split('/').pop()!;
  const infoPath = path.join(storeDir, `${id}.json`);
  const info = JSON.parse(fs.readFileSync(infoPath, 'utf8')) as { creation_date: string };
  const then = Date.parse(info.creation_date) - ms;
  fs.writeFileSync(infoPath, JSON.stringify({ ...info, creation_date: new Date(then).toISOString() }));
  fs.utimesSync(path.join(storeDir, id), new Date(then), new Date(then));
}

test("EXPIRE_UNSTARTED_AFTER: an upload that received no byte expires (410, then 404 once swept) and frees its \
owner's share; one that received a byte does not", async (t) => {
  // The test sweeps by hand (store.deleteExpired), after moving the uploads' creation into the past.
  const s = await startTestServer(
    t,
    { authJwtSecret: TEST_JWT_SECRET, ownerMaxOpen: 2, expireUnstartedAfterMs: 3_600_000, minFreeSpace: 0 },
    { expirySweepMs: 3_600_000 },
  );
  const created = await post(s.endpoint, { ...alice, 'Upload-Length': '10' });
  const idle = urlOf(s.endpoint, created);
  // "If the expiration is known at the creation, the Upload-Expires header MUST be included": an hour, not
  // EXPIRE_AFTER's 7 days.
  const expires = Date.parse(created.headers['upload-expires']!);
  assert.ok(expires > Date.now() + 3_500_000 && expires <= Date.now() + 3_601_000, created.headers['upload-expires']);
  const started = urlOf(s.endpoint, await post(s.endpoint, { ...alice, 'Upload-Length': '10' }));
  const afterByte = await patch(started, 0, 'x', alice);
  assert.equal(afterByte.status, 204);
  assert.ok(
    Date.parse(afterByte.headers['upload-expires']!) > Date.now() + 6 * 86_400_000,
    'a started upload counts EXPIRE_AFTER',
  );
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': '10' }), 'ERR_OWNER_UPLOADS_LIMIT');

  age(s.config.storeDir, idle, 2 * 3_600_000);
  age(s.config.storeDir, started, 2 * 3_600_000);
  assert.equal((await tus('HEAD', idle, alice)).status, 410);
  assert.equal((await patch(idle, 0, 'x', alice)).status, 410);
  assert.equal(
    (await tus('HEAD', started, alice)).status,
    200,
    'a byte received: EXPIRE_AFTER counts, not EXPIRE_UNSTARTED_AFTER',
  );
  // Expired but not yet swept, it still holds its place; swept, it no longer does.
  refused(await post(s.endpoint, { ...alice, 'Upload-Length': '10' }), 'ERR_OWNER_UPLOADS_LIMIT');
  assert.equal(await s.store.deleteExpired(), 1);
  assert.equal((await tus('HEAD', idle, alice)).status, 404);
  assert.equal((await post(s.endpoint, { ...alice, 'Upload-Length': '10' })).status, 201);
  assert.ok(
    s.logs.some((l) => l.includes('expired: removed with 0 of 10 bytes')),
    s.logs.join('\n'),
  );
});

test("a creation whose client left before its answer (while pre-create ran) leaves no upload, with or without a body: \
nobody got its Location, and its owner's count is not held", async (t) => {
  // The hook holds each creation until the test has closed its connection (the same process: a shared gate).
  const gate = { entered: [] as Array<() => void>, release: () => {} };
  const released = new Promise<void>((resolve) => (gate.release = resolve));
  Object.assign(globalThis, { creationGate: { enter: () => gate.entered.shift()?.(), released } });
  t.after(() => Reflect.deleteProperty(globalThis, 'creationGate'));
  const dir = tmpDir(t);
  const hook = path.join(dir, 'gate.mjs');
  fs.writeFileSync(
    hook,
    'export async function preCreate() { globalThis.creationGate.enter(); await globalThis.creationGate.released; }\n',
  );
  const s = await startTestServer(t, { hooksModules: [hook], ownerMaxOpen: 2, minFreeSpace: 0 });
  const { host } = new URL(s.endpoint);
  const head = `POST /files/ HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 10\r\n`;
  for (const request of [
    `${head}\r\n`,
    `${head}Content-Type: application/offset+octet-stream\r\nContent-Length: 10\r\n\r\n0123456789`,
  ]) {
    const entered = new Promise<void>((resolve) => gate.entered.push(resolve));
    const conn = await openRaw(s.endpoint);
    conn.socket.write(request);
    await entered;
    conn.socket.destroy();
  }
  gate.release();
  const dropped = () => s.logs.filter((l) => l.startsWith('dropped POST /files/')).length;
  await until(dropped, (n) => n === 2, 10_000);
  assert.equal(dropped(), 2, s.logs.join('\n'));
  assert.deepEqual(
    fs.readdirSync(s.config.storeDir).filter((n) => !n.startsWith('.')),
    [],
  );
  assert.deepEqual(s.store.space.ownerTotals('address:127.0.0.1'), { owed: 0, open: 0 });
});
