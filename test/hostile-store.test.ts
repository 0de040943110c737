// Hostile requests against the store: a final concatenation racing a DELETE of its partials,
// amplification through Upload-Concat lists, leftovers of a crash, and free-space admission.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';

async function partial(s: TestServer, bytes: Buffer): Promise<string> {
  const res = await tus('POST', s.endpoint, { 'Upload-Length': String(bytes.length), 'Upload-Concat': 'partial' });
  assert.equal(res.status, 201, res.body);
  const url = new URL(res.headers.location!, s.endpoint).toString();
  assert.equal((await patch(url, 0, bytes)).status, 204);
  return url;
}

const final = (s: TestServer, urls: string[]) =>
  tus('POST', s.endpoint, { 'Upload-Concat': `final;${urls.join(' ')}` });
const idOf = (url: string) => url.split('/').pop()!;
/** The uploads in the store (ids of their .json info files). */
const storedIds = (s: TestServer) =>
  fs
    .readdirSync(s.config.storeDir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -5))
    .sort();

test('a final concatenation racing a DELETE of a partial \
never crashes; answers are clean; nothing corrupt', async (t) => {
  const s = await startTestServer(t, { minFreeSpace: 0 });
  const a = patternBytes(300_000, 1);
  const b = patternBytes(200_000, 2);
  const outcomes = new Map<string, number>();
  for (let round = 0; round < 40; round++) {
    const [ua, ub] = [await partial(s, a), await partial(s, b)];
    const victim = round % 2 ? ua : ub;
    // The DELETE is sent a little later every round, so it lands at different moments of the build.
    const [fin, del] = await Promise.all([
      final(s, [ua, ub]),
      new Promise((r) => setTimeout(r, round % 5)).then(() => tus('DELETE', victim)),
    ]);
    outcomes.set(`${fin.status}/${del.status}`, (outcomes.get(`${fin.status}/${del.status}`) ?? 0) + 1);
    assert.ok([201, 404].includes(fin.status), `final answered ${fin.status}: ${fin.body}`);
    assert.ok([204, 404].includes(del.status), `DELETE answered ${del.status}: ${del.body}`);
    if (fin.status === 201) {
      const id = idOf(fin.headers.location!);
      assert.equal(
        md5(fs.readFileSync(s.store.filePath(id))),
        md5(Buffer.concat([a, b])),
        'the final holds both partials whole',
      );
      // A finished upload belongs to the catalog (a tus DELETE answers 403): removed from the store here.
      assert.equal((await tus('DELETE', fin.headers.location!)).status, 403);
      await s.store.remove(id);
    } else {
      assert.match(fin.body, /^ERR_CONCAT_PARTIAL_NOT_FOUND/);
    }
    // Whatever won, no half-built final is left: only the partial not deleted (or none) remains.
    for (const url of [ua, ub]) await tus('DELETE', url);
    assert.deepEqual(storedIds(s), [], `round ${round}: nothing left behind`);
  }
  assert.equal((await fetch(`${s.url}/health`)).status, 200, 'the server is still up');
  assert.ok(!s.logs.some((l) => /ERR_INTERNAL|Unhandled|ENOENT/.test(l)), s.logs.join('\n'));
  t.diagnostic(`final/DELETE outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});

test('one partial listed many times builds nothing; repeats and lists over MAX_CONCAT_PARTS are refused', async (t) => {
  const s = await startTestServer(t, { minFreeSpace: 0, maxConcatParts: 3 });
  const bytes = patternBytes(100_000, 5);
  const one = await partial(s, bytes);
  const before = fs.readdirSync(s.config.storeDir).sort();
  // Relative URLs, as in the report: 300 of them fit in node's 16 KiB of headers.
  const many = await final(s, Array(300).fill(new URL(one).pathname));
  assert.equal(many.status, 400, many.body);
  assert.match(many.body, /^ERR_CONCAT_TOO_MANY_PARTS/);
  // The protocol does not forbid a repeat; tuspass refuses it, so no partial is written twice.
  const twice = await final(s, [one, one]);
  assert.equal(twice.status, 400, twice.body);
  assert.match(twice.body, /^ERR_CONCAT_INVALID: .*listed more than once/);
  assert.deepEqual(fs.readdirSync(s.config.storeDir).sort(), before, 'no final created, no byte written');
  assert.ok(
    s.logs.some((l) => /concat: final upload failed: ERR_CONCAT_TOO_MANY_PARTS/.test(l)),
    'refusals are logged',
  );

  const urls = [one, await partial(s, bytes), await partial(s, bytes), await partial(s, bytes)];
  assert.equal((await final(s, urls)).status, 400, 'four parts, MAX_CONCAT_PARTS=3');
  const ok = await final(s, urls.slice(0, 3));
  assert.equal(ok.status, 201, ok.body);
  assert.equal(JSON.parse(ok.body).md5, md5(Buffer.concat([bytes, bytes, bytes])));
});

test('back-pressure: while the notice queue is full, creations get 503 ERR_QUEUE_FULL with Retry-After', async (t) => {
  const s = await startTestServer(t, { queueMax: 1, minFreeSpace: 0 });
  // A notice of a kind nobody delivers stays in the queue.
  await s.queue.enqueue('test:undeliverable', {});
  const res = await tus('POST', s.endpoint, { 'Upload-Length': '10' });
  assert.equal(res.status, 503, res.body);
  assert.match(res.body, /^ERR_QUEUE_FULL/);
  assert.ok(Number(res.headers['retry-after']) > 0);
  assert.deepEqual(storedIds(s), [], 'nothing created');
});

test('digest states and temp files left by a kill are removed at \
the next start; a resumed upload keeps its state', async (t) => {
  const dataDir = tmpDir(t);
  const s1 = await startTestServer(t, { dataDir, minFreeSpace: 0 });
  const done = patternBytes(50_000, 7);
  const doneUrl = await create(s1.endpoint, done.length, { filename: 'done.bin' });
  assert.ok((await patch(doneUrl, 0, done)).status < 300);
  await recordsWhenPresent(s1.url, 1);
  // Larger than the inline limit: its state is saved beside it after each PATCH.
  const open = patternBytes(600_000, 8);
  const openUrl = await create(s1.endpoint, open.length, { filename: 'open.bin' });
  assert.equal((await patch(openUrl, 0, open.subarray(0, 300_000))).status, 204);
  await s1.close();

  const dir = s1.config.storeDir;
  const [doneId, openId] = [idOf(doneUrl), idOf(openUrl)];
  assert.ok(fs.existsSync(path.join(dir, `${openId}.digest`)), 'the unfinished upload has a saved state');
  const planted = [
    `${doneId}.digest`, // killed after the completion was journaled, before the state was removed
    `${doneId}.digest.4242.tmp`, // killed between a state's write and its rename
    `${openId}.digest.4242.tmp`,
    `${openId}.json.4242.tmp`,
    'ffffffffffffffffffffffffffffffff.digest', // killed during a removal
    'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.json',
  ];
  for (const name of planted) fs.writeFileSync(path.join(dir, name), '{"version":1');

  const s2 = await startTestServer(t, { dataDir, minFreeSpace: 0 });
  assert.deepEqual(
    fs
      .readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort(),
    [doneId, `${doneId}.json`, openId, `${openId}.digest`, `${openId}.json`].sort(),
  );
  assert.equal(s2.store.space.owed, 300_000, 'the start-up pass counted what the unfinished upload is owed');
  // The kept state is the right one: the resumed upload ends with the md5 of the whole file.
  assert.ok((await patch(`${s2.endpoint}${openId}`, 300_000, open.subarray(300_000))).status < 300);
  const records = await recordsWhenPresent(s2.url, 2);
  assert.deepEqual(records.map((r) => r.md5).sort(), [md5(done), md5(open)].sort());
  assert.ok(
    !fs.existsSync(path.join(dir, `${openId}.digest`)),
    "a finished upload's state goes once its completion is handled",
  );
});

test('expiry (on by default) releases what an expired upload \
was owed; a creation-with-upload reads back right', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 1000, minFreeSpace: 0 });
  const url = await create(s.endpoint, 5_000_000);
  assert.equal(s.store.space.owed, 5_000_000);
  await new Promise((r) => setTimeout(r, 1100));
  // The periodic sweep (every second at this period) may have removed it already: either way, once.
  const removedNow = await s.store.deleteExpired();
  assert.ok(
    removedNow === 1 || s.logs.some((l) => /expired upload/.test(l)),
    `removed now: ${removedNow}; ${s.logs.join('\n')}`,
  );
  assert.equal(s.store.space.owed, 0, 'the sweep released the owed bytes');
  assert.equal((await tus('HEAD', url)).status, 404);

  // Creation-with-upload, unfinished: the POST answers from what it wrote (no read back), a HEAD from the disk.
  const bytes = patternBytes(1000, 9);
  const res = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': '3000', 'Content-Type': 'application/offset+octet-stream' },
    bytes,
  );
  assert.equal(res.status, 201, res.body);
  assert.equal(res.headers['upload-offset'], '1000');
  assert.ok(res.headers['upload-expires'], 'an unfinished upload is told when it expires');
  const created = new URL(res.headers.location!, s.endpoint).toString();
  assert.equal((await tus('HEAD', created)).headers['upload-offset'], '1000');
  assert.ok((await patch(created, 1000, patternBytes(2000, 10))).status < 300);
  assert.equal((await tus('HEAD', created)).headers['upload-offset'], '3000');
});
