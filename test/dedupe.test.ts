// Duplicate uploads: by default every upload is recorded, a second of the same file
// too; DEDUPE=md5 answers the first record to the same owner sending the same name and md5, and
// records nothing new — never across owners, never for another name or other bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, load } from '../server/config/config.ts';
import { md5 } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { startTestServer } from './helpers/server.ts';
import { metadata, patch, tus } from './helpers/tus.ts';

interface Answer {
  id: string;
  name: string;
  md5: string;
  url: string;
  duplicate?: true;
}

/** One whole upload; the final PATCH's body is the completion service's answer. */
async function upload(
  endpoint: string,
  name: string,
  bytes: Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const created = await tus('POST', endpoint, {
    'Upload-Length': String(bytes.length),
    'Upload-Metadata': metadata({ filename: name }),
    ...headers,
  });
  assert.equal(created.status, 201, created.body);
  const res = await patch(new URL(created.headers.location!, endpoint).toString(), 0, bytes, headers);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body) as Answer;
}

const records = async (url: string, headers: Record<string, string> = {}) =>
  (await (await fetch(`${url}/api/uploads`, { headers })).json()) as Array<{
    id: string;
    name: string;
    md5: string;
    owner?: string;
  }>;

test('DEDUPE off (the default): the same file uploaded twice makes two records', async (t) => {
  const server = await startTestServer(t);
  assert.equal(server.config.dedupe, 'off');
  const bytes = Buffer.from('same bytes twice');
  const a = await upload(server.endpoint, 'twice.txt', bytes);
  const b = await upload(server.endpoint, 'twice.txt', bytes);
  assert.notEqual(a.id, b.id);
  assert.equal(b.duplicate, undefined);
  assert.equal((await records(server.url)).length, 2);
});

test('DEDUPE=md5: the same name and md5 answers the first \
record; another name or other bytes are recorded', async (t) => {
  const server = await startTestServer(t, { dedupe: 'md5' });
  const bytes = Buffer.from('a file sent again');
  const first = await upload(server.endpoint, 'report.pdf', bytes);
  assert.equal(first.duplicate, undefined);
  const again = await upload(server.endpoint, 'report.pdf', bytes);
  assert.deepEqual({ ...again }, { ...first, duplicate: true }, 'the first record, marked as a duplicate');
  assert.equal((await records(server.url)).length, 1, 'no second record');
  // The answered record's file is the first upload's and downloads.
  const file = await fetch(`${server.url}${again.url}`);
  assert.equal(md5(Buffer.from(await file.arrayBuffer())), md5(bytes));

  const renamed = await upload(server.endpoint, 'report-copy.pdf', bytes);
  assert.notEqual(renamed.id, first.id, 'another name is another record');
  const changed = await upload(server.endpoint, 'report.pdf', Buffer.from('a file sent again, edited'));
  assert.notEqual(changed.id, first.id, 'other bytes are another record');
  // Same name, same md5 as the edited one: answers that record, not the oldest of the name.
  const changedAgain = await upload(server.endpoint, 'report.pdf', Buffer.from('a file sent again, edited'));
  assert.equal(changedAgain.id, changed.id);
  assert.equal((await records(server.url)).length, 3);
});

test('DEDUPE=md5 never crosses owners: bob sending alice’s file \
gets his own record, and learns nothing of hers', async (t) => {
  const server = await startTestServer(t, { dedupe: 'md5', authJwtSecret: TEST_JWT_SECRET });
  const alice = bearer(tokenFor('alice', 'upload read'));
  const bob = bearer(tokenFor('bob', 'upload read'));
  const bytes = Buffer.from('shared secret document');
  const hers = await upload(server.endpoint, 'plan.txt', bytes, alice);
  const his = await upload(server.endpoint, 'plan.txt', bytes, bob);
  assert.notEqual(his.id, hers.id);
  assert.equal(his.duplicate, undefined);
  const hisAgain = await upload(server.endpoint, 'plan.txt', bytes, bob);
  assert.equal(hisAgain.id, his.id, "bob's second upload answers bob's record");
  assert.equal(
    (await fetch(`${server.url}${hers.url}`, { headers: bob })).status,
    404,
    "alice's file is not bob's to fetch",
  );
  const all = await records(server.url, bearer(tokenFor('root', 'admin')));
  assert.deepEqual(all.map((r) => r.owner).sort(), ['alice', 'bob']);
});

test('DEDUPE accepts off and md5 only', () => {
  assert.equal(load({ DEDUPE: 'MD5' }, []).config.dedupe, 'md5');
  assert.equal(load({}, ['--dedupe', 'off']).config.dedupe, 'off');
  assert.throws(
    () => load({ DEDUPE: 'sha1' }, []),
    (e: unknown) => e instanceof ConfigError && /DEDUPE/.test((e as Error).message),
  );
});
