// The concatenation extension in raw HTTP: partials, the final upload, and what is refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { metadata, patch, tus } from './helpers/tus.ts';

async function partial(s: TestServer, bytes: Buffer, finish = true): Promise<string> {
  const res = await tus('POST', s.endpoint, { 'Upload-Length': String(bytes.length), 'Upload-Concat': 'partial' });
  assert.equal(res.status, 201, res.body);
  const url = new URL(res.headers.location!, s.endpoint).toString();
  if (finish) assert.equal((await patch(url, 0, bytes)).status, 204, 'a partial is not sent to the completion service');
  return url;
}

const final = (s: TestServer, urls: string[], headers: Record<string, string> = {}) =>
  tus('POST', s.endpoint, { 'Upload-Concat': `final;${urls.join(' ')}`, ...headers });

test('OPTIONS lists concatenation', async (t) => {
  const s = await startTestServer(t);
  assert.ok((await tus('OPTIONS', s.endpoint)).headers['tus-extension']!.split(',').includes('concatenation'));
});

test('a final upload is the partials in order; HEAD answers for both; the form sees the whole file', async (t) => {
  const s = await startTestServer(t, {}, {});
  const parts = [patternBytes(70_000, 1), patternBytes(1, 2), patternBytes(130_000, 3)];
  const urls = [];
  for (const p of parts) urls.push(await partial(s, p));
  // "The response to a HEAD request for a partial upload MUST contain the Upload-Offset header"
  const headPartial = await tus('HEAD', urls[0]!);
  assert.equal(headPartial.headers['upload-concat'], 'partial');
  assert.equal(headPartial.headers['upload-offset'], '70000');

  // Relative and absolute URLs both name partials.
  const listed = [urls[0]!, new URL(urls[1]!).pathname, urls[2]!];
  const res = await final(s, listed, {
    'Upload-Metadata': metadata({ filename: 'joined.bin', description: 'three parts' }),
  });
  assert.equal(res.status, 201, res.body);
  const whole = Buffer.concat(parts);
  assert.equal(JSON.parse(res.body).md5, md5(whole), 'completion answer for the whole file');
  assert.equal(res.headers['tuspass-completion'], 'delivered');
  const finalUrl = new URL(res.headers.location!, s.endpoint).toString();
  assert.deepEqual(fs.readFileSync(s.store.filePath(finalUrl.split('/').pop()!)), whole);

  const head = await tus('HEAD', finalUrl);
  // "the Upload-Offset and Upload-Length MUST be set and their values MUST be equal" after concatenation.
  assert.equal(head.headers['upload-length'], String(whole.length));
  assert.equal(head.headers['upload-offset'], String(whole.length));
  assert.match(head.headers['upload-concat']!, /^final;/);
  assert.deepEqual(
    head.headers['upload-concat']!.slice(6)
      .split(' ')
      .map((u) => new URL(u).pathname),
    urls.map((u) => new URL(u).pathname),
  );

  // "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final upload URL"
  assert.equal((await patch(finalUrl, whole.length, 'x')).status, 403);
  // Partials are removed once concatenated (KEEP_PARTIALS=false).
  assert.equal((await tus('HEAD', urls[0]!)).status, 404);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1, 'only the final upload reaches the catalog');
  assert.equal(list[0]!.name, 'joined.bin');
});

test('KEEP_PARTIALS keeps the partials', async (t) => {
  const s = await startTestServer(t, { keepPartials: true });
  const url = await partial(s, patternBytes(1000));
  assert.equal((await final(s, [url])).status, 201);
  assert.equal((await tus('HEAD', url)).status, 200);
});

test('refused finals: unfinished, not partial, missing, \
foreign, with Upload-Length, malformed; nothing created', async (t) => {
  const s = await startTestServer(t);
  const done = await partial(s, patternBytes(100));
  const unfinished = await partial(s, patternBytes(100), false);
  const plain = new URL(
    (await tus('POST', s.endpoint, { 'Upload-Length': '5' })).headers.location!,
    s.endpoint,
  ).toString();
  const before = fs.readdirSync(s.config.storeDir).sort();

  assert.equal((await final(s, [done, unfinished])).status, 400, 'unfinished partial');
  assert.equal((await final(s, [done, plain])).status, 400, 'not a partial');
  assert.equal(
    (await final(s, [done, `${s.endpoint}ffffffffffffffffffffffffffffffff`])).status,
    404,
    'missing partial',
  );
  assert.equal((await final(s, ['http://elsewhere.example/other/abc'])).status, 400, 'not our URL');
  // "The Client MUST NOT include the Upload-Length header in the final upload creation."
  assert.equal((await final(s, [done], { 'Upload-Length': '100' })).status, 400);
  assert.equal((await final(s, [])).status, 400, 'empty list');
  assert.equal((await tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Concat': 'partial-ish' })).status, 400);
  assert.deepEqual(fs.readdirSync(s.config.storeDir).sort(), before, 'nothing created or removed');
});

test('a final larger than MAX_SIZE is refused with 413', async (t) => {
  const s = await startTestServer(t, { maxSize: 1500 });
  const a = await partial(s, patternBytes(1000, 1));
  const b = await partial(s, patternBytes(1000, 2));
  assert.equal((await final(s, [a, b])).status, 413);
});
