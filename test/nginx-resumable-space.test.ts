// A resumable session on a small disk (a tmpfs the test mounts): its first segment reserves the whole
// file, as a tus creation's Upload-Length does, and its segments write within that reservation. A
// session whose file does not fit is refused 507 with nothing kept, before a restart and after it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { storeFiles } from './helpers/multipart.ts';
import { sendSegment } from './helpers/resumable.ts';
import { startTestServer } from './helpers/server.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';

const MiB = 2 ** 20;

test('a session reserves its file at its first segment, its segments are not counted again; a session that does not \
fit is 507, nothing kept, after a restart too', async (t) => {
  const dir = mountTmpfs(t, 32 * MiB);
  if (!dir) return;
  const dataDir = path.join(dir, 'data');
  const first = await startTestServer(t, { dataDir, minFreeSpace: MiB, ownerMaxOwed: { bytes: 0 } });
  const storeDir = first.config.storeDir;
  const s = fs.statfsSync(storeDir);
  const room = s.bavail * s.bsize - MiB;
  // A: 70% of the room, sent from its end (40% of the room, in place: a full-length file with a hole).
  const a = patternBytes(Math.floor(room * 0.7), 31);
  const tail = Math.floor(room * 0.4);
  const r = await sendSegment(first.url, 'space-a', [a.length - tail, a.length - 1], { bytes: a });
  assert.equal(r.status, 201, `the session fits, its segment is within it: ${r.body}`);
  // B: 45% of the room; A is still owed 30% and 40% is used.
  const b = patternBytes(Math.floor(room * 0.45), 32);
  const refuse = async (url: string) => {
    const before = storeFiles(storeDir).sort();
    const refused = await sendSegment(url, 'space-b', [0, 99], { bytes: b });
    assert.equal(refused.status, 507, refused.body);
    assert.match(refused.body, /ERR_STORAGE_FULL/);
    assert.deepEqual(storeFiles(storeDir).sort(), before, 'nothing kept: no file, no session state');
  };
  await refuse(first.url);
  await first.close();

  // After a restart A is owed what it has not received, not judged by its file's full length.
  const second = await startTestServer(t, { dataDir, minFreeSpace: MiB, ownerMaxOwed: { bytes: 0 } });
  await refuse(second.url);
  const done = await sendSegment(second.url, 'space-a', [0, a.length - tail - 1], { bytes: a });
  assert.equal(done.status, 200, done.body);
  assert.equal(JSON.parse(done.body).md5, md5(a));
  assert.equal(second.store.space.owed, 0);
});
