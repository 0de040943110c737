// Creation, creation-defer-length, expiration, maximum size, termination and method override in raw
// HTTP: one test per MUST, including what is refused and that refusals store nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { create, patch, tus } from './helpers/tus.ts';

test('Tus-Resumable: a missing or unsupported version gets 412 with Tus-Version; OPTIONS needs none', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 10);
  for (const [method, target] of [
    ['HEAD', url],
    ['PATCH', url],
    ['POST', s.endpoint],
    ['DELETE', url],
  ] as const) {
    const res = await fetch(target, {
      method,
      headers: {
        'Tus-Resumable': '0.2.2',
        'Upload-Length': '1',
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
      },
    });
    assert.equal(res.status, 412, method);
    assert.equal(res.headers.get('tus-version'), '1.0.0', method);
  }
  const options = await fetch(s.endpoint, { method: 'OPTIONS' });
  assert.equal(options.status, 204);
  assert.equal(options.headers.get('tus-version'), '1.0.0');
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '0', 'the refused PATCH stored nothing');
});

test('creation: 201 with an absolute Location; the new upload starts at offset 0', async (t) => {
  const s = await startTestServer(t);
  const res = await tus('POST', s.endpoint, { 'Upload-Length': '100' });
  assert.equal(res.status, 201);
  assert.match(res.headers.location!, /^http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32}$/);
  assert.equal((await tus('HEAD', res.headers.location!)).headers['upload-offset'], '0');
});

test('creation-defer-length: Upload-Defer-Length: 1, HEAD says \
so, the length comes with a PATCH and then stays', async (t) => {
  const s = await startTestServer(t);
  assert.ok((await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.includes('creation-defer-length'));
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Defer-Length': '2' })).status, 400, 'only 1 is valid');
  const res = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(res.status, 201);
  const url = res.headers.location!;
  let head = await tus('HEAD', url);
  // "MUST set Upload-Defer-Length: 1 in all responses to HEAD requests" while the length is unknown.
  assert.equal(head.headers['upload-defer-length'], '1');
  assert.equal(head.headers['upload-length'], undefined);
  const bytes = patternBytes(3000);
  assert.equal((await patch(url, 0, bytes.subarray(0, 1000))).status, 204);
  assert.equal(
    (await patch(url, 1000, bytes.subarray(1000, 2000), { 'Upload-Length': '500' })).status,
    400,
    'below the offset',
  );
  assert.equal((await patch(url, 1000, bytes.subarray(1000, 2000), { 'Upload-Length': '3000' })).status, 204);
  head = await tus('HEAD', url);
  assert.equal(head.headers['upload-length'], '3000');
  assert.equal(head.headers['upload-defer-length'], undefined);
  assert.equal(
    (await patch(url, 2000, bytes.subarray(2000), { 'Upload-Length': '4000' })).status,
    400,
    'the length never changes',
  );
  const last = await patch(url, 2000, bytes.subarray(2000));
  assert.equal(last.status, 200);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
});

test('creation-defer-length: an empty last PATCH declaring the length finishes the upload', async (t) => {
  const s = await startTestServer(t);
  const url = (await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' })).headers.location!;
  const bytes = patternBytes(5000);
  assert.equal((await patch(url, 0, bytes)).status, 204);
  const last = await patch(url, 5000, Buffer.alloc(0), { 'Upload-Length': '5000' });
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
  // Sent again (a client retrying after a lost answer), it neither fails nor announces twice.
  assert.equal((await patch(url, 5000, Buffer.alloc(0), { 'Upload-Length': '5000' })).status, 204);
  assert.equal(
    (await patch(url, 5000, Buffer.alloc(0), { 'Upload-Length': '6000' })).status,
    400,
    'the length never changes',
  );
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as unknown[];
  assert.equal(list.length, 1);
});

test('maximum size: Tus-Max-Size advertised; 413 at creation, \
for a deferred length and for a chunked body past it', async (t) => {
  const s = await startTestServer(t, { maxSize: 1000 });
  assert.equal((await tus('OPTIONS', s.endpoint)).headers['tus-max-size'], '1000');
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '1001' })).status, 413);
  const deferred = (await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' })).headers.location!;
  assert.equal((await patch(deferred, 0, 'abc', { 'Upload-Length': '5000' })).status, 413);
  assert.equal((await patch(deferred, 0, Buffer.alloc(1200))).status, 413, 'declared body past the limit');
  assert.equal((await tus('HEAD', deferred)).headers['upload-offset'], '0', 'refused before a byte was stored');
  // A chunked body (no Content-Length) is cut at the limit: what fits is kept, the answer is 413.
  const chunked = await fetch(deferred, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(800));
        c.enqueue(new Uint8Array(800));
        c.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(chunked.status, 413);
  assert.equal(chunked.headers.get('upload-offset'), '1000');
});

test('expiration: Upload-Expires on creation and PATCH answers; \
an expired upload gets 410, then 404 once swept', async (t) => {
  // The background sweep would race the 410 checks below: this test sweeps by hand.
  const s = await startTestServer(t, { expireAfterMs: 1500 }, { expirySweepMs: 3_600_000 });
  assert.ok((await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.split(',').includes('expiration'));
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '100' });
  assert.ok(created.headers['upload-expires'], 'creation says when');
  const url = created.headers.location!;
  const res = await patch(url, 0, Buffer.alloc(10));
  // "This header MUST be included in every PATCH response if the upload is going to expire" in RFC 9110 format.
  const expires = res.headers['upload-expires']!;
  assert.match(expires, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  assert.ok(Math.abs(Date.parse(expires) - Date.now() - 1500) < 2500);
  // A finished upload never expires.
  const done = await create(s.endpoint, 5);
  const last = await patch(done, 0, 'abcde');
  assert.equal(last.headers['upload-expires'], undefined);

  await new Promise((r) => setTimeout(r, 1700));
  // "the Server SHOULD respond with ... 410 Gone ... if the Server is keeping track of expired uploads"
  assert.equal((await tus('HEAD', url)).status, 410);
  assert.equal((await patch(url, 10, Buffer.alloc(10))).status, 410);
  const removed = await s.store.deleteExpired();
  assert.equal(removed, 1);
  assert.equal((await tus('HEAD', url)).status, 404);
  const id = url.split('/').pop()!;
  assert.equal(fs.existsSync(s.store.statePath(id)), false, 'digest state swept too');
  assert.equal((await tus('HEAD', done)).status, 200, 'finished upload kept');
});

test('expiration counts from the last write: an upload still receiving bytes outlives the period', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 1200 }, { expirySweepMs: 3_600_000 });
  const url = await create(s.endpoint, 100);
  for (let offset = 0; offset < 30; offset += 10) {
    const res = await patch(url, offset, Buffer.alloc(10));
    assert.equal(res.status, 204, `PATCH at ${offset}`);
    await new Promise((r) => setTimeout(r, 700));
  }
  // 2.1 s after creation, 0.7 s after the last write: alive.
  const head = await tus('HEAD', url);
  assert.equal(head.status, 200);
  assert.ok(Date.parse(head.headers['upload-expires']!) > Date.now());
  assert.equal(await s.store.deleteExpired(), 0, 'the sweep leaves it');
  await new Promise((r) => setTimeout(r, 800));
  assert.equal((await tus('HEAD', url)).status, 410);
});

test('expiry turned off (EXPIRE_AFTER=0, EXPIRE_UNSTARTED_AFTER=0): expiration is not advertised and no Upload-Expires \
is sent', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 0, expireUnstartedAfterMs: 0 });
  assert.ok(!(await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.includes('expiration'));
  const url = await create(s.endpoint, 100);
  assert.equal((await patch(url, 0, Buffer.alloc(10))).headers['upload-expires'], undefined);
});

test('EXPIRE_AFTER=0 with EXPIRE_UNSTARTED_AFTER: expiration advertised, the creation says when it expires, its first \
byte ends that', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 0, expireUnstartedAfterMs: 3_600_000 });
  assert.ok((await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.includes('expiration'));
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '100' });
  // "If the expiration is known at the creation, the Upload-Expires header MUST be included in the response to the
  // initial POST request."
  const expires = Date.parse(created.headers['upload-expires']!);
  assert.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 5000, created.headers['upload-expires']);
  const url = new URL(created.headers.location!, s.endpoint).toString();
  assert.equal(
    (await patch(url, 0, Buffer.alloc(10))).headers['upload-expires'],
    undefined,
    'a started upload never expires with EXPIRE_AFTER=0',
  );
  // A creation-with-upload that brought bytes is started.
  const withBody = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': '100', 'Content-Type': 'application/offset+octet-stream' },
    Buffer.alloc(10),
  );
  assert.equal(withBody.status, 201);
  assert.equal(withBody.headers['upload-expires'], undefined);
});

test('expiry by default: 7 days after the last write, advertised and sent with every PATCH', async (t) => {
  const s = await startTestServer(t);
  assert.ok((await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.includes('expiration'));
  const url = await create(s.endpoint, 100);
  const expires = Date.parse((await patch(url, 0, Buffer.alloc(10))).headers['upload-expires']!);
  const week = 7 * 86_400_000;
  assert.ok(
    Math.abs(expires - (Date.now() + week)) < 5000,
    `Upload-Expires ${new Date(expires).toISOString()} is a week away`,
  );
});

test('X-HTTP-Method-Override: a POST carrying PATCH, HEAD or DELETE acts as that method', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 6);
  const over = (method: string, extra: Record<string, string> = {}, body?: string) =>
    tus('POST', url, { 'X-HTTP-Method-Override': method, ...extra }, body);
  const p = await over('PATCH', { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, 'abc');
  assert.equal(p.status, 204);
  assert.equal(p.headers['upload-offset'], '3');
  assert.equal((await over('HEAD')).headers['upload-offset'], '3');
  assert.equal((await over('DELETE')).status, 204);
  assert.equal((await tus('HEAD', url)).status, 404);
});

test('termination: 204, then 404; the file, its info and digest state are gone', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 100);
  await patch(url, 0, Buffer.alloc(50));
  assert.equal((await tus('DELETE', url)).status, 204);
  assert.equal((await tus('HEAD', url)).status, 404);
  assert.equal((await patch(url, 50, Buffer.alloc(5))).status, 404);
  assert.deepEqual(fs.readdirSync(s.config.storeDir), []);
});

test('a partial creation keeps its role; a creation-with-upload answers its Upload-Offset and Upload-Expires; OPTIONS \
advertises concatenation', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 3_600_000 });
  const partial = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
  assert.equal(partial.status, 201);
  assert.equal(
    (await tus('HEAD', partial.headers.location!)).headers['upload-concat'],
    'partial',
    'the role reached the store',
  );
  const withBody = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' },
    Buffer.from('abcde'),
  );
  assert.equal(withBody.status, 201);
  assert.equal(withBody.headers['upload-offset'], '5');
  assert.ok(withBody.headers['upload-expires'], 'Upload-Expires for an unfinished upload with an expiry');
  assert.equal((await tus('HEAD', withBody.headers.location!)).headers['upload-offset'], '5');
  const options = await tus('OPTIONS', s.endpoint);
  assert.match(
    options.headers['tus-extension']!,
    /\bconcatenation\b/,
    "OPTIONS advertises the store's extensions, concatenation included",
  );
});
