// Attacks on authentication, ownership and the routes around them, as an anonymous or hostile client
// would make them over real HTTP: odd token claims, other spellings of a path through the
// pass-through to the completion service.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { bearer, hs256, inSeconds, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { openRaw, parseResponse } from './helpers/raw-http.ts';
import { prefixFor, REDIS } from './helpers/redis-pair.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { metadata, patch, tus } from './helpers/tus.ts';

/** One request over a raw socket (paths no HTTP client sends as written), its parsed answer. */
async function rawRequest(url: string, head: string): Promise<{ status: number; body: string }> {
  const c = await openRaw(url);
  c.socket.write(`${head}\r\nConnection: close\r\n\r\n`);
  await c.closed;
  const res = parseResponse(c.received(), true)!;
  return { status: res.status, body: res.body.toString('utf8') };
}

test('a token whose sub holds control characters is refused: the \
owner is written into log lines and operator tables', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  for (const sub of ['alice\nrefused GET /x: 200 forged', 'alice\u001b[2J', 'alice\u0000', 'alice\u0085']) {
    const token = hs256({ sub, scope: 'upload read', exp: inSeconds(60) });
    const res = await fetch(s.endpoint, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', ...bearer(token) },
    });
    assert.equal(res.status, 401, JSON.stringify(sub));
    assert.match(await res.text(), /^ERR_TOKEN_INVALID: .*sub/);
  }
  assert.ok(!s.logs.some((l) => l.includes('forged')), 'no forged line in the log');
  // Printable names beyond ASCII stay fine.
  const ok = await fetch(s.endpoint, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', ...bearer(tokenFor('Zoë Ångström', 'upload')) },
  });
  assert.equal(ok.status, 201);
});

test("the /api/uploads pass-through forwards only /api/uploads: \
dot segments do not reach the service's other routes", async (t) => {
  const dataDir = tmpDir(t);
  const config = configFor({
    dataDir,
    completionPort: 0,
    completionSecret: 'test-secret-0123456789',
    authJwtSecret: TEST_JWT_SECRET,
  });
  const service = await startCompletionServer(config, { log: () => {} });
  t.after(() => service.close());
  const s = await startTestServer(
    t,
    { dataDir, authJwtSecret: TEST_JWT_SECRET, completionUrl: `${service.url}/complete/` },
    { completion: false },
  );
  // The service's own /healthz answers {"ok":true}; through the upload server it must not.
  for (const path of [
    '/api/uploads/../../healthz',
    '/api/uploads/%2e%2e/%2e%2e/healthz',
    '/api/uploads/x/../../../readyz',
  ]) {
    const res = await rawRequest(
      s.url,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor('alice', 'read')}`,
    );
    assert.equal(res.status, 404, `${path}: ${res.body}`);
    assert.doesNotMatch(res.body, /"ok":true|"ready"/);
  }
  // The real routes still pass.
  const list = await fetch(`${s.url}/api/uploads`, { headers: bearer(tokenFor('alice', 'read')) });
  assert.equal(list.status, 200);
  assert.deepEqual(await list.json(), []);
});

test('DNS rebinding: an anonymous server answers only requests addressed to this machine by name; with a key or \
ALLOW_ANONYMOUS, any name', async (t) => {
  const s = await startTestServer(t);
  const port = new URL(s.url).port;
  for (const host of [`evil.test:${port}`, 'evil.test', `10.0.0.7:${port}`]) {
    for (const path of ['/api/uploads', '/files/', '/', '/healthz']) {
      const res = await rawRequest(s.url, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0`);
      assert.equal(res.status, 421, `${host} ${path}: ${res.body}`);
      assert.match(res.body, /ERR_HOST_NOT_LOOPBACK/);
    }
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, '127.0.0.2']) {
    assert.equal((await rawRequest(s.url, `GET /api/uploads HTTP/1.1\r\nHost: ${host}`)).status, 200, host);
  }
  const anonymous = await startTestServer(t, { allowAnonymous: true });
  assert.equal((await rawRequest(anonymous.url, 'GET /api/uploads HTTP/1.1\r\nHost: uploads.example.com')).status, 200);
  const keyed = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  assert.equal(
    (
      await rawRequest(
        keyed.url,
        `GET /api/uploads HTTP/1.1\r\nHost: uploads.example.com\r\nAuthorization: Bearer ${tokenFor('alice', 'read')}`,
      )
    ).status,
    200,
  );
  // The completion service on its own port as well.
  const service = await startCompletionServer(
    configFor({ dataDir: tmpDir(t), completionPort: 0, completionSecret: 'test-secret-0123456789' }),
    { log: () => {} },
  );
  t.after(() => service.close());
  assert.equal((await rawRequest(service.url, 'GET /api/uploads HTTP/1.1\r\nHost: evil.test')).status, 421);
  // The METRICS_PORT listener on loopback asks no token, with or without authentication: names checked there too.
  const ops = await startTestServer(t, { metricsPort: 0, authJwtSecret: TEST_JWT_SECRET });
  assert.equal((await rawRequest(ops.metricsUrl!, 'GET /metrics HTTP/1.1\r\nHost: evil.test')).status, 421);
  assert.equal(
    (await rawRequest(ops.metricsUrl!, `GET /metrics HTTP/1.1\r\nHost: ${new URL(ops.metricsUrl!).host}`)).status,
    200,
  );
});

test('a form posted from another site (Origin not this server and not in CORS_ORIGINS) is refused; own pages, listed \
origins and non-browsers pass', async (t) => {
  const post = (url: string, origin?: string) => {
    const form = new FormData();
    form.set('name', 'x');
    form.set('file1', new Blob(['hello']), 'x.txt');
    return fetch(`${url}/upload`, { method: 'POST', body: form, headers: origin ? { Origin: origin } : {} });
  };
  const s = await startTestServer(t, { corsOrigins: ['https://app.example.com'] });
  const evil = await post(s.url, 'https://evil.test');
  assert.equal(evil.status, 403);
  assert.match(await evil.text(), /ERR_ORIGIN_FORBIDDEN/);
  assert.equal((await post(s.url, 'null')).status, 403, 'an opaque origin (sandboxed page, file://)');
  assert.equal(((await (await fetch(`${s.url}/api/uploads`)).json()) as unknown[]).length, 0, 'nothing recorded');
  for (const origin of [new URL(s.url).origin, 'https://app.example.com', undefined]) {
    const ok = await post(s.url, origin);
    assert.equal(ok.status, 200, `${origin}: ${await ok.text()}`);
  }
});

test("two instances on one store: an upload id a pre-create hook gives again, after its upload was removed, is its new \
owner's on every instance (no instance remembers the old owner)", async (t) => {
  const prefix = prefixFor(t);
  // The hook names uploads by a slot in their metadata, as an application keying uploads by its own ids does.
  const dir = tmpDir(t);
  const hook = path.join(dir, 'slots.mjs');
  fs.writeFileSync(
    hook,
    "export function preCreate(r) { return { ChangeFileInfo: { ID: 'slot-' + r.Event.Upload.MetaData.slot } }; }\n",
  );
  const storeDir = tmpDir(t);
  const settings = { storeDir, redisUrl: REDIS, minFreeSpace: 0, authJwtSecret: TEST_JWT_SECRET, hooksModules: [hook] };
  const a = await startTestServer(t, settings, { redisPrefix: prefix });
  const b = await startTestServer(
    t,
    { ...settings, completionUrl: a.completionUrl },
    { redisPrefix: prefix, completion: false },
  );
  const alice = bearer(tokenFor('alice', 'upload read'));
  const bob = bearer(tokenFor('bob', 'upload read'));
  const meta = metadata({ filename: 'a.bin', slot: '1' });

  const first = await tus('POST', a.endpoint, { ...alice, 'Upload-Length': '10', 'Upload-Metadata': meta });
  assert.equal(first.status, 201, first.body);
  const url = (base: string) => `${base}slot-1`;
  assert.equal((await tus('HEAD', url(b.endpoint), alice)).status, 200, 'alice reads her upload on B');
  assert.equal((await tus('DELETE', url(a.endpoint), alice)).status, 204);
  const again = await tus('POST', a.endpoint, { ...bob, 'Upload-Length': '10', 'Upload-Metadata': meta });
  assert.equal(again.status, 201, again.body);

  for (const s of [a, b]) {
    assert.equal(
      (await tus('HEAD', url(s.endpoint), alice)).status,
      404,
      `alice on ${s === a ? 'A' : 'B'}: bob's upload`,
    );
    const written = await patch(url(s.endpoint), 0, 'alice', alice);
    assert.equal(written.status, 404, `alice writes bob's upload on ${s === a ? 'A' : 'B'}`);
    assert.equal((await tus('HEAD', url(s.endpoint), bob)).status, 200);
  }
  assert.equal((await tus('HEAD', url(b.endpoint), bob)).headers['upload-offset'], '0');
});
