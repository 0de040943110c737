// The one error responder (server/http/error-answer.ts): one mapping of every error to the table, the
// answer in the form of the front that serves the request, the same rules for every listener.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import express from 'express';
import { test } from 'node:test';
import { ERRORS } from '../core/errors.ts';
import { configFor } from '../server/config/config.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { answerError, servedAsDraft } from '../server/http/error-answer.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

test('one mapping, each front its form: an id that does not decode is 400 ERR_URL_INVALID as tus text, as problem \
details on a draft request, as JSON with "message" on the API', async (t) => {
  const s = await startTestServer(t);
  const tus = await fetch(`${s.endpoint}%ff`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(tus.status, 400);
  assert.equal(tus.headers.get('tus-resumable'), '1.0.0');
  assert.match(await tus.text(), /^ERR_URL_INVALID: /);

  const draft = await fetch(`${s.endpoint}%ff`, { method: 'DELETE', headers: { 'Upload-Draft-Interop-Version': '6' } });
  assert.equal(draft.status, 400);
  assert.match(draft.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = (await draft.json()) as Record<string, unknown>;
  assert.equal(problem.code, 'ERR_URL_INVALID');
  assert.equal(problem.status, 400);

  const api = await fetch(`${s.url}/api/uploads/%ff`);
  assert.equal(api.status, 400);
  const json = (await api.json()) as { error: { code: string; message: string }; message: string };
  assert.equal(json.error.code, 'ERR_URL_INVALID');
  assert.equal(json.message, json.error.message);
});

test('an error answered before a JSON route read its body closes the connection, as on the tus routes: the rest of \
the body is never read', {
  timeout: 20_000,
}, async (t) => {
  const s = await startTestServer(t);
  const { port } = new URL(s.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // Content-Length promises 10 MB; only a few bytes come. The answer must not wait for the rest.
  socket.write(
    `POST /no-such-route HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\n\
Content-Length: 10000000\r\n\r\nabc`,
  );
  await closed;
  const [head, body] = received.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 404 /);
  assert.match(head!, /\r\nConnection: close\r\n/i);
  assert.equal((JSON.parse(body!) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND');
});

test('whatever is passed on as an error — a string, a number, a plain or prototype-less object — is a 500 \
ERR_INTERNAL in every form, its words in the log only', async (t) => {
  const logs: string[] = [];
  const app = express();
  const thrown: unknown[] = ['a string with /secret/path', 42, { odd: true }, Object.create(null)];
  app.all('/files/:n', (req, res, next) => {
    if (req.get('upload-draft-interop-version')) servedAsDraft(res, null);
    next(thrown[Number(req.params.n)]);
  });
  app.all('/json/:n', (req, _res, next) => next(thrown[Number(req.params.n)]));
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) =>
    answerError(req, res, err, { log: (line) => logs.push(line) }),
  );
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const n of thrown.keys()) {
    const tus = await fetch(`${base}/files/${n}`, { method: 'DELETE' });
    assert.equal(tus.status, 500);
    assert.equal(await tus.text(), `ERR_INTERNAL: ${ERRORS.ERR_INTERNAL.message}\n`);
    const draft = await fetch(`${base}/files/${n}`, {
      method: 'DELETE',
      headers: { 'Upload-Draft-Interop-Version': '6' },
    });
    assert.equal(draft.status, 500);
    assert.equal(((await draft.json()) as { code: string }).code, 'ERR_INTERNAL');
    const json = await fetch(`${base}/json/${n}`);
    assert.equal(json.status, 500);
    assert.equal(((await json.json()) as { error: { code: string } }).error.code, 'ERR_INTERNAL');
  }
  assert.ok(
    logs.some((l) => l.includes('/secret/path')),
    'the thrown words are in the log',
  );
});

test('a /metrics caller without the admin scope is refused 401 as JSON with its challenge on every listener that \
serves it: the upload server and the completion service alone', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const service = await startCompletionServer(
    configFor({
      dataDir: tmpDir(t),
      completionPort: 0,
      completionSecret: 'test-secret-0123456789',
      authJwtSecret: TEST_JWT_SECRET,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  for (const base of [s.url, service.url]) {
    const res = await fetch(`${base}/metrics`, { headers: bearer(tokenFor('alice', 'read')) });
    assert.ok(res.status === 401 || res.status === 403, `${base}: ${res.status}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, base);
    const json = (await res.json()) as { error: { code: string }; message: string };
    assert.match(json.error.code, /^ERR_/, base);
    assert.equal(typeof json.message, 'string');
    const anonymous = await fetch(`${base}/metrics`);
    assert.equal(anonymous.status, 401, base);
    assert.ok(anonymous.headers.get('www-authenticate')?.startsWith('Bearer'), base);
  }
});
