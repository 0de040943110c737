// Resumable sessions outlive a restart, as the nginx upload module's state files do: the state sits
// beside the upload (`<id>.session`), is loaded at start, and goes when the session completes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { storeFiles } from './helpers/multipart.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const SIZE = 300_000;
const bytes = patternBytes(SIZE, 11);

async function segment(url: string, session: string, a: number, b: number, extra: Record<string, string> = {}) {
  const r = await fetch(`${url}/upload`, {
    method: 'POST',
    headers: {
      'Content-Type': 'text/plain',
      'Content-Disposition': 'attachment; filename="kept.txt"',
      'X-Content-Range': `bytes ${a}-${b}/${SIZE}`,
      'Session-ID': session,
      ...extra,
    },
    body: new Uint8Array(bytes.subarray(a, b + 1)),
  });
  return { status: r.status, body: await r.text() };
}

const sessionFiles = (dir: string) => storeFiles(dir).filter((n) => n.endsWith('.session'));

async function records(url: string, headers: Record<string, string> = {}): Promise<Array<Record<string, unknown>>> {
  return (await (await fetch(`${url}/api/uploads`, { headers })).json()) as Array<Record<string, unknown>>;
}

test('segments, a restart, the rest of the segments: the right md5 and one record; the state file is private and goes \
at the end', async (t) => {
  const dataDir = tmpDir(t);
  const first = await startTestServer(t, { dataDir });
  // Out of order: the file reaches its full length with a hole at the front before the restart.
  assert.equal((await segment(first.url, 'restart-1', 200_000, SIZE - 1)).status, 201);
  assert.equal((await segment(first.url, 'restart-1', 100_000, 199_999)).body.trim(), '100000-299999/300000');
  // A second session whose upload is removed while the server is down: dropped at start.
  assert.equal((await segment(first.url, 'restart-2', 0, 999)).status, 201);
  const [state, other] = sessionFiles(first.config.storeDir)
    .map((n) => path.join(first.config.storeDir, n))
    .sort((x, y) =>
      JSON.parse(fs.readFileSync(x, 'utf8')).sessionId.localeCompare(JSON.parse(fs.readFileSync(y, 'utf8')).sessionId),
    );
  assert.ok(state && other, 'one state per session');
  assert.equal(fs.statSync(state).mode & 0o777, 0o600);
  const saved = JSON.parse(fs.readFileSync(state, 'utf8'));
  assert.deepEqual(
    [saved.sessionId, saved.total, saved.ranges, saved.name, saved.contentType, saved.owner],
    ['restart-1', SIZE, [[100_000, 299_999]], 'kept.txt', 'text/plain', ''],
  );
  await first.close();
  const goneId = JSON.parse(fs.readFileSync(other, 'utf8')).uploadId as string;
  fs.rmSync(path.join(first.config.storeDir, goneId));
  fs.rmSync(path.join(first.config.storeDir, `${goneId}.json`));

  const second = await startTestServer(t, { dataDir });
  assert.ok(!fs.existsSync(other), 'the state of a session whose upload is gone is dropped');
  // The full-length file with its hole is not taken for a finished upload.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await records(second.url)).length, 0, 'nothing announced before the front arrives');
  // The ranges received before the restart are known: a repeat answers them.
  assert.equal((await segment(second.url, 'restart-1', 100_000, 199_999)).body.trim(), '100000-299999/300000');
  const done = await segment(second.url, 'restart-1', 0, 99_999);
  assert.equal(done.status, 200, done.body);
  const answer = JSON.parse(done.body);
  assert.equal(answer.message, 'Upload Complete');
  assert.equal(answer.md5, md5(bytes));
  assert.equal(answer.size, SIZE);
  await new Promise((r) => setTimeout(r, 300));
  const list = await records(second.url);
  assert.equal(list.length, 1, 'one record');
  assert.equal(list[0]!.md5, md5(bytes));
  assert.deepEqual(sessionFiles(second.config.storeDir), [], 'the state goes when the session completes');
  // The restored session is over: the same Session-ID starts a new one.
  assert.equal((await segment(second.url, 'restart-1', 0, 99)).body.trim(), '0-99/300000');
});

test('a restored session keeps its owner: another caller with \
the same Session-ID has a session of their own', async (t) => {
  const dataDir = tmpDir(t);
  const ann = bearer(tokenFor('ann', 'upload'));
  const bob = bearer(tokenFor('bob', 'upload'));
  const first = await startTestServer(t, { dataDir, authJwtSecret: TEST_JWT_SECRET });
  assert.equal((await segment(first.url, 'shared', 0, 149_999, ann)).status, 201);
  await first.close();
  const second = await startTestServer(t, { dataDir, authJwtSecret: TEST_JWT_SECRET });
  assert.equal(
    (await segment(second.url, 'shared', 150_000, SIZE - 1, bob)).body.trim(),
    '150000-299999/300000',
    "bob does not finish ann's file",
  );
  const done = await segment(second.url, 'shared', 150_000, SIZE - 1, ann);
  assert.equal(done.status, 200, done.body);
  assert.equal(JSON.parse(done.body).md5, md5(bytes));
  const list = await records(second.url, bearer(tokenFor('ann', 'read')));
  assert.equal(list.length, 1);
  assert.equal(list[0]!.owner, 'ann');
});

test('after a restart, the full-length file of an unfinished session is not announced, with its state or without one; \
what it has not received is still owed', async (t) => {
  const dataDir = tmpDir(t);
  const first = await startTestServer(t, { dataDir });
  const dir = first.config.storeDir;
  // Only the last segment of each: the files are full length, with holes before.
  assert.equal((await segment(first.url, 'sparse-1', 200_000, SIZE - 1)).status, 201);
  assert.equal((await segment(first.url, 'sparse-2', 200_000, SIZE - 1)).status, 201);
  const uploads = storeFiles(dir).filter((n) => !n.includes('.'));
  assert.equal(uploads.length, 2);
  for (const id of uploads) assert.equal(fs.statSync(path.join(dir, id)).size, SIZE);
  // sparse-2's state is lost (a session without a state cannot be told finished).
  const lost = sessionFiles(dir).find(
    (n) => JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')).sessionId === 'sparse-2',
  )!;
  fs.rmSync(path.join(dir, lost));
  await first.close();

  const second = await startTestServer(t, { dataDir });
  assert.equal(
    second.store.space.owed,
    SIZE - 100_000 + SIZE,
    'sparse-1 is owed what it has not received, sparse-2 all of it',
  );
  const done = await segment(second.url, 'sparse-1', 0, 199_999);
  assert.equal(done.status, 200, done.body);
  assert.equal(JSON.parse(done.body).md5, md5(bytes));
  const list = await records(second.url);
  assert.deepEqual(
    list.map((r) => r.md5),
    [md5(bytes)],
    'one record: the session that finished',
  );
  assert.equal(second.store.space.owed, SIZE, 'sparse-2 is still owed');
  assert.equal(storeFiles(dir).filter((n) => !n.includes('.')).length, 2, 'sparse-2 is kept, for its expiry');
});

test("a session counts against its owner's limits (OWNER_MAX_OPEN, OWNER_MAX_OWED) as any upload does, by what it has \
not received, after a restart too", async (t) => {
  const dataDir = tmpDir(t);
  const limits = { dataDir, ownerMaxOwed: { bytes: 1_000_000 }, ownerMaxOpen: 2 };
  const total = (n: number) => ({ 'X-Content-Range': `bytes 0-99/${n}` });
  const first = await startTestServer(t, limits);
  // A: 900000 bytes, only its last 100000 sent: full length on disk, 800000 still to come.
  const a = await fetch(`${first.url}/upload`, {
    method: 'POST',
    headers: {
      'Content-Disposition': 'attachment; filename="a.bin"',
      'X-Content-Range': 'bytes 800000-899999/900000',
      'Session-ID': 'owed-a',
    },
    body: new Uint8Array(100_000),
  });
  assert.equal(a.status, 201);
  assert.equal(
    (await segment(first.url, 'owed-b', 0, 99, total(300_000))).status,
    429,
    'B would take the owner past 1000000 bytes to come',
  );
  await first.close();

  const second = await startTestServer(t, limits);
  const refused = await segment(second.url, 'owed-b', 0, 99, total(300_000));
  assert.equal(refused.status, 429, refused.body);
  assert.match(refused.body, /ERR_OWNER_SPACE_LIMIT/);
  assert.equal((await segment(second.url, 'owed-c', 0, 99, total(150_000))).status, 201, '800000 + 150000 fit');
  const third = await segment(second.url, 'owed-d', 0, 99, total(1000));
  assert.equal(third.status, 429, 'two sessions open: OWNER_MAX_OPEN');
  assert.match(third.body, /ERR_OWNER_UPLOADS_LIMIT/);
  assert.deepEqual(sessionFiles(second.config.storeDir).length, 2, 'the refused sessions left no state');
});
