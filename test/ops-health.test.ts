// /healthz and /readyz: alive vs ready, each check named; 503 naming the failed check for a store
// remounted read-only, for the queue at QUEUE_MAX, for a closed catalog, and while shutting down.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { openCatalog } from '../server/backends/catalog/sqlite-catalog.ts';
import { configFor } from '../server/config/config.ts';
import { readiness } from '../server/ops/readiness.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';
import { create, patch, tus } from './helpers/tus.ts';

interface Ready {
  ready: boolean;
  checks: Record<string, { ok: boolean; reason?: string }>;
  failed: string[];
}

async function readyz(base: string): Promise<{ status: number; body: Ready }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: (await res.json()) as Ready };
}

/** /readyz keeps a result for a second: polls until `want` holds. */
async function readyzUntil(
  base: string,
  want: (r: { status: number; body: Ready }) => boolean,
): Promise<{ status: number; body: Ready }> {
  const until = Date.now() + 5000;
  for (;;) {
    const r = await readyz(base);
    if (want(r) || Date.now() > until) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

test('a fresh server: /healthz and /health alive, /readyz 200 naming store, space, catalog and queue', async (t) => {
  const s = await startTestServer(t, { minFreeSpace: 0 });
  for (const p of ['/healthz', '/health']) {
    const res = await fetch(`${s.url}${p}`);
    assert.equal(res.status, 200, p);
    assert.deepEqual(await res.json(), { ok: true });
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }
  const r = await readyz(s.url);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {
    ready: true,
    checks: { store: { ok: true }, space: { ok: true }, catalog: { ok: true }, queue: { ok: true } },
    failed: [],
  });
  assert.deepEqual(
    fs.readdirSync(s.config.storeDir).filter((n) => n.startsWith('.ready-probe')),
    [],
    'no probe file left',
  );
});

test('a store remounted read-only: /readyz 503 naming the \
store; /healthz still 200; writable again: 200', async (t) => {
  const mount = mountTmpfs(t, 8 * 1024 * 1024);
  if (!mount) return;
  const s = await startTestServer(t, { storeDir: path.join(mount, 'uploads'), minFreeSpace: 0 });
  assert.equal((await readyz(s.url)).status, 200);
  execFileSync('mount', ['-o', 'remount,ro', mount]);
  const r = await readyzUntil(s.url, (x) => x.status === 503);
  assert.equal(r.status, 503);
  assert.equal(r.body.ready, false);
  assert.deepEqual(r.body.failed, ['store']);
  assert.match(r.body.checks.store!.reason!, /STORE_DIR.*not writable \(EROFS\)/);
  assert.doesNotMatch(JSON.stringify(r.body), new RegExp(mount), 'no path in the answer');
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200, 'alive all the same');
  execFileSync('mount', ['-o', 'remount,rw', mount]);
  assert.equal((await readyzUntil(s.url, (x) => x.status === 200)).status, 200);
});

test('free space at or below MIN_FREE_SPACE: /readyz 503 naming space', async (t) => {
  const mount = mountTmpfs(t, 4 * 1024 * 1024);
  if (!mount) return;
  // The whole tmpfs is less than the reserve asked for.
  const s = await startTestServer(t, { storeDir: path.join(mount, 'uploads'), minFreeSpace: 8 * 1024 * 1024 });
  const r = await readyz(s.url);
  assert.equal(r.status, 503);
  assert.deepEqual(r.body.failed, ['space']);
  assert.match(r.body.checks.space!.reason!, /MIN_FREE_SPACE/);
});

test('/readyz counts what unfinished uploads are owed, as admission does: not ready exactly when a creation would get \
507', async (t) => {
  const MiB = 2 ** 20;
  const mount = mountTmpfs(t, 64 * MiB);
  if (!mount) return;
  const s = await startTestServer(t, {
    storeDir: path.join(mount, 'uploads'),
    minFreeSpace: 8 * MiB,
    ownerMaxOwed: { share: 1 },
  });
  assert.equal((await readyz(s.url)).status, 200);
  const owed = await create(s.endpoint, 40 * MiB);
  // Written by someone else: the disk still has more than MIN_FREE_SPACE free, but not what the upload is owed.
  fs.writeFileSync(path.join(mount, 'other.bin'), Buffer.alloc(20 * MiB));
  const r = await readyzUntil(s.url, (x) => x.status === 503);
  assert.equal(r.status, 503, JSON.stringify(r.body));
  assert.deepEqual(r.body.failed, ['space']);
  assert.match(r.body.checks.space!.reason!, /owed.*MIN_FREE_SPACE/);
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '1' })).status, 507, 'admission agrees');
  // The owed upload removed: ready, and admitted, again.
  assert.equal((await tus('DELETE', owed)).status, 204);
  assert.equal((await readyzUntil(s.url, (x) => x.status === 200)).status, 200);
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '1' })).status, 201, 'admission agrees');
});

test('the queue at QUEUE_MAX: /readyz 503 naming the queue', async (t) => {
  // Forms go to a port nobody listens on: each finished upload leaves one queued notice.
  const s = await startTestServer(t, {
    queueMax: 2,
    minFreeSpace: 0,
    completionUrl: 'http://127.0.0.1:9/complete/',
    retryMinMs: 60_000,
    retryMaxMs: 60_000,
  });
  for (let i = 0; i < 2; i++) {
    const u = await create(s.endpoint, 1);
    assert.equal((await patch(u, 0, 'x')).status, 204);
  }
  const r = await readyzUntil(s.url, (x) => x.status === 503 && x.body.failed.includes('queue'));
  assert.equal(r.status, 503);
  // The receiver that fills the queue is named too: the completion service apart does not answer.
  assert.deepEqual(r.body.failed, ['completion', 'queue']);
  assert.match(r.body.checks.queue!.reason!, /QUEUE_MAX/);
  assert.equal(r.body.checks.store!.ok, true);
});

test('readiness: a catalog that no longer answers, and a stopping process, are named', async (t) => {
  const catalog = openCatalog(path.join(tmpDir(t), 'catalog.sqlite'));
  let stopping = false;
  const ready = readiness({ catalog, stopping: () => stopping });
  assert.deepEqual(await ready(), { ready: true, checks: { catalog: { ok: true } }, failed: [] });
  await catalog.close();
  // Kept for a second, then asked again.
  await new Promise((r) => setTimeout(r, 1050));
  const closed = await ready();
  assert.deepEqual(closed.failed, ['catalog']);
  assert.match(closed.checks.catalog!.reason!, /CATALOG_PATH/);
  // Stopping is known at once, without waiting out the kept result.
  stopping = true;
  const r = await ready();
  assert.equal(r.ready, false);
  assert.ok(r.failed.includes('shutdown'));
});

test('completion-server: /healthz, /readyz checking its catalog, and its own 404 kept', async (t) => {
  const dir = tmpDir(t);
  const c = await startCompletionServer(
    configFor({ dataDir: dir, completionPort: 0, completionSecret: 'test-secret-0123456789' }),
    { log: () => {} },
  );
  t.after(() => c.close().catch(() => {}));
  assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
  const r = await readyz(c.url);
  assert.deepEqual(r, { status: 200, body: { ready: true, checks: { catalog: { ok: true } }, failed: [] } });
  assert.equal((await fetch(`${c.url}/nothing-here`)).status, 404, 'the service keeps its own 404');
});

test('upload-server with REDIS_URL, DATABASE_URL and a completion service apart: /readyz names each engine; the \
service away: 503 naming completion, back: 200', async (t) => {
  const { pgDatabase } = await import('./helpers/pg.ts');
  const { freePort } = await import('./helpers/ports.ts');
  const port = await freePort();
  const storeDir = tmpDir(t);
  const s = await startTestServer(
    t,
    {
      storeDir,
      minFreeSpace: 0,
      redisUrl: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      databaseUrl: await pgDatabase(t),
      completionUrl: `http://127.0.0.1:${port}/complete/`,
    },
    { completion: false, redisPrefix: `tuspass-ready-${process.pid}:` },
  );
  const away = await readyz(s.url);
  assert.equal(away.status, 503);
  assert.deepEqual(Object.keys(away.body.checks).sort(), [
    'completion',
    'postgres',
    'queue',
    'redis',
    'space',
    'store',
  ]);
  assert.deepEqual(away.body.failed, ['completion']);
  assert.match(away.body.checks.completion!.reason!, /COMPLETION_URL.*ECONNREFUSED/);
  const service = await startCompletionServer(
    configFor({ dataDir: tmpDir(t), storeDir, completionPort: port, completionSecret: 'test-secret-0123456789' }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const back = await readyzUntil(s.url, (r) => r.status === 200);
  assert.deepEqual(back.body.failed, []);
  assert.equal(back.body.checks.redis!.ok && back.body.checks.postgres!.ok && back.body.checks.completion!.ok, true);
});
