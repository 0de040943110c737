// Bearer tokens against every route: the owner, another user, anonymous, a read-only token and an
// admin, on tus (POST, HEAD, PATCH, GET, DELETE, final concatenation) and /api/uploads (list, one,
// file, DELETE). Tokens are minted by hand (test/helpers/jwt.ts), not by the server's code.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { bearer, tokenFor } from './helpers/jwt.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { patch, PATCH_TYPE, tus, type TusAnswer } from './helpers/tus.ts';
import { TEST_JWT_SECRET } from './helpers/jwt.ts';

const alice = bearer(tokenFor('alice', 'upload read'));
const aliceReadOnly = bearer(tokenFor('alice', 'read'));
const aliceUploadOnly = bearer(tokenFor('alice', 'upload'));
const bob = bearer(tokenFor('bob', 'upload read'));
const admin = bearer(tokenFor('root', 'admin'));
const anonymous = {};

const code = (a: TusAnswer) => a.body.split(':')[0];

async function createAs(
  s: TestServer,
  who: Record<string, string>,
  length: number,
  extra: Record<string, string> = {},
): Promise<string> {
  const res = await tus('POST', s.endpoint, { ...who, 'Upload-Length': String(length), ...extra });
  assert.equal(res.status, 201, res.body);
  return new URL(res.headers.location!, s.endpoint).toString();
}

async function api(s: TestServer, method: string, path: string, who: Record<string, string>) {
  const res = await fetch(`${s.url}${path}`, { method, headers: who });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: json as { error?: { code: string } } & Record<string, unknown>,
  };
}

test('tus routes: creation needs a token with upload; HEAD, PATCH, GET and DELETE only for the owner or an admin, 404 \
for others', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });

  // Anonymous: 401 with a bare Bearer challenge (RFC 6750 §3: no error code without credentials).
  const anon = await tus('POST', s.endpoint, { 'Upload-Length': '10' });
  assert.equal(anon.status, 401);
  assert.equal(code(anon), 'ERR_AUTH_REQUIRED');
  assert.match(anon.headers['www-authenticate']!, /^Bearer realm="tuspass"$/);
  // A token without upload: 403 insufficient_scope.
  const ro = await tus('POST', s.endpoint, { ...aliceReadOnly, 'Upload-Length': '10' });
  assert.equal(ro.status, 403);
  assert.equal(code(ro), 'ERR_SCOPE_MISSING');
  assert.match(ro.headers['www-authenticate']!, /error="insufficient_scope"/);
  // Basic or any other scheme is no bearer token.
  const basic = await tus('POST', s.endpoint, { Authorization: 'Basic YWxpY2U6eA==', 'Upload-Length': '10' });
  assert.equal(basic.status, 401);
  assert.match(basic.headers['www-authenticate']!, /error="invalid_token"/);

  const bytes = patternBytes(5000, 3);
  const url = await createAs(s, alice, bytes.length, {
    'Upload-Metadata': `filename ${Buffer.from('a.bin').toString('base64')}`,
  });
  // HEAD: owner yes, others as if it did not exist.
  assert.equal((await tus('HEAD', url, alice)).status, 200);
  assert.equal((await tus('HEAD', url, admin)).status, 200);
  assert.equal((await tus('HEAD', url, bob)).status, 404);
  assert.equal((await tus('HEAD', url, anonymous)).status, 401);
  assert.equal((await tus('HEAD', url, aliceReadOnly)).status, 403);
  const nowhere = url.replace(/[0-9a-f]{32}$/, '0'.repeat(32));
  const otherAnswer = await tus('PATCH', url, { ...bob, ...PATCH_TYPE, 'Upload-Offset': '0' }, bytes.subarray(0, 10));
  const missingAnswer = await tus(
    'PATCH',
    nowhere,
    { ...bob, ...PATCH_TYPE, 'Upload-Offset': '0' },
    bytes.subarray(0, 10),
  );
  assert.equal(otherAnswer.status, 404);
  assert.deepEqual(
    [otherAnswer.status, otherAnswer.body],
    [missingAnswer.status, missingAnswer.body],
    "someone else's upload answers as no upload",
  );
  // X-HTTP-Method-Override cannot turn bob's POST into a DELETE of alice's upload.
  assert.equal((await tus('POST', url, { ...bob, 'X-HTTP-Method-Override': 'DELETE' })).status, 404);
  assert.equal((await tus('HEAD', url, alice)).headers['upload-offset'], '0', 'nothing written by bob');

  // The owner writes half, an admin the rest.
  assert.equal((await patch(url, 0, bytes.subarray(0, 2500), alice)).status, 204);
  // GET of an unfinished upload: not for bob either way.
  assert.equal((await tus('GET', url, bob)).status, 404);
  const last = await patch(url, 2500, bytes.subarray(2500), admin);
  assert.equal(last.status, 200, last.body);

  // Downloads need read, and ownership.
  const got = await fetch(url, { headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
  assert.equal(got.status, 200);
  assert.equal(md5(Buffer.from(await got.arrayBuffer())), md5(bytes));
  assert.equal((await tus('GET', url, aliceReadOnly)).status, 200);
  assert.equal((await tus('GET', url, aliceUploadOnly)).status, 403);
  assert.equal((await tus('GET', url, bob)).status, 404);
  assert.equal((await tus('GET', url, admin)).status, 200);
  assert.equal((await tus('GET', url, anonymous)).status, 401);

  // A finished upload belongs to the catalog: tus DELETE refuses it, for the owner too.
  const del = await tus('DELETE', url, alice);
  assert.equal(del.status, 403);
  assert.equal(code(del), 'ERR_UPLOAD_FINISHED');
  assert.equal((await tus('DELETE', url, bob)).status, 404);
  assert.equal((await tus('HEAD', url, alice)).status, 200, 'still there');

  // An unfinished upload: bob cannot terminate it, alice can.
  const other = await createAs(s, alice, 100);
  assert.equal((await tus('DELETE', other, bob)).status, 404);
  assert.equal((await tus('DELETE', other, aliceReadOnly)).status, 403);
  assert.equal((await tus('DELETE', other, alice)).status, 204);
  assert.equal((await tus('HEAD', other, alice)).status, 404);
  // An admin may terminate anyone's.
  const third = await createAs(s, bob, 100);
  assert.equal((await tus('DELETE', third, admin)).status, 204);

  // CORS preflights pass without a token.
  const pre = await fetch(s.endpoint, {
    method: 'OPTIONS',
    headers: { Origin: 'http://x.invalid', 'Access-Control-Request-Method': 'POST' },
  });
  assert.ok(pre.status < 300, `preflight answered ${pre.status}`);
});

test("concatenation: a final may name only the caller's own \
partials (or any, for an admin); the final is the caller's", async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, keepPartials: true });
  const part = async (who: Record<string, string>, body: Buffer) => {
    const url = await createAs(s, who, body.length, { 'Upload-Concat': 'partial' });
    assert.equal((await patch(url, 0, body, who)).status, 204);
    return new URL(url).pathname;
  };
  const a = await part(alice, Buffer.from('alice-part-'));
  const b = await part(bob, Buffer.from('bob-part'));
  // bob names alice's partial: answered as a partial that does not exist.
  const stolen = await tus('POST', s.endpoint, { ...bob, 'Upload-Concat': `final;${b} ${a}` });
  assert.equal(stolen.status, 404);
  assert.equal(code(stolen), 'ERR_CONCAT_PARTIAL_NOT_FOUND');
  const missing = await tus('POST', s.endpoint, {
    ...bob,
    'Upload-Concat': `final;${b} ${a.replace(/.{4}$/, '0000')}`,
  });
  assert.deepEqual([missing.status, code(missing)], [stolen.status, code(stolen)]);
  // A partial is the owner's to delete (never recorded in the catalog).
  const a2 = await part(alice, Buffer.from('x'));
  assert.equal((await tus('DELETE', `${s.url}${a2}`, bob)).status, 404);
  assert.equal((await tus('DELETE', `${s.url}${a2}`, alice)).status, 204);

  const own = await tus('POST', s.endpoint, { ...alice, 'Upload-Concat': `final;${a}` });
  assert.equal(own.status, 201, own.body);
  const finalUrl = new URL(own.headers.location!, s.endpoint).toString();
  assert.equal((await tus('HEAD', finalUrl, bob)).status, 404);
  assert.equal((await tus('HEAD', finalUrl, alice)).status, 200);
  const byAdmin = await tus('POST', s.endpoint, { ...admin, 'Upload-Concat': `final;${a} ${b}` });
  assert.equal(byAdmin.status, 201, byAdmin.body);
  const adminFinal = new URL(byAdmin.headers.location!, s.endpoint).toString();
  assert.equal((await tus('HEAD', adminFinal, alice)).status, 404, "the admin's final is the admin's");
});

test('/api/uploads: each caller lists and reads their own records, without server paths; admins all; DELETE removes \
record and file', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const upload = async (who: Record<string, string>, text: string) => {
    const url = await createAs(s, who, text.length);
    const res = await patch(url, 0, text, who);
    assert.equal(res.status, 200, res.body);
    return JSON.parse(res.body) as { id: string; url: string };
  };
  const a = await upload(alice, 'alice file');
  const b = await upload(bob, 'bob file!');
  await recordsWhenPresent(s.url, 0);

  assert.equal((await api(s, 'GET', '/api/uploads', anonymous)).status, 401);
  const uploadOnly = await api(s, 'GET', '/api/uploads', aliceUploadOnly);
  assert.equal(uploadOnly.status, 403);
  assert.equal(uploadOnly.json.error!.code, 'ERR_SCOPE_MISSING');

  const mine = (await api(s, 'GET', '/api/uploads', aliceReadOnly)).json as unknown as Array<Record<string, unknown>>;
  assert.deepEqual(
    mine.map((r) => r.id),
    [a.id],
  );
  assert.equal(mine[0]!.owner, 'alice');
  assert.equal('path' in mine[0]!, false, 'no absolute server path for non-admins');
  const all = (await api(s, 'GET', '/api/uploads', admin)).json as unknown as Array<Record<string, unknown>>;
  assert.deepEqual(all.map((r) => r.id).sort(), [a.id, b.id].sort());
  assert.ok(
    all.every((r) => typeof r.path === 'string'),
    'admins see paths',
  );

  // One record and its file: bob's view of alice's record is "no such record".
  assert.equal((await api(s, 'GET', `/api/uploads/${a.id}`, alice)).status, 200);
  const bobsView = await api(s, 'GET', `/api/uploads/${a.id}`, bob);
  const nothing = await api(s, 'GET', '/api/uploads/999999', bob);
  assert.equal(bobsView.status, 404);
  assert.deepEqual(bobsView.json.error!.code, nothing.json.error!.code);
  assert.equal((await api(s, 'GET', a.url, alice)).text, 'alice file');
  assert.equal((await api(s, 'GET', a.url, bob)).status, 404);
  assert.equal((await api(s, 'GET', a.url, anonymous)).status, 401);
  assert.equal((await api(s, 'GET', a.url, admin)).text, 'alice file');

  // DELETE: bob cannot, a read-only token cannot, alice can; the file goes with the record.
  const path = all.find((r) => r.id === a.id)!.path as string;
  assert.ok(fs.existsSync(path));
  assert.equal((await api(s, 'DELETE', `/api/uploads/${a.id}`, bob)).status, 404);
  assert.equal((await api(s, 'DELETE', `/api/uploads/${a.id}`, aliceReadOnly)).status, 403);
  assert.equal((await api(s, 'DELETE', `/api/uploads/${a.id}`, anonymous)).status, 401);
  assert.equal((await api(s, 'DELETE', `/api/uploads/${a.id}`, alice)).status, 204);
  assert.equal(fs.existsSync(path), false, 'file removed');
  assert.equal(fs.existsSync(`${path}.json`), false, 'info removed');
  assert.equal((await api(s, 'GET', `/api/uploads/${a.id}`, alice)).status, 404);
  assert.equal((await api(s, 'DELETE', `/api/uploads/${a.id}`, alice)).status, 404);
  // An admin removes anyone's.
  assert.equal((await api(s, 'DELETE', `/api/uploads/${b.id}`, admin)).status, 204);
  assert.deepEqual((await api(s, 'GET', '/api/uploads', admin)).json, []);
});

test('without authentication configured (loopback), everything \
works anonymously as before, records keep their paths', async (t) => {
  const s = await startTestServer(t);
  const url = await createAs(s, anonymous, 3);
  assert.equal((await patch(url, 0, 'abc')).status, 200);
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.owner, '');
  assert.equal(typeof record!.path, 'string');
  assert.equal((await tus('DELETE', url)).status, 403, 'finished uploads go through the catalog here too');
  assert.equal((await api(s, 'DELETE', `/api/uploads/${record!.id}`, anonymous)).status, 204);
  assert.equal((await tus('HEAD', url)).status, 404);
});
