// The pre-access hook: called before every request that reads or writes an existing upload, on every
// front-end (tus, the IETF draft, a final upload's partials, a resumable segment, a record's file), and
// on every transport (HTTP, command, module, `tuspass hooks test`). A refusal answers with the hook's
// status, body and headers (403 ERR_ACCESS_DENIED in the route's own form when it wrote none) and
// leaves the upload as it was; an upload that does not exist never reaches the hook.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { HookHandler, HookRequest, HookResponse } from '../hooks/types.ts';
import { exchange } from './helpers/draft-http.ts';
import { startHookReceiver, type HookReceiver } from './helpers/hook-receiver.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { openRaw, parseResponse } from './helpers/raw-http.ts';
import { sendSegment } from './helpers/resumable.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { metadata, patch, tus } from './helpers/tus.ts';

const PASS = { 'X-Pass': 'yes' };
/** The hook's own refusal, as a hook author writes it. */
const REFUSAL: HookResponse = {
  RejectAccess: true,
  HTTPResponse: { StatusCode: 451, Body: 'refused by the access policy\n', Header: { 'X-Why': 'policy' } },
};

/**
 * Lets a request through when it carries X-Pass: yes; `X-Pass: plain` is refused without an answer of the hook's own.
 */
function policy(r: HookRequest): HookResponse {
  if (r.Type !== 'pre-access') return {};
  const pass = r.Event.HTTPRequest.Header['x-pass']?.[0];
  if (pass === 'yes') return {};
  return pass === 'plain' ? { RejectAccess: true } : REFUSAL;
}

async function serverWithPolicy(
  t: TestContext,
  overrides: Parameters<typeof startTestServer>[1] = {},
): Promise<{ s: TestServer; hook: HookReceiver }> {
  const hook = await startHookReceiver(t);
  hook.answer = policy;
  const s = await startTestServer(t, {
    hooksHttp: hook.url,
    hooksEnabledEvents: ['pre-access'],
    hooksHttpRetry: 0,
    ...overrides,
  });
  return { s, hook };
}

const accesses = (hook: HookReceiver) => hook.received.map((r) => r.request).filter((r) => r.Type === 'pre-access');

/** A tus upload of `length` bytes with `sent` of them written, its URL and id. */
async function upload(
  s: TestServer,
  length: number,
  sent: Buffer,
  meta: Record<string, string> = { filename: 'a.bin' },
  headers: Record<string, string> = {},
) {
  const created = await tus('POST', s.endpoint, {
    'Upload-Length': String(length),
    'Upload-Metadata': metadata(meta),
    ...headers,
  });
  assert.equal(created.status, 201, created.body);
  const url = new URL(created.headers.location!, s.endpoint).toString();
  if (sent.length) assert.ok([200, 204].includes((await patch(url, 0, sent, { ...PASS, ...headers })).status));
  return { url, id: url.split('/').pop()! };
}

const onDisk = (s: TestServer, id: string) => fs.readFileSync(path.join(s.config.storeDir, id));

function assertRefused(answer: { status: number; headers: Record<string, string>; body: string }, what: string): void {
  assert.equal(answer.status, 451, `${what}: ${answer.status} ${answer.body}`);
  // A HEAD's answer has no body.
  if (!what.startsWith('HEAD')) assert.equal(answer.body, 'refused by the access policy\n', what);
  assert.equal(answer.headers['x-why'], 'policy', what);
}

test("tus HEAD, GET, PATCH and DELETE (and a POST standing for them) are refused with the hook's status, body and \
headers; the upload is untouched; allowed when the hook allows", async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const half = await upload(s, 10, Buffer.from('01234'));
  const whole = await upload(s, 4, Buffer.from('abcd'));

  for (const [method, url, headers, body] of [
    ['HEAD', half.url, {}, undefined],
    ['GET', whole.url, {}, undefined],
    ['PATCH', half.url, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5' }, 'XXXXX'],
    ['DELETE', half.url, {}, undefined],
    ['DELETE', whole.url, {}, undefined],
    [
      'POST',
      half.url,
      { 'X-HTTP-Method-Override': 'PATCH', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5' },
      'YYYYY',
    ],
    ['POST', half.url, { 'X-HTTP-Method-Override': 'DELETE' }, undefined],
  ] as const) {
    const answer = await tus(method, url, headers, body);
    assertRefused(answer, `${method} ${JSON.stringify(headers)}`);
    assert.equal(answer.headers['tus-resumable'], '1.0.0', 'a tus answer');
  }
  // Without an answer of its own: the table's 403 in tus's form.
  const plain = await tus('HEAD', half.url, { 'X-Pass': 'plain' });
  assert.equal(plain.status, 403);
  assert.equal(plain.headers['tus-resumable'], '1.0.0');
  const plainPatch = await patch(half.url, 5, 'ZZZZZ', { 'X-Pass': 'plain' });
  assert.equal(plainPatch.status, 403);
  assert.equal(plainPatch.body, 'ERR_ACCESS_DENIED: access to this upload was refused by a hook\n');

  // Untouched: the bytes, the offset, both uploads still there.
  assert.equal(onDisk(s, half.id).toString(), '01234');
  assert.equal(onDisk(s, whole.id).toString(), 'abcd');
  const head = await tus('HEAD', half.url, PASS);
  assert.equal(head.status, 200);
  assert.equal(head.headers['upload-offset'], '5');
  // Allowed: each route works as without the hook.
  const got = await tus('GET', whole.url, PASS);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'abcd');
  assert.ok((await patch(half.url, 5, '56789', PASS)).status < 300);
  assert.equal(onDisk(s, half.id).toString(), '0123456789');
  const other = await upload(s, 10, Buffer.from('x'));
  assert.equal((await tus('DELETE', other.url, PASS)).status, 204);
  assert.equal((await tus('HEAD', other.url, PASS)).status, 404);
  // The method a hook sees is the one the request stands for.
  const overrides = accesses(hook).filter((r) => r.Event.HTTPRequest.Header['x-http-method-override']);
  assert.deepEqual(
    overrides.map((r) => [r.Event.HTTPRequest.Method, r.Event.Access?.Mode]),
    [
      ['PATCH', 'write'],
      ['DELETE', 'write'],
    ],
  );
});

test("the hook sees the upload (id, metadata, offset, owner), the request (method, URI, headers), the token's Auth \
and the mode", async (t) => {
  const { s, hook } = await serverWithPolicy(t, { authJwtSecret: TEST_JWT_SECRET });
  const alice = bearer(tokenFor('alice', 'upload read'));
  const { url, id } = await upload(s, 8, Buffer.from('1234'), { filename: 'report.pdf', project: 'p42' }, alice);
  hook.received.length = 0;
  assert.equal((await tus('HEAD', url, { ...alice, ...PASS, 'X-Trace': 't1' })).status, 200);
  const [seen] = accesses(hook);
  assert.ok(seen);
  assert.equal(seen.Event.Upload.ID, id);
  assert.deepEqual(seen.Event.Upload.MetaData, { filename: 'report.pdf', project: 'p42' });
  assert.equal(seen.Event.Upload.Offset, 4);
  assert.equal(seen.Event.Upload.Size, 8);
  assert.equal(seen.Event.Upload.Owner, 'alice');
  assert.equal(seen.Event.Upload.Storage?.Path, path.join(s.config.storeDir, id));
  assert.equal(seen.Event.HTTPRequest.Method, 'HEAD');
  assert.equal(seen.Event.HTTPRequest.URI, `/files/${id}`);
  assert.deepEqual(seen.Event.HTTPRequest.Header['x-trace'], ['t1']);
  assert.deepEqual(seen.Event.Auth, { Subject: 'alice', Scopes: ['upload', 'read'] });
  assert.deepEqual(seen.Event.Access, { Mode: 'read' });
  // Someone else's upload is refused by ownership first, as before: 404, and the hook is not asked.
  hook.received.length = 0;
  const bob = await tus('HEAD', url, { ...bearer(tokenFor('bob', 'upload read')), ...PASS });
  assert.equal(bob.status, 404);
  assert.equal(accesses(hook).length, 0);
});

test('an upload that does not exist never reaches the hook (404 as before); other spellings of an id get no other \
answer', async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const { url, id } = await upload(s, 10, Buffer.from('01234'));
  hook.received.length = 0;
  const missing = crypto.randomBytes(16).toString('hex');
  for (const method of ['HEAD', 'GET', 'DELETE'] as const)
    assert.equal((await tus(method, `${s.endpoint}${missing}`)).status, 404, method);
  assert.equal((await patch(`${s.endpoint}${missing}`, 0, 'abc')).status, 404);
  assert.equal(accesses(hook).length, 0, 'the hook was called for an upload that does not exist');

  // The refused upload under other spellings: never let through, never written.
  const encoded = [...id].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
  for (const spelling of [
    `/files/${id.toUpperCase()}`,
    `/files/${encoded}`,
    `/files/x%2F..%2F${id}`,
    `/FILES/${id}`,
    `/files/${id}/`,
  ]) {
    const target = `${s.url}${spelling}`;
    const head = await tus('HEAD', target, PASS);
    assert.ok([400, 404, 451].includes(head.status), `HEAD ${spelling}: ${head.status}`);
    const written = await patch(target, 5, 'XXXXX');
    assert.ok([400, 404, 451].includes(written.status), `PATCH ${spelling}: ${written.status}`);
    const removed = await tus('DELETE', target);
    assert.ok([400, 404, 451].includes(removed.status), `DELETE ${spelling}: ${removed.status}`);
  }
  // A query string names the same upload: the same decision.
  assertRefused(await tus('HEAD', `${url}?x=1`), 'HEAD with a query');
  assert.equal(onDisk(s, id).toString(), '01234');
  assert.ok(
    accesses(hook).every((r) => r.Event.Upload.ID === id),
    "the hook saw another id than the upload's",
  );
});

test('a final upload naming partials: each partial passes the hook; a refusal builds nothing and keeps the \
partials', async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const parts: Array<{ url: string; id: string }> = [];
  for (const text of ['abc', 'def']) {
    const created = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
    assert.equal(created.status, 201, created.body);
    const url = new URL(created.headers.location!, s.endpoint).toString();
    assert.ok((await patch(url, 0, text, PASS)).status < 300);
    parts.push({ url, id: url.split('/').pop()! });
  }
  const before = fs.readdirSync(s.config.storeDir).sort();
  hook.received.length = 0;
  // Named by an absolute URL on another host and by a relative one: the same partials.
  const concat = `final;http://elsewhere.example${new URL(parts[0]!.url).pathname} /files/${parts[1]!.id}`;
  const refused = await tus('POST', s.endpoint, { 'Upload-Concat': concat });
  assertRefused(refused, 'final');
  assert.deepEqual(fs.readdirSync(s.config.storeDir).sort(), before, 'the refused final left something in the store');
  assert.deepEqual(
    accesses(hook).map((r) => [r.Event.Upload.ID, r.Event.Upload.IsPartial, r.Event.Access?.Mode]),
    [[parts[0]!.id, true, 'write']],
  );

  // A partial that does not exist is not the hook's to judge: the final is refused as before.
  hook.received.length = 0;
  const missing = crypto.randomBytes(16).toString('hex');
  const unknown = await tus('POST', s.endpoint, {
    'Upload-Concat': `final;/files/${parts[0]!.id} /files/${missing}`,
    ...PASS,
  });
  assert.match(unknown.body, /^ERR_CONCAT_PARTIAL_NOT_FOUND/);
  assert.deepEqual(
    accesses(hook).map((r) => r.Event.Upload.ID),
    [parts[0]!.id],
  );

  hook.received.length = 0;
  const built = await tus('POST', s.endpoint, { 'Upload-Concat': concat, ...PASS });
  assert.equal(built.status, 201, built.body);
  assert.deepEqual(
    accesses(hook).map((r) => r.Event.Upload.ID),
    parts.map((p) => p.id),
  );
  const final = new URL(built.headers.location!, s.endpoint).toString();
  assert.equal((await tus('GET', final, PASS)).body, 'abcdef');
});

test('with KEEP_PARTIALS a final only reads its partials: the hook is asked for read', async (t) => {
  const { s, hook } = await serverWithPolicy(t, { keepPartials: true });
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
  const url = new URL(created.headers.location!, s.endpoint).toString();
  assert.ok((await patch(url, 0, 'abc', PASS)).status < 300);
  hook.received.length = 0;
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Concat': `final;${url}`, ...PASS })).status, 201);
  assert.deepEqual(
    accesses(hook).map((r) => r.Event.Access?.Mode),
    ['read'],
  );
});

test("the IETF draft's HEAD, GET, PATCH and DELETE: the hook's answer relayed, or 403 as problem details; the upload \
untouched", async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const draft = { 'Upload-Draft-Interop-Version': 8 };
  const created = await exchange(
    'POST',
    s.endpoint,
    { ...draft, 'Upload-Complete': '?0', ...PASS },
    Buffer.from('01234'),
  );
  assert.equal(created.final.status, 201, created.final.body.toString());
  const url = new URL(created.final.headers.location!, s.endpoint).toString();
  const id = url.split('/').pop()!;
  const append = {
    ...draft,
    'Upload-Complete': '?1',
    'Upload-Offset': 5,
    'Content-Type': 'application/partial-upload',
  };
  for (const [method, headers, body] of [
    ['HEAD', draft, undefined],
    ['GET', draft, undefined],
    ['PATCH', append, Buffer.from('56789')],
    ['DELETE', draft, undefined],
  ] as const) {
    const { final } = await exchange(method, url, headers, body);
    assert.equal(final.status, 451, `${method}: ${final.status}`);
    assert.equal(final.headers['x-why'], 'policy');
    if (method !== 'HEAD') assert.equal(final.body.toString(), 'refused by the access policy\n');
    const plain = (await exchange(method, url, { ...headers, 'X-Pass': 'plain' }, body)).final;
    assert.equal(plain.status, 403, method);
    if (method !== 'HEAD') {
      assert.match(plain.headers['content-type'] ?? '', /^application\/problem\+json/);
      assert.equal(JSON.parse(plain.body.toString()).code, 'ERR_ACCESS_DENIED');
    }
  }
  assert.equal(onDisk(s, id).toString(), '01234');
  assert.deepEqual([...new Set(accesses(hook).map((r) => r.Event.Upload.ID))], [id]);
  assert.ok(
    accesses(hook).every((r) => r.Event.HTTPRequest.Method !== 'POST'),
    'a creation is no access',
  );
  const head = await exchange('HEAD', url, { ...draft, ...PASS });
  assert.equal(head.final.headers['upload-offset'], '5');
  const done = await exchange('PATCH', url, { ...append, ...PASS }, Buffer.from('56789'));
  assert.ok(done.final.status < 300, done.final.body.toString());
  assert.equal(onDisk(s, id).toString(), '0123456789');
});

test('a resumable segment of an open session passes the hook; a refused one writes nothing and the session goes \
on', async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const bytes = Buffer.from('0123456789abcdef');
  const session = `session-${crypto.randomBytes(4).toString('hex')}`;
  const first = await sendSegment(s.url, session, [0, 7], { bytes, headers: PASS });
  assert.equal(first.status, 201, first.body);
  assert.equal(accesses(hook).length, 0, 'opening a session is a creation, not an access');
  const refused = await sendSegment(s.url, session, [8, 15], { bytes });
  assertRefused(refused, 'segment');
  assert.equal(accesses(hook)[0]!.Event.Access?.Mode, 'write');
  const id = accesses(hook)[0]!.Event.Upload.ID;
  const kept = onDisk(s, id);
  assert.equal(kept.subarray(0, 8).toString(), '01234567');
  assert.ok(
    kept.subarray(8).every((b) => b === 0),
    'the refused segment was written',
  );
  const plain = await sendSegment(s.url, session, [8, 15], { bytes, headers: { 'X-Pass': 'plain' } });
  assert.equal(plain.status, 403);
  assert.equal(JSON.parse(plain.body).error.code, 'ERR_ACCESS_DENIED');
  const last = await sendSegment(s.url, session, [8, 15], { bytes, headers: PASS });
  assert.ok(last.status >= 200 && last.status < 300 && last.status !== 201, `${last.status} ${last.body}`);
  assert.equal(onDisk(s, id).toString(), bytes.toString());
});

test("the completion API's download and removal of a record's file pass the hook for its upload", async (t) => {
  const { s, hook } = await serverWithPolicy(t);
  const { id } = await upload(s, 4, Buffer.from('abcd'), { filename: 'kept.txt' });
  const [record] = await recordsWhenPresent(s.url);
  assert.equal(record!.upload_id, id);
  hook.received.length = 0;
  const file = `${s.url}/api/uploads/${record!.id}/file`;
  const refused = await fetch(file);
  assert.equal(refused.status, 451);
  assert.equal(refused.headers.get('x-why'), 'policy');
  assert.equal(await refused.text(), 'refused by the access policy\n');
  const plain = await fetch(file, { headers: { 'X-Pass': 'plain' } });
  assert.equal(plain.status, 403);
  assert.equal(((await plain.json()) as { error: { code: string } }).error.code, 'ERR_ACCESS_DENIED');
  const removal = await fetch(`${s.url}/api/uploads/${record!.id}`, { method: 'DELETE' });
  assert.equal(removal.status, 451);
  assert.deepEqual(
    accesses(hook).map((r) => [r.Event.Upload.ID, r.Event.Access?.Mode]),
    [
      [id, 'read'],
      [id, 'read'],
      [id, 'write'],
    ],
  );
  // The record and its file are still there, and served when the hook allows.
  const allowed = await fetch(file, { headers: PASS });
  assert.equal(allowed.status, 200);
  assert.equal(await allowed.text(), 'abcd');
});

test('a refused DELETE racing a PATCH mid-body does not stop it: the PATCH finishes with every byte', async (t) => {
  const { s } = await serverWithPolicy(t, { networkTimeoutMs: 60_000 });
  const length = 400_000;
  const body = crypto.randomBytes(length);
  const { url, id } = await upload(s, length, Buffer.alloc(0));
  const conn = await openRaw(s.url);
  conn.socket.write(
    `PATCH /files/${id} HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nTus-Resumable: 1.0.0\r\nX-Pass: yes\r\n\
Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${length}\r\n\r\n`,
  );
  conn.socket.write(body.subarray(0, 200_000));
  // The PATCH holds the upload's lock once its first bytes are on disk.
  while (fs.statSync(path.join(s.config.storeDir, id)).size < 100_000) await new Promise((r) => setTimeout(r, 10));
  assertRefused(await tus('DELETE', url), 'DELETE during the PATCH');
  assertRefused(await tus('POST', url, { 'X-HTTP-Method-Override': 'DELETE' }), 'DELETE override during the PATCH');
  conn.socket.write(body.subarray(200_000));
  while (!/\r\n\r\n/.test(conn.received().toString('latin1'))) await new Promise((r) => setTimeout(r, 10));
  assert.match(conn.received().toString('latin1'), /^HTTP\/1\.1 2\d\d /);
  conn.socket.destroy();
  assert.ok(onDisk(s, id).equals(body), "the upload's bytes differ from the body sent");
  // An allowed DELETE racing a PATCH goes as before: the PATCH gives way, the upload goes.
  const other = await upload(s, length, Buffer.alloc(0));
  const second = await openRaw(s.url);
  second.socket.write(
    `PATCH /files/${other.id} HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nTus-Resumable: 1.0.0\r\nX-Pass: yes\r\n\
Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${length}\r\n\r\n`,
  );
  second.socket.write(body.subarray(0, 200_000));
  while (fs.statSync(path.join(s.config.storeDir, other.id)).size < 100_000)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal((await tus('DELETE', other.url, PASS)).status, 204);
  second.socket.destroy();
  assert.equal((await tus('HEAD', other.url, PASS)).status, 404);
});

test('command hook: HOOKS_DIR/pre-access refuses by the payload, allows otherwise', async (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'pre-access');
  fs.writeFileSync(
    script,
    `#!/bin/sh
payload=$(cat)
case "$payload" in
  *'"x-pass":["yes"]'*) echo '{}' ;;
  *) echo '{"RejectAccess":true,"HTTPResponse":{"StatusCode":401,\
"Body":"who are you?","Header":{"WWW-Authenticate":"Bearer"}}}' ;;
esac
`,
  );
  fs.chmodSync(script, 0o755);
  const s = await startTestServer(t, { hooksDir: dir, hooksEnabledEvents: ['pre-access'] });
  const { url } = await upload(s, 10, Buffer.from('01234'));
  const refused = await tus('HEAD', url);
  assert.equal(refused.status, 401);
  assert.equal(refused.headers['www-authenticate'], 'Bearer');
  const allowed = await tus('HEAD', url, PASS);
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers['upload-offset'], '5');
});

test('module hook: a .ts file exporting preAccess refuses without an answer of its own: 403 \
ERR_ACCESS_DENIED', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'access.ts');
  fs.writeFileSync(
    file,
    `type Request = { Event: { Upload: { MetaData: Record<string, string> }; HTTPRequest: { Header: Record<string, \
string[]> }; Access?: { Mode: string } } };
export function preAccess(request: Request) {
  const locked = request.Event.Upload.MetaData.filename?.startsWith('locked');
  const writes = request.Event.Access?.Mode === 'write';
  if (locked && writes && !request.Event.HTTPRequest.Header['x-pass']) return { RejectAccess: true };
  if (request.Event.Upload.MetaData.filename === 'smuggle') return { RejectAccess: true, HTTPResponse: { Header: { \
'X-A': 'b\\r\\nSet-Cookie: x=1' } } };
}
`,
  );
  const s = await startTestServer(t, { hooksModules: [file] });
  const { url, id } = await upload(s, 10, Buffer.from('01234'), { filename: 'locked.txt' });
  const written = await patch(url, 5, '56789');
  assert.equal(written.status, 403);
  assert.equal(written.body, 'ERR_ACCESS_DENIED: access to this upload was refused by a hook\n');
  assert.equal((await tus('DELETE', url)).status, 403);
  // Reading is left to it: allowed.
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '5');
  assert.equal(onDisk(s, id).toString(), '01234');
  // An answer whose header cannot be sent is the module's failure, as a command's or HTTP hook's is.
  const smuggle = await upload(s, 3, Buffer.alloc(0), { filename: 'smuggle' });
  const failed = await tus('DELETE', smuggle.url);
  assert.equal(failed.status, 500);
  assert.match(failed.body, /^ERR_HOOK_FAILED: .*line break/);
  assert.equal(failed.headers['set-cookie'], undefined);
  const free = await upload(s, 3, Buffer.alloc(0), { filename: 'free.txt' });
  assert.ok((await patch(free.url, 0, 'abc')).status < 300);
});

test('a pre-access hook that fails or hangs refuses as every blocking hook does (500 ERR_HOOK_FAILED, 504 \
ERR_HOOK_TIMEOUT); the server goes on', async (t) => {
  const flaky: HookHandler = {
    name: 'flaky',
    events: ['pre-access'],
    async invokeHook(request) {
      const name = request.Event.Upload.MetaData.filename;
      if (name === 'hang') await new Promise(() => undefined); // never answers, ignores the signal
      if (name === 'throw') throw new Error('the access service fell over');
      return {};
    },
  };
  const s = await startTestServer(t, { hooksTimeoutMs: 300 }, { hooks: [flaky] });
  const hang = await upload(s, 10, Buffer.alloc(0), { filename: 'hang' });
  const broken = await upload(s, 10, Buffer.alloc(0), { filename: 'throw' });
  const timedOut = await patch(hang.url, 0, 'abc');
  assert.equal(timedOut.status, 504);
  assert.match(timedOut.body, /^ERR_HOOK_TIMEOUT: hook flaky failed on pre-access for upload [0-9a-f]{32}/);
  const failed = await tus('DELETE', broken.url);
  assert.equal(failed.status, 500);
  assert.match(failed.body, /^ERR_HOOK_FAILED: hook flaky failed on pre-access/);
  // Nothing written, nothing held: another upload goes through, and the lock of the timed-out one is free.
  const fine = await upload(s, 3, Buffer.alloc(0), { filename: 'fine' });
  assert.ok((await patch(fine.url, 0, 'abc')).status < 300);
  assert.equal(fs.statSync(path.join(s.config.storeDir, hang.id)).size, 0);
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
});

test('without a pre-access hook nothing is asked: HTTP hooks on the default events never get pre-access', async (t) => {
  const hook = await startHookReceiver(t);
  hook.answer = policy;
  const s = await startTestServer(t, { hooksHttp: hook.url });
  const { url } = await upload(s, 4, Buffer.from('ab'));
  assert.equal((await tus('HEAD', url)).status, 200);
  assert.equal((await patch(url, 2, 'cd')).status, 200);
  assert.equal(accesses(hook).length, 0);
});

test('`tuspass hooks test pre-access` sends a pre-access payload (with Access.Mode) to the command hook and prints \
its refusal', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'pre-access'), `#!/bin/sh\ncat > /dev/null\necho '{"RejectAccess":true}'\n`);
  fs.chmodSync(path.join(dir, 'pre-access'), 0o755);
  const bin = path.resolve(import.meta.dirname, '../bin/tuspass.js');
  const r = spawnSync(
    process.execPath,
    [
      bin,
      'hooks',
      'test',
      'pre-access',
      '--hooks-dir',
      dir,
      '--hooks-enabled-events',
      'pre-access',
      '--data-dir',
      tmpDir(t),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /"Type": "pre-access"/);
  assert.match(r.stdout, /"Mode": "write"/);
  assert.match(r.stdout, /"RejectAccess": true/);
  const usage = spawnSync(process.execPath, [bin, 'hooks'], { encoding: 'utf8' });
  assert.match(usage.stdout, /pre-access/);
});

test("a refusal whose headers cannot be sent (a line break in a value) is the hook's failure: 500 ERR_HOOK_FAILED, \
nothing smuggled, the server goes on", async (t) => {
  const hook = await startHookReceiver(t);
  hook.answer = (r) =>
    r.Type === 'pre-access' && !r.Event.HTTPRequest.Header['x-pass']
      ? {
          RejectAccess: true,
          HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-Bad': 'a\r\nSet-Cookie: x=1' } },
        }
      : {};
  const s = await startTestServer(t, { hooksHttp: hook.url, hooksEnabledEvents: ['pre-access'], hooksHttpRetry: 0 });
  const { url, id } = await upload(s, 10, Buffer.from('01234'));
  for (const method of ['HEAD', 'DELETE'] as const) {
    const answer = await tus(method, url);
    assert.equal(answer.status, 500, `${method}: ${answer.status}`);
    if (method === 'DELETE') assert.match(answer.body, /^ERR_HOOK_FAILED: .*line break/);
    assert.equal(answer.headers['set-cookie'], undefined, 'a header was smuggled into the answer');
  }
  const draft = await exchange('DELETE', url, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(draft.final.status, 500);
  assert.equal(draft.final.headers['set-cookie'], undefined);
  assert.equal(onDisk(s, id).toString(), '01234');
  assert.equal((await tus('HEAD', url, PASS)).headers['upload-offset'], '5');
});

test("a refusal with a 1xx status or a header that frames the answer (Content-Length, Connection, Upgrade) is the \
hook's failure: the next answer on the connection is read as its own", async (t) => {
  const answers: Record<string, HookResponse> = {
    continue: { RejectAccess: true, HTTPResponse: { StatusCode: 100, Body: 'wait' } },
    switch: { RejectAccess: true, HTTPResponse: { StatusCode: 101, Body: 'no', Header: { Upgrade: 'websocket' } } },
    length: { RejectAccess: true, HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'Content-Length': '50' } } },
    connection: {
      RejectAccess: true,
      HTTPResponse: { StatusCode: 403, Body: 'no', Header: { connection: 'Upgrade' } },
    },
  };
  const hook = await startHookReceiver(t);
  hook.answer = (r) =>
    r.Type === 'pre-access' ? (answers[r.Event.HTTPRequest.Header['x-case']?.[0] ?? ''] ?? {}) : {};
  const s = await startTestServer(t, { hooksHttp: hook.url, hooksEnabledEvents: ['pre-access'], hooksHttpRetry: 0 });
  const { url, id } = await upload(s, 10, Buffer.from('01234'));
  const { pathname, host } = new URL(url);
  for (const name of Object.keys(answers)) {
    for (const method of ['HEAD', 'DELETE']) {
      // Two requests on one connection: the second's answer must not be taken for the first's.
      const raw = await openRaw(url);
      t.after(() => raw.socket.destroy());
      raw.socket.write(
        `${method} ${pathname} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\nX-Case: ${name}\r\n\r\n` +
          `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      );
      const [first, second] = await readResponses(raw, method === 'HEAD');
      assert.equal(first!.status, 500, `${name} ${method}: ${first!.statusLine}`);
      if (method === 'DELETE') assert.match(first!.body.toString(), /^ERR_HOOK_FAILED: /);
      assert.equal(first!.headers.upgrade, undefined, `${name} ${method}`);
      assert.equal(second!.status, 200, `${name} ${method}: the next answer`);
      raw.socket.destroy();
    }
  }
  assert.equal(onDisk(s, id).toString(), '01234');
  assert.equal((await tus('HEAD', url, PASS)).headers['upload-offset'], '5');
});

/** The first two answers on a raw connection. */
async function readResponses(raw: Awaited<ReturnType<typeof openRaw>>, head: boolean) {
  for (;;) {
    const buf = raw.received();
    const first = parseResponse(buf, raw.isClosed(), head);
    const second = first && parseResponse(buf.subarray(first.length), raw.isClosed());
    if (second) return [first, second];
    if (raw.isClosed()) throw new Error(`connection closed: ${JSON.stringify(buf.toString('latin1'))}`);
    await new Promise((r) => raw.socket.once('data', r).once('close', r));
  }
}
