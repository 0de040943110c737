// CORS_ORIGINS: which other origins' pages may read tus answers, /api/uploads and downloads. A real
// server per setting; the browser's side is played by the Origin and preflight headers it sends.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { PATCH_TYPE, tus } from './helpers/tus.ts';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

/** One finished upload and its record: every route then has something to answer about. */
async function withUpload(t: TestContext, corsOrigins: string[]) {
  const s = await startTestServer(t, { corsOrigins });
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '5', ...PATCH_TYPE }, 'hello');
  assert.equal(created.status, 201, created.body);
  const uploadUrl = new URL(created.headers.location!, s.endpoint).toString();
  const [record] = await recordsWhenPresent(s.url);
  assert.ok(record, 'recorded');
  return { s, uploadUrl, recordUrl: `${s.url}/api/uploads/${record.id}`, fileUrl: `${s.url}${record.url}` };
}

/** The answers a page on `origin` would read, one per kind of route (tus handlers of both kinds, errors, API,
 * download). */
async function answers(u: Awaited<ReturnType<typeof withUpload>>, origin: string | undefined) {
  const o: Record<string, string> = origin ? { Origin: origin } : {};
  return {
    'tus POST (@tus/server)': await tus('POST', u.s.endpoint, { 'Upload-Length': '1', ...o }),
    'tus HEAD': await tus('HEAD', u.uploadUrl, o),
    'tus GET': await tus('GET', u.uploadUrl, o),
    'tus 404': await tus('HEAD', `${u.s.endpoint}0000000000000000000000000000dead`, o),
    'tus 412': await tus('HEAD', u.uploadUrl, { 'Tus-Resumable': '0.2.2', ...o }),
    'api list': await tus('GET', `${u.s.url}/api/uploads`, o),
    'api record': await tus('GET', u.recordUrl, o),
    download: await tus('GET', u.fileUrl, o),
  };
}

test('a listed origin is echoed with Vary: Origin; an unlisted \
one and a request without Origin get no CORS answer', async (t) => {
  const u = await withUpload(t, [APP, 'http://localhost:5173']);
  for (const [name, a] of Object.entries(await answers(u, APP))) {
    assert.equal(a.headers['access-control-allow-origin'], APP, name);
    assert.match(a.headers.vary ?? '', /\bOrigin\b/i, `${name}: Vary`);
  }
  // Exposed headers let tus-js-client read Location and Upload-Offset; and every answer's request
  // id, which Uppy and tus-js-client name in their error messages.
  const listed = await answers(u, APP);
  assert.match(listed['tus HEAD'].headers['access-control-expose-headers'] ?? '', /Upload-Offset/);
  for (const [name, a] of Object.entries(listed)) {
    assert.ok(a.headers['x-request-id'], `${name}: X-Request-Id`);
    assert.ok(
      (a.headers['access-control-expose-headers'] ?? '').split(/,\s*/).includes('X-Request-Id'),
      `${name} exposes X-Request-Id: ${a.headers['access-control-expose-headers']}`,
    );
  }
  for (const origin of [EVIL, `${APP}.evil.net`, 'https://APP.example.com:444', 'null', undefined]) {
    for (const [name, a] of Object.entries(await answers(u, origin))) {
      assert.equal(a.headers['access-control-allow-origin'], undefined, `${name} from ${origin}`);
      assert.match(
        a.headers.vary ?? '',
        /\bOrigin\b/i,
        `${name} from ${origin}: Vary (a cache must not serve a listed answer)`,
      );
    }
  }
});

test('no CORS_ORIGINS (the default): same origin only, no Access-Control-Allow-Origin at all', async (t) => {
  const u = await withUpload(t, []);
  for (const origin of [APP, u.s.url, undefined]) {
    for (const [name, a] of Object.entries(await answers(u, origin)))
      assert.equal(a.headers['access-control-allow-origin'], undefined, `${name} from ${origin}`);
  }
  const preflight = await tus('OPTIONS', u.uploadUrl, {
    Origin: APP,
    'Access-Control-Request-Method': 'PATCH',
    'Access-Control-Request-Headers': 'authorization',
  });
  assert.equal(preflight.headers['access-control-allow-origin'], undefined);
});

test('CORS_ORIGINS=* allows any origin, without credentials', async (t) => {
  const u = await withUpload(t, ['*']);
  for (const [name, a] of Object.entries(await answers(u, EVIL))) {
    assert.equal(a.headers['access-control-allow-origin'], '*', name);
    assert.equal(a.headers['access-control-allow-credentials'], undefined, name);
  }
});

test('preflights for PATCH and DELETE with Authorization: allowed for a listed origin only', async (t) => {
  const u = await withUpload(t, [APP]);
  const preflight = (url: string, method: string, origin: string) =>
    tus('OPTIONS', url, {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization, tus-resumable, upload-offset, content-type',
    });
  for (const method of ['PATCH', 'DELETE', 'HEAD', 'POST']) {
    const ok = await preflight(method === 'POST' ? u.s.endpoint : u.uploadUrl, method, APP);
    assert.ok(ok.status === 204 || ok.status === 200, `${method}: ${ok.status}`);
    assert.equal(ok.headers['access-control-allow-origin'], APP, method);
    assert.ok(
      ok.headers['access-control-allow-methods']!.split(/,\s*/).includes(method),
      `${method} in ${ok.headers['access-control-allow-methods']}`,
    );
    const allowed = ok.headers['access-control-allow-headers']!.toLowerCase().split(/,\s*/);
    for (const h of ['authorization', 'tus-resumable', 'upload-offset', 'content-type'])
      assert.ok(allowed.includes(h), `${method}: ${h} allowed`);
    const refused = await preflight(u.uploadUrl, method, EVIL);
    assert.equal(refused.headers['access-control-allow-origin'], undefined, `${method} from ${EVIL}`);
  }
  // The API's preflights: a download with Range, a record's removal with a token.
  for (const [url, method, headers] of [
    [u.fileUrl, 'GET', 'range, authorization'],
    [u.recordUrl, 'DELETE', 'authorization'],
  ] as const) {
    const ok = await tus('OPTIONS', url, {
      Origin: APP,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': headers,
    });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], APP);
    assert.ok(ok.headers['access-control-allow-methods']!.includes(method));
    for (const h of headers.split(', '))
      assert.ok(ok.headers['access-control-allow-headers']!.toLowerCase().includes(h), h);
    const refused = await tus('OPTIONS', url, {
      Origin: EVIL,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': headers,
    });
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    assert.equal(refused.headers['access-control-allow-methods'], undefined);
  }
});

test('CORS_ORIGINS is checked at start: origins only, or * alone', async () => {
  const { load, ConfigError } = await import('../server/config/config.ts');
  assert.deepEqual(load({ CORS_ORIGINS: 'https://App.Example.com:443/, http://localhost:5173' }).config.corsOrigins, [
    APP,
    'http://localhost:5173',
  ]);
  for (const bad of ['https://app.example.com/upload', '*,https://a.example', 'app.example.com', 'ftp://a.example']) {
    assert.throws(
      () => load({ CORS_ORIGINS: bad }),
      (e: unknown) => e instanceof ConfigError && /CORS_ORIGINS/.test(e.message),
      bad,
    );
  }
});

test('with authentication on, refusals reach a listed page (401 readable), and preflights need no token', async (t) => {
  const s = await startTestServer(t, {
    corsOrigins: [APP],
    authJwtSecret: 'a-jwt-secret-for-the-cors-test-0123456789',
  });
  for (const [method, url] of [
    ['POST', s.endpoint],
    ['HEAD', `${s.endpoint}0000000000000000000000000000dead`],
    ['GET', `${s.url}/api/uploads`],
  ] as const) {
    const refused = await tus(method, url, { Origin: APP, 'Upload-Length': '1' });
    assert.equal(refused.status, 401, `${method} ${url}`);
    assert.equal(refused.headers['access-control-allow-origin'], APP, `${method}: the page can read the 401`);
    const other = await tus(method, url, { Origin: EVIL, 'Upload-Length': '1' });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  }
  for (const url of [s.endpoint, `${s.url}/api/uploads/1`]) {
    const preflight = await tus('OPTIONS', url, {
      Origin: APP,
      'Access-Control-Request-Method': url.includes('/api/') ? 'DELETE' : 'POST',
      'Access-Control-Request-Headers': 'authorization',
    });
    assert.ok(preflight.status === 204 || preflight.status === 200, `${url}: ${preflight.status}`);
    assert.equal(preflight.headers['access-control-allow-origin'], APP);
  }
});
