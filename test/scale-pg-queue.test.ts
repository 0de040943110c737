// The notice queue on PostgreSQL (DATABASE_URL, hooks/pg-queue.ts): rows any instance claims with
// SELECT … FOR UPDATE SKIP LOCKED, so a notice queued by an instance that is gone is delivered by
// another. Real PostgreSQL; each test its own database.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { PgNoticeQueue } from '../hooks/pg-queue.ts';
import type { Notice } from '../hooks/notices.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { openDatabase } from '../server/backends/pg/database.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { pgDatabase, query } from './helpers/pg.ts';
import { startTestServer } from './helpers/server.ts';
import { freePort } from './helpers/ports.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, tus } from './helpers/tus.ts';

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The completion service comes back on `port` and B starts on the same store and database: B
 * delivers the queued form of `url`, the row leaves the queue, and one record stays (nothing
 * delivers it twice).
 */
async function serviceBackThenBDelivers(
  t: TestContext,
  db: string,
  storeDir: string,
  port: number,
  url: string,
  body: Buffer,
): Promise<void> {
  const service = await startCompletionServer(
    configFor({
      dataDir: tmpDir(t),
      storeDir,
      completionPort: port,
      completionSecret: 'test-secret-0123456789',
      databaseUrl: db,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const completionUrl = `http://127.0.0.1:${port}/complete/`;
  const b = await startTestServer(
    t,
    { databaseUrl: db, storeDir, completionUrl, minFreeSpace: 0, retryMinMs: 200, retryMaxMs: 500 },
    { completion: false },
  );
  const records = await until(
    () => query<{ md5: string; upload_id: string }>(db, 'SELECT md5, upload_id FROM uploads'),
    (rows) => rows.length > 0,
  );
  assert.deepEqual(
    records.map((x) => x.md5),
    [md5(body)],
  );
  assert.equal(records[0]!.upload_id, new URL(url).pathname.split('/').pop());
  assert.deepEqual(
    await until(
      () => query(db, 'SELECT id FROM notices'),
      (rows) => rows.length === 0,
    ),
    [],
    'delivered, removed',
  );
  assert.equal(await b.queue.drained(5000), true);
  // Still one record a while later.
  await new Promise((res) => setTimeout(res, 600));
  assert.equal((await query(db, 'SELECT id FROM uploads')).length, 1, 'exactly one record');
}

test('a notice queued by A while the completion service is down, A stopped, the service back: B delivers it, exactly \
one record', async (t) => {
  const db = await pgDatabase(t);
  const storeDir = tmpDir(t);
  const port = await freePort();
  const completionUrl = `http://127.0.0.1:${port}/complete/`;
  const common = { databaseUrl: db, storeDir, completionUrl, minFreeSpace: 0, retryMinMs: 200, retryMaxMs: 500 };
  const a = await startTestServer(t, common, { completion: false });
  const body = patternBytes(40_000, 5);
  const url = await create(a.endpoint, body.length, { name: 'late.bin' });
  const r = await tus('PATCH', url, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body);
  assert.ok(r.status === 200 || r.status === 204, `PATCH ${r.status}`);
  // The form could not be delivered: it is a row in PostgreSQL now, not a file in A's DATA_DIR.
  const queued = await until(
    () => query<{ id: string; kind: string }>(db, 'SELECT id, kind FROM notices'),
    (rows) => rows.length === 1,
  );
  assert.equal(queued.length, 1, 'one notice queued');
  await a.close();
  const stillThere = await query<{ id: string; attempts: number }>(db, 'SELECT id, attempts FROM notices');
  assert.deepEqual(
    stillThere.map((n) => n.id),
    [queued[0]!.id],
    'A stopped: the notice stays in the database under its id',
  );

  await serviceBackThenBDelivers(t, db, storeDir, port, url, body);
});

test('a notice queued by A (a real process) while the completion service is down, A killed with SIGKILL, the service \
back: B delivers it, exactly one record', async (t) => {
  const { spawn } = await import('node:child_process');
  const db = await pgDatabase(t);
  const storeDir = tmpDir(t);
  const port = await freePort();
  const completionUrl = `http://127.0.0.1:${port}/complete/`;
  const aPort = await freePort();
  const a = spawn(
    process.execPath,
    [
      path.resolve('bin/tuspass.js'),
      'upload-server',
      '--port',
      String(aPort),
      '--host',
      '127.0.0.1',
      '--data-dir',
      tmpDir(t),
    ],
    {
      env: {
        ...process.env,
        DATABASE_URL: db,
        STORE_DIR: storeDir,
        COMPLETION_URL: completionUrl,
        COMPLETION_SECRET: 'test-secret-0123456789',
        MIN_FREE_SPACE: '0',
        RETRY_MIN_MS: '200',
        RETRY_MAX_MS: '500',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let aOut = '';
  a.stdout.on('data', (d: Buffer) => (aOut += d));
  a.stderr.on('data', (d: Buffer) => (aOut += d));
  const exited = new Promise<NodeJS.Signals | number | null>((r) => a.on('exit', (code, signal) => r(signal ?? code)));
  t.after(async () => {
    if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
    await exited;
  });
  const aUrl = `http://127.0.0.1:${aPort}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${aUrl}/files/`, { method: 'OPTIONS' }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    assert.ok(i < 300, `A did not start: ${aOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const body = patternBytes(40_000, 7);
  const url = await create(`${aUrl}/files/`, body.length, { name: 'killed-late.bin' });
  const r = await tus('PATCH', url, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body);
  assert.ok(r.status === 200 || r.status === 204, `PATCH ${r.status}`);
  // The form could not be delivered: A queued it as a row in PostgreSQL.
  const queued = await until(
    () => query<{ id: string; kind: string }>(db, 'SELECT id, kind FROM notices'),
    (rows) => rows.length === 1,
  );
  assert.equal(queued.length, 1, `one notice queued: ${aOut}`);
  a.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const stillThere = await query<{ id: string }>(db, 'SELECT id FROM notices');
  assert.deepEqual(
    stillThere.map((n) => n.id),
    [queued[0]!.id],
    'A killed: the notice stays in the database under its id',
  );

  await serviceBackThenBDelivers(t, db, storeDir, port, url, body);
});

test('two instances claiming one queue: every notice delivered \
once, with its id; failures back off and keep the id', async (t) => {
  const db = await pgDatabase(t);
  const pools = await Promise.all([openDatabase(db), openDatabase(db)]);
  t.after(() => Promise.all(pools.map((p) => p.end())));
  const delivered = new Map<string, number>();
  const failures = new Map<string, number>();
  const seenIds = new Map<string, Set<string>>();
  const queues = pools.map((pool) => new PgNoticeQueue({ pool, minMs: 30, maxMs: 100, pollMs: 50, log: () => {} }));
  for (const q of queues) {
    q.handle('test:ok', async (n: Notice) => {
      delivered.set(n.id, (delivered.get(n.id) ?? 0) + 1);
      return { done: true };
    });
    // Fails twice, then works: the same id each time, attempts counted.
    q.handle('test:flaky', async (n: Notice) => {
      const key = (n.payload as { key: string }).key;
      (seenIds.get(key) ?? seenIds.set(key, new Set()).get(key)!).add(n.id);
      const f = failures.get(key) ?? 0;
      if (f < 2) {
        failures.set(key, f + 1);
        assert.equal(n.attempts, f);
        return { done: false, error: 'receiver down' };
      }
      return { done: true };
    });
  }
  t.after(() => Promise.all(queues.map((q) => q.close())));
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push(await queues[i % 2]!.enqueue('test:ok', { i }));
  await queues[0]!.enqueue('test:flaky', { key: 'f' }, { id: 'stable-id-1' });
  await Promise.all(queues.map((q) => q.start()));
  assert.equal(await queues[0]!.drained(20_000), true);
  assert.deepEqual([...delivered.keys()].sort(), [...ids].sort());
  assert.ok(
    [...delivered.values()].every((n) => n === 1),
    'each delivered once',
  );
  assert.deepEqual([...seenIds.get('f')!], ['stable-id-1']);
  assert.equal(failures.get('f'), 2);
  // The same id enqueued again (a completion handled again) is still one row.
  await queues[0]!.close();
  await queues[1]!.close();
  const q = new PgNoticeQueue({ pool: pools[0]!, minMs: 30, maxMs: 100, max: 2, log: () => {} });
  await q.enqueue('test:none', {}, { id: 'dup' });
  await q.enqueue('test:none', {}, { id: 'dup' });
  assert.equal((await query(db, "SELECT id FROM notices WHERE id = 'dup'")).length, 1);
  assert.equal(q.isFull(), false);
  await q.enqueue('test:none', {});
  assert.equal(q.isFull(), true, 'QUEUE_MAX counts the shared queue');
});

test('a claim held by an instance whose connection dies is released: another delivers it', async (t) => {
  const db = await pgDatabase(t);
  const [pa, pb] = await Promise.all([openDatabase(db), openDatabase(db)]);
  t.after(() => pb.end());
  let releaseA: () => void = () => {};
  const a = new PgNoticeQueue({ pool: pa, minMs: 30, maxMs: 100, pollMs: 50, concurrency: 1, log: () => {} });
  let aGot = 0;
  // A's delivery hangs (a process stuck or about to die) while it holds the row.
  a.handle('test:x', () => {
    aGot++;
    return new Promise((r) => {
      releaseA = () => r({ done: false, error: 'gone' });
    });
  });
  await a.enqueue('test:x', { n: 1 }, { id: 'held' });
  await a.start();
  await until(
    async () => aGot,
    (n) => n === 1,
  );
  const b = new PgNoticeQueue({ pool: pb, minMs: 30, maxMs: 100, pollMs: 50, log: () => {} });
  let bGot = 0;
  b.handle('test:x', async () => {
    bGot++;
    return { done: true };
  });
  await b.start();
  t.after(() => b.close());
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(bGot, 0, 'SKIP LOCKED: B does not take a row A holds');
  // A's connections end the way a killed process's do.
  await query(
    db,
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle ` +
      `in transaction'`,
  );
  await until(
    async () => bGot,
    (n) => n === 1,
  );
  assert.equal(bGot, 1);
  releaseA();
  await a.close();
  await pa.end().catch(() => {});
  // B removes the row once its delivery is counted: wait for the removal, not the moment bGot moved.
  await until(
    async () => (await query(db, 'SELECT id FROM notices')).length,
    (n) => n === 0,
  );
  assert.deepEqual(await query(db, 'SELECT id FROM notices'), []);
});

test('tuspass queue list, retry and drop with DATABASE_URL act on the shared rows', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { ADMIN_EXIT } = await import('../server/admin/output.ts');
  const db = await pgDatabase(t);
  const pool = await openDatabase(db);
  t.after(() => pool.end());
  // Not started: nothing delivers, the rows just wait an hour.
  const q = new PgNoticeQueue({ pool, minMs: 3_600_000, maxMs: 3_600_000, log: () => {} });
  await q.enqueue('complete-form', { uploadId: 'up-1', form: 'x' }, { id: 'n-1', failedWith: 'receiver down' });
  await q.enqueue('hook:h', { handler: 'h' }, { id: 'n-2', failedWith: 'hook down' });
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [path.resolve('bin/tuspass.js'), 'queue', ...args, '--data-dir', tmpDir(t)], {
      env: { ...process.env, DATABASE_URL: db },
      encoding: 'utf8',
      timeout: 30_000,
    });
  const list = run('list', '--json');
  assert.equal(list.status, ADMIN_EXIT.OK, list.stderr);
  const rows = JSON.parse(list.stdout) as Array<{
    id: string;
    uploadId?: string;
    attempts: number;
    lastError?: string;
  }>;
  assert.deepEqual(
    rows.map((r) => [r.id, r.uploadId, r.attempts, r.lastError]),
    [
      ['n-1', 'up-1', 1, 'receiver down'],
      ['n-2', undefined, 1, 'hook down'],
    ],
  );
  assert.match(run('list').stdout, /n-1\s+complete-form\s+up-1/);
  const before = (await query<{ next_at: Date }>(db, "SELECT next_at FROM notices WHERE id = 'n-1'"))[0]!.next_at;
  assert.ok(before.getTime() > Date.now() + 60_000);
  assert.equal(run('retry', 'n-1').status, ADMIN_EXIT.OK);
  const after = (await query<{ next_at: Date }>(db, "SELECT next_at FROM notices WHERE id = 'n-1'"))[0]!.next_at;
  assert.ok(after.getTime() <= Date.now() + 1000, 'due now');
  const drop = run('drop', 'n-2', '--json');
  assert.equal(drop.status, ADMIN_EXIT.OK, drop.stderr);
  assert.equal((JSON.parse(drop.stdout) as { dropped: { id: string } }).dropped.id, 'n-2');
  assert.deepEqual(
    (await query<{ id: string }>(db, 'SELECT id FROM notices')).map((r) => r.id),
    ['n-1'],
  );
  for (const id of ['nope', "n-1' OR '1'='1", '']) {
    const r = run('drop', id);
    assert.equal(r.status, ADMIN_EXIT.FAILED, `${id}: ${r.status} ${r.stderr}`);
  }
  assert.equal((await query(db, 'SELECT id FROM notices')).length, 1, 'nothing else dropped');
  assert.equal(run('frobnicate').status, ADMIN_EXIT.USAGE);
});
