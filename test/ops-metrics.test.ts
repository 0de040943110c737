// /metrics after real uploads: tusd's counters move by exactly what was done (creations, PATCH bytes,
// finishes, terminations, refusals by status and code, hooks), the tuspass_* gauges read the live
// queue and store, prom-client's process metrics are there; METRICS=false and METRICS_PORT.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patternBytes } from './helpers/files.ts';
import { gatekeeper } from './helpers/gatekeeper.ts';
import { algNone, inSeconds, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { delta, scrape, series } from './helpers/metrics.ts';
import { startTestServer } from './helpers/server.ts';
import { create, patch, tus } from './helpers/tus.ts';

test('tusd counters, hook counters and completion outcomes move by what real uploads did', async (t) => {
  const s = await startTestServer(t, {}, { hooks: [gatekeeper] });
  const metricsUrl = `${s.url}/metrics`;
  const before = (await scrape(metricsUrl)).metrics;

  // One upload in two PATCHes (600 + 400 bytes), finished: the completion form is delivered.
  const a = await create(s.endpoint, 1000, { name: 'a.bin' });
  const body = patternBytes(1000);
  assert.equal((await patch(a, 0, body.subarray(0, 600))).status, 204);
  assert.equal((await patch(a, 600, body.subarray(600))).status, 200, 'the completion service answered the last PATCH');
  // Creation-with-upload of a whole 10-byte file.
  const cwu = await tus(
    'POST',
    s.endpoint,
    {
      'Upload-Length': '10',
      'Upload-Metadata': `name ${Buffer.from('c.bin').toString('base64')}`,
      'Content-Type': 'application/offset+octet-stream',
    },
    patternBytes(10, 2),
  );
  assert.equal(cwu.status, 201);
  // Created, then terminated.
  const b = await create(s.endpoint, 50, { name: 'b.bin' });
  assert.equal((await tus('DELETE', b)).status, 204);
  // Refusals: an unknown upload, no Tus-Resumable, a wrong offset, a hook's refusal, a hook failing.
  assert.equal((await patch(`${s.endpoint}${'0'.repeat(32)}`, 0, 'x')).status, 404);
  assert.equal((await fetch(s.endpoint, { method: 'POST', headers: { 'Upload-Length': '1' } })).status, 412);
  const c = await create(s.endpoint, 5000, { name: 'c.bin' });
  assert.equal((await patch(c, 7, 'x')).status, 409);
  assert.equal(
    (
      await tus('POST', s.endpoint, {
        'Upload-Length': '5',
        'Upload-Metadata': `name ${Buffer.from('refuse').toString('base64')}`,
      })
    ).status,
    422,
  );
  assert.equal(
    (
      await tus('POST', s.endpoint, {
        'Upload-Length': '5',
        'Upload-Metadata': `name ${Buffer.from('explode').toString('base64')}`,
      })
    ).status,
    500,
  );
  // One request of another method each.
  assert.equal((await tus('HEAD', a)).status, 200);
  assert.equal((await tus('OPTIONS', s.endpoint)).status, 204);
  assert.equal((await fetch(a, { headers: { 'Tus-Resumable': '1.0.0' } })).status, 200);

  const after = await scrape(metricsUrl);
  assert.equal(after.status, 200);
  assert.match(after.type, /^text\/plain; version=0\.0\.4/);
  const m = after.metrics;
  const d = (name: string, labels?: Record<string, string>) => delta(before, m, series(name, labels));

  // POSTs: a, cwu, b, the 412, c, refuse, explode; PATCHes: 2 + the 404 + the 409.
  assert.equal(d('tusd_requests_total', { method: 'POST' }), 7);
  assert.equal(d('tusd_requests_total', { method: 'PATCH' }), 4);
  assert.equal(d('tusd_requests_total', { method: 'DELETE' }), 1);
  assert.equal(d('tusd_requests_total', { method: 'HEAD' }), 1);
  assert.equal(d('tusd_requests_total', { method: 'OPTIONS' }), 1);
  assert.equal(d('tusd_requests_total', { method: 'GET' }), 1);
  assert.equal(d('tusd_uploads_created'), 4, 'a, cwu, b, c');
  assert.equal(d('tusd_uploads_finished'), 2, 'a and cwu');
  assert.equal(d('tusd_uploads_terminated'), 1);
  assert.equal(d('tusd_bytes_received'), 1010, '600 + 400 + 10, nothing of the refused PATCHes');

  assert.equal(d('tusd_errors_total', { status: '404', code: 'ERR_UPLOAD_NOT_FOUND' }), 1);
  assert.equal(d('tusd_errors_total', { status: '412', code: 'ERR_UNSUPPORTED_VERSION' }), 1);
  assert.equal(d('tusd_errors_total', { status: '409', code: 'ERR_OFFSET_MISMATCH' }), 1);
  assert.equal(d('tusd_errors_total', { status: '422', code: 'ERR_UPLOAD_REJECTED' }), 1);
  assert.equal(d('tusd_errors_total', { status: '500', code: 'ERR_HOOK_FAILED' }), 1);
  const errors = [...m]
    .filter(([k]) => k.startsWith('tusd_errors_total{'))
    .reduce((n, [k, v]) => n + v - (before.get(k) ?? 0), 0);
  assert.equal(errors, 5, 'no other error counted');

  // Every creation that reached naming ran the pre-create hook; the built-in complete-form ran on pre-finish.
  assert.equal(d('tusd_hook_invocations_total', { hooktype: 'pre-create' }), 6, 'a, cwu, b, c, refuse, explode');
  assert.equal(
    d('tusd_hook_errors_total', { hooktype: 'pre-create' }),
    1,
    'only the one that threw; a refusal is an answer',
  );
  assert.equal(d('tusd_hook_invocations_total', { hooktype: 'pre-finish' }), 2);
  assert.equal(d('tusd_hook_errors_total', { hooktype: 'pre-finish' }), 0);
  assert.equal(d('tuspass_completion_notices_total', { outcome: 'delivered' }), 2);
  assert.equal(d('tuspass_completion_notices_total', { outcome: 'queued' }), 0);
  assert.equal(d('tuspass_finish_duration_seconds_count'), 2);

  // Gauges read at the scrape: this connection is open, c is owed 4999 more bytes, the queue is empty.
  assert.ok(m.get('tusd_connections_open')! >= 1);
  assert.ok(m.get('tuspass_store_owed_bytes')! >= 4999, `owed ${m.get('tuspass_store_owed_bytes')}`);
  assert.ok(m.get('tuspass_store_free_bytes')! > 0);
  assert.equal(m.get('tuspass_queue_depth'), 0);
  assert.equal(m.get('tuspass_queue_oldest_age_seconds'), 0);
  for (const name of [
    'tuspass_hash_ring_waits_total',
    'tuspass_uploads_expired_total',
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(m.has(name), `${name} is exposed`);
  }
  // No series carries an upload id, a path or a token.
  assert.doesNotMatch(after.text, new RegExp(new URL(a).pathname.split('/').pop()!));
  assert.doesNotMatch(after.text, new RegExp(s.config.storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test('a form queued for a receiver that is down: the queued outcome, queue depth and oldest age', async (t) => {
  const s = await startTestServer(
    t,
    { completionUrl: 'http://127.0.0.1:9/complete/', retryMinMs: 60_000, retryMaxMs: 60_000 },
    {},
  );
  const before = (await scrape(`${s.url}/metrics`)).metrics;
  const a = await create(s.endpoint, 3);
  const answer = await patch(a, 0, 'abc');
  assert.equal(answer.status, 204);
  assert.equal(answer.headers['tuspass-completion'], 'pending');
  await new Promise((r) => setTimeout(r, 1100));
  const m = (await scrape(`${s.url}/metrics`)).metrics;
  assert.equal(delta(before, m, series('tuspass_completion_notices_total', { outcome: 'queued' })), 1);
  assert.equal(m.get('tuspass_queue_depth'), 1);
  assert.ok(m.get('tuspass_queue_oldest_age_seconds')! >= 1, `oldest ${m.get('tuspass_queue_oldest_age_seconds')}`);
});

test('one spelling, GET only: /metrics/, /METRICS and other methods are not the metrics', async (t) => {
  const s = await startTestServer(t);
  for (const p of ['/metrics/', '/METRICS', '/metrics.txt', '/metrics%2F'])
    assert.equal((await fetch(`${s.url}${p}`)).status, 404, p);
  for (const method of ['POST', 'PUT', 'DELETE'])
    assert.notEqual((await fetch(`${s.url}/metrics`, { method })).status, 200, method);
  assert.equal((await fetch(`${s.url}/metrics`, { method: 'HEAD' })).status, 200);
});

test('METRICS=false: no /metrics', async (t) => {
  const s = await startTestServer(t, { metrics: false });
  assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200, 'health stays');
});

test('METRICS_PORT: /metrics, /healthz and /readyz on their \
own loopback listener, /metrics gone from PORT', async (t) => {
  const s = await startTestServer(t, { metricsPort: 0 });
  assert.ok(s.metricsUrl, 'the listener is up');
  assert.match(s.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
  const scraped = await scrape(`${s.metricsUrl}/metrics`);
  assert.equal(scraped.status, 200);
  assert.ok(scraped.metrics.has(series('tusd_requests_total', { method: 'PATCH' })));
  assert.equal((await fetch(`${s.metricsUrl}/healthz`)).status, 200);
  assert.equal((await fetch(`${s.metricsUrl}/readyz`)).status, 200);
  // Nothing else there: no tus, no page, no API.
  for (const p of ['/files/', '/', '/api/uploads']) assert.equal((await fetch(`${s.metricsUrl}${p}`)).status, 404, p);
  await s.close();
  await assert.rejects(fetch(`${s.metricsUrl}/metrics`), 'closed with the server');
});

test('authentication on: /metrics on the main port needs an admin \
token; health needs none; METRICS_PORT needs none', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const get = (token?: string) =>
    fetch(`${s.url}/metrics`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const none = await get();
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'ERR_AUTH_REQUIRED');
  const upload = await get(tokenFor('alice', 'upload read'));
  assert.equal(upload.status, 403);
  assert.match(upload.headers.get('www-authenticate') ?? '', /insufficient_scope/);
  assert.equal((await get(tokenFor('root', 'admin', { exp: inSeconds(-120) }))).status, 401, 'expired');
  assert.equal(
    (await get(tokenFor('root', 'admin', {}, 'another-secret-0123456789abcdef-0123456789'))).status,
    401,
    'signed with another key',
  );
  assert.equal((await get(algNone({ sub: 'root', scope: 'admin', exp: inSeconds(3600) }))).status, 401, 'alg none');
  const admin = await get(tokenFor('root', 'admin'));
  assert.equal(admin.status, 200);
  assert.match(await admin.text(), /^# HELP /m);
  for (const p of ['/healthz', '/readyz'])
    assert.equal((await fetch(`${s.url}${p}`)).status, 200, `${p} without a token`);

  const own = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, metricsPort: 0 });
  assert.equal(
    (await fetch(`${own.url}/metrics`, { headers: { Authorization: `Bearer ${tokenFor('root', 'admin')}` } })).status,
    404,
    'not on PORT',
  );
  assert.equal((await fetch(`${own.metricsUrl}/metrics`)).status, 200, 'on METRICS_PORT without a token');
});
