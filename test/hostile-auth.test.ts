// Attacks on authentication, ownership and the routes around them, as an anonymous or hostile client
// would make them over real HTTP: odd token claims, other spellings of a path through the
// pass-through to the completion service.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCompletionServer } from '../server/completion/server.ts';
import { configFor } from '../server/config.ts';
import { bearer, hs256, inSeconds, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { openRaw, parseResponse } from './helpers/raw-http.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

/** One request over a raw socket (paths no HTTP client sends as written), its parsed answer. */
async function rawRequest(url: string, head: string): Promise<{ status: number; body: string }> {
  const c = await openRaw(url);
  c.socket.write(`${head}\r\nConnection: close\r\n\r\n`);
  await c.closed;
  const res = parseResponse(c.received(), true)!;
  return { status: res.status, body: res.body.toString('utf8') };
}

test('a token whose sub holds control characters is refused: the owner is written into log lines and operator tables', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  for (const sub of ['alice\nrefused GET /x: 200 forged', 'alice\u001b[2J', 'alice\u0000', 'alice\u0085']) {
    const token = hs256({ sub, scope: 'upload read', exp: inSeconds(60) });
    const res = await fetch(s.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', ...bearer(token) } });
    assert.equal(res.status, 401, JSON.stringify(sub));
    assert.match(await res.text(), /^ERR_TOKEN_INVALID: .*sub/);
  }
  assert.ok(!s.logs.some((l) => l.includes('forged')), 'no forged line in the log');
  // Printable names beyond ASCII stay fine.
  const ok = await fetch(s.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', ...bearer(tokenFor('Zoë Ångström', 'upload')) } });
  assert.equal(ok.status, 201);
});

test('the /api/uploads pass-through forwards only /api/uploads: dot segments do not reach the service\'s other routes', async (t) => {
  const dataDir = tmpDir(t);
  const config = configFor({ dataDir, completionPort: 0, completionSecret: 'test-secret-0123456789', authJwtSecret: TEST_JWT_SECRET });
  const service = await startCompletionServer(config, { log: () => {} });
  t.after(() => service.close());
  const s = await startTestServer(t, { dataDir, authJwtSecret: TEST_JWT_SECRET, completionUrl: `${service.url}/complete/` }, { completion: false });
  // The service's own /healthz answers {"ok":true}; through the upload server it must not.
  for (const path of ['/api/uploads/../../healthz', '/api/uploads/%2e%2e/%2e%2e/healthz', '/api/uploads/x/../../../readyz']) {
    const res = await rawRequest(s.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokenFor('alice', 'read')}`);
    assert.equal(res.status, 404, `${path}: ${res.body}`);
    assert.doesNotMatch(res.body, /"ok":true|"ready"/);
  }
  // The real routes still pass.
  const list = await fetch(`${s.url}/api/uploads`, { headers: bearer(tokenFor('alice', 'read')) });
  assert.equal(list.status, 200);
  assert.deepEqual(await list.json(), []);
});
