// The completion journal on PostgreSQL (DATABASE_URL, server/backends/journal/pg-journal.ts): which finished
// uploads were announced, shared by the instances on one store. Real PostgreSQL, a database per test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDatabase } from '../server/backends/pg/database.ts';
import { PgCompletionJournal } from '../server/backends/journal/pg-journal.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { pgDatabase, query } from './helpers/pg.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, tus } from './helpers/tus.ts';

test('an upload announced by A is not announced again by B \
starting on the same store; one missing from the journal is', async (t) => {
  const db = await pgDatabase(t);
  const storeDir = tmpDir(t);
  const a = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0 });
  const body = patternBytes(30_000, 7);
  const url = await create(a.endpoint, body.length, { name: 'j.bin' });
  const r = await tus('PATCH', url, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body);
  assert.ok(r.status === 200 || r.status === 204, `PATCH ${r.status}`);
  const id = new URL(url).pathname.split('/').pop()!;
  assert.equal((await recordsWhenPresent(a.url, 1)).length, 1);
  assert.deepEqual(
    (await query<{ upload_id: string }>(db, 'SELECT upload_id FROM completions_handled')).map((x) => x.upload_id),
    [id],
  );

  // B has its own DATA_DIR (a file journal there would be empty): the shared journal says it was announced.
  const b = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0 });
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(
    b.logs.some((l) => l.includes(`upload ${id} finished before the last stop`)),
    false,
    b.logs.join('\n'),
  );
  assert.deepEqual(await query(db, 'SELECT id FROM notices'), []);

  // Forgotten by the journal (the instance died between the form and the journal): the next start announces it.
  await query(db, 'DELETE FROM completions_handled');
  await query(db, 'DELETE FROM uploads');
  const c = await startTestServer(t, { databaseUrl: db, storeDir, minFreeSpace: 0 });
  const list = await recordsWhenPresent(c.url, 1);
  assert.deepEqual(
    list.map((x) => x.md5),
    [md5(body)],
  );
  assert.ok(
    c.logs.some((l) => l.includes(`upload ${id} finished before the last stop`)),
    c.logs.join('\n'),
  );
  const until = Date.now() + 5000;
  while ((await query(db, 'SELECT 1 FROM completions_handled')).length === 0 && Date.now() < until)
    await new Promise((res) => setTimeout(res, 50));
  assert.equal((await query(db, 'SELECT 1 FROM completions_handled')).length, 1);
});

test('compact forgets uploads no longer stored, but not rows \
written after the listing (another instance)', async (t) => {
  const db = await pgDatabase(t);
  const pool = await openDatabase(db);
  t.after(() => pool.end());
  const j = new PgCompletionJournal(pool);
  await j.handled('kept');
  await j.handled('gone');
  await j.handled('gone'); // twice: one row
  assert.deepEqual([...(await j.ids())].sort(), ['gone', 'kept']);
  await new Promise((res) => setTimeout(res, 20));
  await new PgCompletionJournal(pool).handled('meanwhile');
  await j.compact(new Set(['kept']));
  assert.deepEqual(
    (await query<{ upload_id: string }>(db, 'SELECT upload_id FROM completions_handled ORDER BY 1')).map(
      (x) => x.upload_id,
    ),
    ['kept', 'meanwhile'],
  );
  // Ids of any shape are data, never SQL.
  await j.handled("x'); DROP TABLE completions_handled; --");
  assert.ok((await j.ids()).has("x'); DROP TABLE completions_handled; --"));
});
