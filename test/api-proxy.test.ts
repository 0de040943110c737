// Split deployment (docker-compose): the upload server serves the page and passes /api/uploads
// through to the completion service running on its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { ERRORS } from '../core/errors.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { freePort } from './helpers/ports.ts';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, metadata, patch, tus } from './helpers/tus.ts';

test('the upload server passes /api/uploads and downloads \
through, and says 502 when the service is gone', async (t) => {
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({ dataDir, completionPort: 0, completionSecret: 'test-secret-0123456789' }),
    { log: () => {} },
  );
  let serviceUp = true;
  t.after(() => (serviceUp ? service.close() : undefined));
  const s = await startTestServer(t, { dataDir, completionUrl: `${service.url}/complete/` }, { completion: false });

  const bytes = patternBytes(20_000, 41);
  const url = await create(s.endpoint, bytes.length, { filename: 'split.bin' });
  const answer = JSON.parse((await patch(url, 0, bytes)).body);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.md5, md5(bytes));
  const range = await fetch(`${s.url}${answer.url}`, { headers: { Range: 'bytes=0-9' } });
  assert.equal(range.status, 206);
  assert.deepEqual(Buffer.from(await range.arrayBuffer()), bytes.subarray(0, 10));

  await service.close();
  serviceUp = false;
  const gone = await fetch(`${s.url}/api/uploads`);
  assert.equal(gone.status, 502);
  const answer502 = await gone.text();
  assert.equal((JSON.parse(answer502) as { error: { code: string } }).error.code, 'ERR_COMPLETION_UNREACHABLE');
  assert.ok(!answer502.includes(new URL(service.url).host), answer502);
});

test("the pass-through checks the caller's token and scope before forwarding, and names no address when the service is \
gone", async (t) => {
  // Nothing listens on the service's port: every request forwarded would fail with a socket error.
  const port = await freePort();
  const s = await startTestServer(
    t,
    { completionUrl: `http://127.0.0.1:${port}/complete/`, authJwtSecret: TEST_JWT_SECRET },
    { completion: false },
  );
  const ask = async (headers: Record<string, string> = {}, method = 'GET', path = '/api/uploads') => {
    const res = await fetch(`${s.url}${path}`, { method, headers });
    return { status: res.status, text: await res.text(), challenge: res.headers.get('www-authenticate') ?? '' };
  };

  const anonymous = await ask();
  assert.equal(anonymous.status, 401, anonymous.text);
  assert.match(anonymous.text, /ERR_AUTH_REQUIRED/);
  assert.match(anonymous.challenge, /^Bearer /);
  assert.equal((await ask({ Authorization: 'Bearer not.a.token' })).status, 401);
  assert.equal((await ask(bearer(tokenFor('alice', 'read', {}, 'another-secret-0123456789abcdef-0123')))).status, 401);
  const noRead = await ask(bearer(tokenFor('alice', 'upload')), 'GET', '/api/uploads/12');
  assert.equal(noRead.status, 403, noRead.text);
  assert.match(noRead.text, /ERR_SCOPE_MISSING/);
  assert.equal((await ask(bearer(tokenFor('alice', 'read')), 'DELETE', '/api/uploads/12')).status, 403);

  const gone = await ask(bearer(tokenFor('alice', 'read')));
  assert.equal(gone.status, 502, gone.text);
  const { error } = JSON.parse(gone.text) as { error: { code: string; message: string } };
  assert.equal(error.code, 'ERR_COMPLETION_UNREACHABLE');
  assert.equal(error.message, ERRORS.ERR_COMPLETION_UNREACHABLE.message);
  for (const leak of ['127.0.0.1', String(port), 'ECONNREFUSED', 'connect'])
    assert.ok(!gone.text.includes(leak), `${leak} in ${gone.text}`);
  // The operator reads where the service was and why it was not reached.
  assert.ok(
    s.logs.some(
      (l) => l.includes('ERR_COMPLETION_UNREACHABLE') && l.includes(`127.0.0.1:${port}`) && l.includes('ECONNREFUSED'),
    ),
    s.logs.join('\n'),
  );
});

test("through the pass-through a record's file is downloaded and removed only past the upload server's access step: \
the pre-access hook refuses them as in tuspass start", async (t) => {
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({ dataDir, completionPort: 0, completionSecret: 'test-secret-0123456789' }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const hook = await startHookReceiver(t);
  // Reads and writes of the upload pass only with X-Pass (the hook's own policy).
  hook.answer = (r) =>
    r.Type === 'pre-access' && !r.Event.HTTPRequest.Header['x-pass']
      ? { RejectAccess: true, HTTPResponse: { StatusCode: 451, Body: 'frozen' } }
      : {};
  const s = await startTestServer(
    t,
    {
      dataDir,
      completionUrl: `${service.url}/complete/`,
      hooksHttp: hook.url,
      hooksEnabledEvents: ['pre-access'],
      hooksHttpRetry: 0,
    },
    { completion: false },
  );
  const bytes = patternBytes(1000, 7);
  const url = await create(s.endpoint, bytes.length, { filename: 'frozen.bin' });
  const answer = JSON.parse((await patch(url, 0, bytes, { 'X-Pass': 'yes' })).body) as { id: string; url: string };
  const id = url.split('/').pop()!;
  const asked = () =>
    hook.received
      .filter((r) => r.request.Type === 'pre-access')
      .map((r) => [r.request.Event.Upload.ID, r.request.Event.Access?.Mode]);
  hook.received.length = 0;

  // Every spelling the service's router takes for the download and the removal.
  for (const [method, path] of [
    ['GET', answer.url],
    ['HEAD', answer.url],
    ['GET', `${answer.url}/`],
    ['GET', answer.url.toUpperCase()],
    ['DELETE', `/api/uploads/${answer.id}`],
    ['DELETE', `/API/Uploads/${answer.id}/`],
  ] as const) {
    const res = await fetch(`${s.url}${path}`, { method });
    const body = await res.text();
    assert.equal(res.status, 451, `${method} ${path}: ${res.status} ${body.slice(0, 80)}`);
    assert.ok(!body.includes(bytes.subarray(0, 20).toString('latin1')), `${method} ${path}: the file's bytes`);
  }
  assert.ok(asked().length >= 6 && asked().every(([upload]) => upload === id), JSON.stringify(asked()));
  assert.deepEqual([...new Set(asked().map(([, mode]) => mode))].sort(), ['read', 'write']);
  // Still there, and served when the hook allows.
  const allowed = await fetch(`${s.url}${answer.url}`, { headers: { 'X-Pass': 'yes' } });
  assert.equal(allowed.status, 200);
  assert.deepEqual(Buffer.from(await allowed.arrayBuffer()), bytes);
  // The record itself (no file read) is the service's to answer: no hook.
  hook.received.length = 0;
  assert.equal((await fetch(`${s.url}/api/uploads/${answer.id}`)).status, 200);
  assert.deepEqual(asked(), []);
  assert.equal(
    (await fetch(`${s.url}/api/uploads/${answer.id}`, { method: 'DELETE', headers: { 'X-Pass': 'yes' } })).status,
    204,
  );
});

test('through the pass-through a token that may remove but not read is still refused by the pre-access hook: the \
record it \
cannot read is not forwarded for removal', async (t) => {
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({
      dataDir,
      completionPort: 0,
      completionSecret: 'test-secret-0123456789',
      authJwtSecret: TEST_JWT_SECRET,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const hook = await startHookReceiver(t);
  hook.answer = (r) =>
    r.Type === 'pre-access' && r.Event.HTTPRequest.Method === 'DELETE' ? { RejectAccess: true } : {};
  const s = await startTestServer(
    t,
    {
      dataDir,
      completionUrl: `${service.url}/complete/`,
      authJwtSecret: TEST_JWT_SECRET,
      hooksHttp: hook.url,
      hooksEnabledEvents: ['pre-access'],
      hooksHttpRetry: 0,
    },
    { completion: false },
  );
  const alice = bearer(tokenFor('alice', 'upload read'));
  const bytes = patternBytes(100, 3);
  const made = await tus('POST', s.endpoint, {
    ...alice,
    'Upload-Length': String(bytes.length),
    'Upload-Metadata': metadata({ filename: 'kept.bin' }),
  });
  const url = new URL(made.headers.location!, s.endpoint).toString();
  const answer = JSON.parse((await patch(url, 0, bytes, alice)).body) as { id: string };
  const removeOnly = bearer(tokenFor('alice', 'upload'));
  const removed = await fetch(`${s.url}/api/uploads/${answer.id}`, { method: 'DELETE', headers: removeOnly });
  const text = await removed.text();
  // Its record cannot be read with this token, so its upload cannot be put to the hook: refused as the service refuses
  // the read.
  assert.equal(removed.status, 403, text);
  assert.match(text, /ERR_SCOPE_MISSING/);
  assert.equal(
    (await fetch(`${s.url}/api/uploads/${answer.id}`, { headers: alice })).status,
    200,
    'the record is still there',
  );
});
