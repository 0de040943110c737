// PostgreSQL (DATABASE_URL) holding what several instances share: the catalog, the notice queue and
// the completion journal. Real PostgreSQL on 127.0.0.1:5432 (.ci/run starts it); each test has its
// own database, dropped after.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { pgDatabase, query } from './helpers/pg.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, tus } from './helpers/tus.ts';

const BIN = path.resolve('bin/tuspass.js');

async function upload(endpoint: string, body: Buffer, name: string): Promise<string> {
  const url = await create(endpoint, body.length, { filename: name, name });
  const r = await tus('PATCH', url, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body);
  assert.ok(r.status === 200 || r.status === 204, `PATCH ${r.status}`);
  return url;
}

test('with DATABASE_URL, tuspass start records completed uploads in PostgreSQL; another instance on the same database \
lists them', async (t) => {
  const db = await pgDatabase(t);
  const storeDir = tmpDir(t);
  const a = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0 });
  const body = patternBytes(70_000, 3);
  await upload(a.endpoint, body, 'one.bin');
  const list = await recordsWhenPresent(a.url, 1);
  assert.equal(list.length, 1);
  assert.equal(list[0]!.md5, md5(body));
  const inDb = await query<{ md5: string; size: string }>(db, 'SELECT md5, size FROM uploads');
  assert.deepEqual(inDb, [{ md5: md5(body), size: '70000' }]);
  // A second instance with its own DATA_DIR (its own SQLite would be empty) sees the same catalog.
  const b = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0 });
  const seen = await recordsWhenPresent(b.url, 1);
  assert.deepEqual(
    seen.map((r) => r.md5),
    [md5(body)],
  );
});

test('tuspass completion-server with DATABASE_URL keeps its catalog in PostgreSQL', async (t) => {
  const db = await pgDatabase(t);
  const storeDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({
      dataDir: tmpDir(t),
      storeDir,
      completionPort: 0,
      completionSecret: 'test-secret-0123456789',
      databaseUrl: db,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const up = await startTestServer(
    t,
    { completionUrl: `${service.url}/complete/`, storeDir, minFreeSpace: 0 },
    { completion: false },
  );
  const body = patternBytes(5000, 9);
  await upload(up.endpoint, body, 'two.bin');
  const until = Date.now() + 5000;
  let found: Array<{ md5: string }> = [];
  while (Date.now() < until && found.length === 0) {
    found = await query<{ md5: string }>(db, 'SELECT md5 FROM uploads');
    if (!found.length) await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(found, [{ md5: md5(body) }]);
});

test('a DATABASE_URL that is not a postgres URL: exit 78 at once; one that cannot be reached: exit 69 once \
STARTUP_TIMEOUT has passed; naming DATABASE_URL, no password, no stack', (t) => {
  const dataDir = tmpDir(t);
  for (const [command, url, code] of [
    ['start', 'postgres://postgres:hunter22@127.0.0.1:1/test', 69],
    ['completion-server', 'postgres://postgres:hunter22@127.0.0.1:1/test', 69],
    ['start', 'mysql://127.0.0.1/test', 78],
  ] as const) {
    const r = spawnSync(
      process.execPath,
      [BIN, command, '--port', '0', '--completion-port', '0', '--data-dir', dataDir],
      {
        env: { ...process.env, DATABASE_URL: url, STARTUP_TIMEOUT: '0' },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, code, `${command} ${url}: ${r.stderr}`);
    assert.match(r.stderr, /DATABASE_URL/);
    assert.doesNotMatch(r.stderr, /hunter22/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('PostgreSQL unreachable mid-run: the last PATCH succeeds with its form pending in the spool (the catalog answered \
503, never a cleanup status), recorded once when the database is back', async (t) => {
  const db = await pgDatabase(t);
  const name = new URL(db).pathname.slice(1);
  const admin = new URL(db);
  admin.pathname = '/postgres';
  const block = async (allow: boolean) => {
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    try {
      await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${allow}`);
      // A connection that passed its check before the ALTER committed may still be starting: ended too.
      if (!allow) {
        while (
          (await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name])).rowCount
        )
          await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await c.end();
    }
  };
  t.after(() => block(true).catch(() => {}));
  const storeDir = tmpDir(t);
  const s = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0, retryMinMs: 100, retryMaxMs: 300 });
  await block(false);
  const body = patternBytes(50_000, 11);
  const url = await create(s.endpoint, body.length, { filename: 'outage.bin', name: 'outage.bin' });
  // The last PATCH's bytes are stored: it succeeds, its form waiting on this instance's disk.
  const last = await tus(
    'PATCH',
    url,
    { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body,
  );
  assert.equal(last.status, 204, `${last.status} ${last.headers['tuspass-completion']} ${last.body}`);
  assert.equal(last.headers['tuspass-completion'], 'pending');
  assert.equal(
    fs.readdirSync(path.join(s.config.dataDir, 'spool')).filter((f) => f.endsWith('.json')).length,
    1,
    'the form spooled',
  );
  const id = new URL(url).pathname.split('/').pop()!;
  const list = await fetch(`${s.url}/api/uploads`);
  assert.equal(list.status, 503, 'the catalog answers 503 while the database is away');
  assert.equal(((await list.json()) as { error: { code: string } }).error.code, 'ERR_CATALOG_UNAVAILABLE');
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], String(body.length), 'the upload is still there');
  assert.ok(
    s.logs.some((l) => l.includes(id) && l.includes('spool')),
    'its spooled form is logged',
  );
  await block(true);
  const records = await recordsWhenPresent(s.url, 1, 10_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(body)],
  );
  await new Promise((r) => setTimeout(r, 600));
  assert.equal((await query(db, 'SELECT id FROM uploads')).length, 1);
});
