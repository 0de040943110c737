// Every error path of the tus routes (/files, /files/<id>: POST, creation-with-upload, concatenation,
// HEAD, PATCH, GET, DELETE, method override, unknown methods) answers in one format: `ERR_CODE: message`
// with the error table's status, Tus-Resumable, the CORS exposure and X-Request-Id, no path of this
// machine, and one count in tusd_errors_total under that code (a HEAD has no body: its code is read
// from the counter). A hook's own refusal stays the hook's answer, as in tusd. Then DELETE raced
// against the last PATCH: never a record whose file is gone.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { gatekeeper } from './helpers/gatekeeper.ts';
import { delta, scrape, series } from './helpers/metrics.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { create, metadata, patch, PATCH_TYPE, tus, type TusAnswer } from './helpers/tus.ts';

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

async function partial(s: TestServer, bytes: string, finish = true): Promise<string> {
  const res = await tus('POST', s.endpoint, { 'Upload-Length': String(bytes.length), 'Upload-Concat': 'partial' });
  assert.equal(res.status, 201, res.body);
  const url = new URL(res.headers.location!, s.endpoint).toString();
  if (finish) assert.equal((await patch(url, 0, bytes)).status, 204);
  return url;
}

async function finished(s: TestServer, bytes: string): Promise<string> {
  const url = await create(s.endpoint, bytes.length);
  assert.ok([200, 204].includes((await patch(url, 0, bytes)).status));
  return url;
}

const sha1 = (data: string) => crypto.createHash('sha1').update(data).digest('base64');

type Case = [name: string, request: (s: TestServer) => Promise<TusAnswer>, status: number, code: string];

const none = '0'.repeat(32);
const CASES: Case[] = [
  // Tus-Resumable ("MUST respond with the 412 Precondition Failed status").
  [
    'POST without Tus-Resumable',
    (s) => fetchAnswer(`${s.endpoint}`, 'POST', { 'Upload-Length': '5' }),
    412,
    'ERR_UNSUPPORTED_VERSION',
  ],
  [
    'POST with Tus-Resumable 0.2.2',
    (s) => tus('POST', s.endpoint, { 'Tus-Resumable': '0.2.2', 'Upload-Length': '5' }),
    412,
    'ERR_UNSUPPORTED_VERSION',
  ],
  [
    'HEAD without Tus-Resumable',
    async (s) => fetchAnswer(await create(s.endpoint, 5), 'HEAD', {}),
    412,
    'ERR_UNSUPPORTED_VERSION',
  ],
  [
    'PATCH without Tus-Resumable',
    async (s) => fetchAnswer(await create(s.endpoint, 5), 'PATCH', { ...PATCH_TYPE, 'Upload-Offset': '0' }, 'abcde'),
    412,
    'ERR_UNSUPPORTED_VERSION',
  ],
  // Creation: lengths and metadata.
  ['POST Upload-Length abc', (s) => tus('POST', s.endpoint, { 'Upload-Length': 'abc' }), 400, 'ERR_LENGTH_INVALID'],
  ['POST Upload-Length -1', (s) => tus('POST', s.endpoint, { 'Upload-Length': '-1' }), 400, 'ERR_LENGTH_INVALID'],
  [
    'POST Upload-Length past 2^53',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '9007199254740993' }),
    400,
    'ERR_LENGTH_INVALID',
  ],
  ['POST Upload-Length 007', (s) => tus('POST', s.endpoint, { 'Upload-Length': '007' }), 400, 'ERR_LENGTH_INVALID'],
  [
    'POST Upload-Length > MAX_SIZE',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '2000' }),
    413,
    'ERR_MAX_SIZE_EXCEEDED',
  ],
  ['POST without Upload-Length or Upload-Defer-Length', (s) => tus('POST', s.endpoint, {}), 400, 'ERR_LENGTH_REQUIRED'],
  [
    'POST with Upload-Length and Upload-Defer-Length',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Defer-Length': '1' }),
    400,
    'ERR_LENGTH_REQUIRED',
  ],
  [
    'POST Upload-Defer-Length 2',
    (s) => tus('POST', s.endpoint, { 'Upload-Defer-Length': '2' }),
    400,
    'ERR_LENGTH_REQUIRED',
  ],
  [
    'POST Upload-Metadata invalid',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Metadata': 'name not base64!' }),
    400,
    'ERR_METADATA_INVALID',
  ],
  [
    'POST Upload-Metadata repeated key',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Metadata': 'a YQ==,a YQ==' }),
    400,
    'ERR_METADATA_INVALID',
  ],
  [
    'POST X-Forwarded-Proto ftp',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'X-Forwarded-Proto': 'ftp' }),
    400,
    'ERR_HEADER_INVALID',
  ],
  [
    'POST to an upload URL',
    async (s) => tus('POST', await create(s.endpoint, 5), { 'Upload-Length': '5' }),
    405,
    'ERR_METHOD_NOT_ALLOWED',
  ],
  // Creation-with-upload.
  [
    'creation-with-upload past Upload-Length',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', ...PATCH_TYPE }, 'x'.repeat(10)),
    413,
    'ERR_SIZE_EXCEEDED',
  ],
  [
    'creation-with-upload deferred past MAX_SIZE',
    (s) => tus('POST', s.endpoint, { 'Upload-Defer-Length': '1', ...PATCH_TYPE }, 'x'.repeat(1500)),
    413,
    'ERR_SIZE_EXCEEDED',
  ],
  // Hooks that fail (ours to word); a hook's own refusal is checked below.
  [
    'pre-create hook fails',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Metadata': metadata({ name: 'explode' }) }),
    500,
    'ERR_HOOK_FAILED',
  ],
  [
    'pre-create hook chooses an invalid id',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Metadata': metadata({ name: 'badid' }) }),
    500,
    'ERR_HOOK_FAILED',
  ],
  // Concatenation.
  [
    'Upload-Concat invalid',
    (s) => tus('POST', s.endpoint, { 'Upload-Length': '5', 'Upload-Concat': 'partial-ish' }),
    400,
    'ERR_CONCAT_INVALID',
  ],
  ['final with no parts', (s) => tus('POST', s.endpoint, { 'Upload-Concat': 'final;' }), 400, 'ERR_CONCAT_INVALID'],
  [
    'final with Upload-Length',
    async (s) => tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': `final;${await partial(s, 'abc')}` }),
    400,
    'ERR_CONCAT_INVALID',
  ],
  [
    'final naming a foreign URL',
    (s) => tus('POST', s.endpoint, { 'Upload-Concat': 'final;http://elsewhere.example/x/y' }),
    400,
    'ERR_CONCAT_INVALID',
  ],
  [
    'final with a missing part',
    async (s) => tus('POST', s.endpoint, { 'Upload-Concat': `final;${await partial(s, 'abc')} /files/${none}` }),
    404,
    'ERR_CONCAT_PARTIAL_NOT_FOUND',
  ],
  [
    'final with an unfinished part',
    async (s) => tus('POST', s.endpoint, { 'Upload-Concat': `final;${await partial(s, 'abc', false)}` }),
    400,
    'ERR_CONCAT_UNFINISHED',
  ],
  [
    'final with a plain upload',
    async (s) => tus('POST', s.endpoint, { 'Upload-Concat': `final;${await finished(s, 'abc')}` }),
    400,
    'ERR_CONCAT_NOT_PARTIAL',
  ],
  [
    'final with too many parts',
    async (s) =>
      tus('POST', s.endpoint, {
        'Upload-Concat': `final;${(await Promise.all([1, 2, 3, 4].map(() => partial(s, 'ab')))).join(' ')}`,
      }),
    400,
    'ERR_CONCAT_TOO_MANY_PARTS',
  ],
  [
    'PATCH of a final upload',
    async (s) => {
      const made = await tus('POST', s.endpoint, { 'Upload-Concat': `final;${await partial(s, 'abc')}` });
      assert.equal(made.status, 201, made.body);
      return patch(new URL(made.headers.location!, s.endpoint).toString(), 3, 'x');
    },
    403,
    'ERR_FINAL_UPLOAD_READONLY',
  ],
  // PATCH.
  [
    'PATCH with another Content-Type',
    async (s) =>
      tus('PATCH', await create(s.endpoint, 5), { 'Content-Type': 'text/plain', 'Upload-Offset': '0' }, 'abcde'),
    415,
    'ERR_INVALID_CONTENT_TYPE',
  ],
  [
    'PATCH without Upload-Offset',
    async (s) => tus('PATCH', await create(s.endpoint, 5), PATCH_TYPE, 'abcde'),
    400,
    'ERR_OFFSET_INVALID',
  ],
  ['PATCH Upload-Offset -1', async (s) => patch(await create(s.endpoint, 5), -1, 'abcde'), 400, 'ERR_OFFSET_INVALID'],
  [
    'PATCH Upload-Offset past 2^53',
    async (s) =>
      tus('PATCH', await create(s.endpoint, 5), { ...PATCH_TYPE, 'Upload-Offset': '99999999999999999999' }, 'x'),
    400,
    'ERR_OFFSET_INVALID',
  ],
  ['PATCH offset mismatch', async (s) => patch(await create(s.endpoint, 5), 2, 'abc'), 409, 'ERR_OFFSET_MISMATCH'],
  [
    'PATCH body past Upload-Length',
    async (s) => patch(await create(s.endpoint, 5), 0, 'abcdefgh'),
    413,
    'ERR_SIZE_EXCEEDED',
  ],
  [
    'PATCH declaring a length > MAX_SIZE',
    async (s) => {
      const made = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
      return patch(new URL(made.headers.location!, s.endpoint).toString(), 0, 'ab', { 'Upload-Length': '5000' });
    },
    413,
    'ERR_MAX_SIZE_EXCEEDED',
  ],
  [
    'PATCH changing Upload-Length',
    async (s) => patch(await create(s.endpoint, 5), 0, 'ab', { 'Upload-Length': '6' }),
    400,
    'ERR_LENGTH_INVALID',
  ],
  [
    'PATCH checksum mismatch',
    async (s) => patch(await create(s.endpoint, 5), 0, 'abcde', { 'Upload-Checksum': `sha1 ${sha1('other')}` }),
    460,
    'ERR_CHECKSUM_MISMATCH',
  ],
  [
    'PATCH checksum algorithm unsupported',
    async (s) => patch(await create(s.endpoint, 5), 0, 'abcde', { 'Upload-Checksum': 'whirlpool AAAA' }),
    400,
    'ERR_CHECKSUM_HEADER',
  ],
  // Unknown uploads, other spellings of ids.
  ['HEAD unknown', (s) => tus('HEAD', `${s.endpoint}${none}`), 404, 'ERR_UPLOAD_NOT_FOUND'],
  ['PATCH unknown', (s) => patch(`${s.endpoint}${none}`, 0, 'x'), 404, 'ERR_UPLOAD_NOT_FOUND'],
  ['GET unknown', (s) => tus('GET', `${s.endpoint}${none}`), 404, 'ERR_UPLOAD_NOT_FOUND'],
  ['DELETE unknown', (s) => tus('DELETE', `${s.endpoint}${none}`), 404, 'ERR_UPLOAD_NOT_FOUND'],
  ['GET the collection', (s) => tus('GET', s.endpoint), 404, 'ERR_UPLOAD_NOT_FOUND'],
  ['GET an unfinished upload', async (s) => tus('GET', await create(s.endpoint, 5)), 404, 'ERR_UPLOAD_UNFINISHED'],
  [
    'HEAD by an alias id',
    async (s) => tus('HEAD', `${s.endpoint}x%2F..%2F${idOf(await create(s.endpoint, 5))}`),
    404,
    'ERR_UPLOAD_NOT_FOUND',
  ],
  [
    'DELETE by an alias id',
    async (s) => tus('DELETE', `${s.endpoint}${idOf(await create(s.endpoint, 5))}/`),
    404,
    'ERR_UPLOAD_NOT_FOUND',
  ],
  ['PATCH by an undecodable id', (s) => patch(`${s.endpoint}%ff`, 0, 'x'), 400, 'ERR_URL_INVALID'],
  // DELETE of a finished upload: it belongs to the catalog.
  ['DELETE of a finished upload', async (s) => tus('DELETE', await finished(s, 'abc')), 403, 'ERR_UPLOAD_FINISHED'],
  // Method override, unknown methods.
  [
    'X-HTTP-Method-Override on a GET',
    (s) => tus('GET', `${s.endpoint}${none}`, { 'X-HTTP-Method-Override': 'DELETE' }),
    400,
    'ERR_METHOD_OVERRIDE_INVALID',
  ],
  [
    'X-HTTP-Method-Override PUT',
    (s) => tus('POST', s.endpoint, { 'X-HTTP-Method-Override': 'PUT', 'Upload-Length': '5' }),
    400,
    'ERR_METHOD_OVERRIDE_INVALID',
  ],
  [
    'X-HTTP-Method-Override DELETE of an unknown upload',
    (s) => tus('POST', `${s.endpoint}${none}`, { 'X-HTTP-Method-Override': 'DELETE' }),
    404,
    'ERR_UPLOAD_NOT_FOUND',
  ],
  [
    'X-HTTP-Method-Override DELETE of a finished upload',
    async (s) => tus('POST', await finished(s, 'abc'), { 'X-HTTP-Method-Override': 'DELETE' }),
    403,
    'ERR_UPLOAD_FINISHED',
  ],
  [
    'X-HTTP-Method-Override PATCH with an offset mismatch',
    async (s) =>
      tus(
        'POST',
        await create(s.endpoint, 5),
        { 'X-HTTP-Method-Override': 'PATCH', ...PATCH_TYPE, 'Upload-Offset': '3' },
        'ab',
      ),
    409,
    'ERR_OFFSET_MISMATCH',
  ],
  [
    'PUT an upload',
    async (s) => tus('PUT', await create(s.endpoint, 5), PATCH_TYPE, 'abcde'),
    405,
    'ERR_METHOD_NOT_ALLOWED',
  ],
  ['PUT the collection', (s) => tus('PUT', s.endpoint, {}, 'x'), 405, 'ERR_METHOD_NOT_ALLOWED'],
];

/** A request without the Tus-Resumable the tus helper adds. */
async function fetchAnswer(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<TusAnswer> {
  const res = await fetch(url, { method, headers, body });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

/** The answer's common part: the format, the headers, no path of this machine. */
function assertTusError(
  s: TestServer,
  what: string,
  answer: TusAnswer,
  status: number,
  code: string,
  head: boolean,
): void {
  assert.equal(answer.status, status, `${what}: ${answer.body}`);
  if (!head) assert.match(answer.body, new RegExp(`^${code}: [^\\n]+\\n$`), what);
  assert.match(answer.body, head ? /^$/ : /^ERR_[A-Z_]+: /, what);
  assert.equal(answer.headers['tus-resumable'], '1.0.0', `${what}: Tus-Resumable`);
  assert.match(answer.headers['access-control-expose-headers'] ?? '', /Upload-Offset/, `${what}: CORS exposure`);
  assert.ok(answer.headers['x-request-id'], `${what}: X-Request-Id`);
  if (status === 412)
    assert.equal(answer.headers['tus-version'], '1.0.0', `${what}: "MUST include the Tus-Version header"`);
  for (const dir of [s.config.dataDir, s.config.storeDir])
    assert.ok(!answer.body.includes(dir), `${what}: names a path`);
  assert.doesNotMatch(answer.body, /\/(?:tmp|home|var|usr|etc)\/|node_modules|\n\s+at /, `${what}: a path or a stack`);
}

test('every tus error path: status, ERR_ code, headers, no path, counted by its code', async (t) => {
  const s = await startTestServer(t, { maxSize: 1000, maxConcatParts: 3 }, { hooks: [gatekeeper] });
  const metricsUrl = `${s.url}/metrics`;
  for (const [what, request, status, code] of CASES) {
    const before = (await scrape(metricsUrl)).metrics;
    const answer = await request(s);
    const after = (await scrape(metricsUrl)).metrics;
    const head = what.startsWith('HEAD');
    assertTusError(s, what, answer, status, code, head);
    assert.equal(
      delta(before, after, series('tusd_errors_total', { status: String(status), code })),
      1,
      `${what}: counted as ${status} ${code}`,
    );
  }
});

test('a hook refusing a creation: its own status, body and headers (as tusd relays them), counted as \
ERR_UPLOAD_REJECTED', async (t) => {
  const s = await startTestServer(t, {}, { hooks: [gatekeeper] });
  const before = (await scrape(`${s.url}/metrics`)).metrics;
  const answer = await tus('POST', s.endpoint, {
    'Upload-Length': '5',
    'Upload-Metadata': metadata({ name: 'refuse' }),
  });
  assert.equal(answer.status, 422);
  assert.equal(answer.body, 'not this one');
  assert.equal(answer.headers['x-why'], 'named refuse');
  assert.equal(answer.headers['tus-resumable'], '1.0.0');
  const after = (await scrape(`${s.url}/metrics`)).metrics;
  assert.equal(delta(before, after, series('tusd_errors_total', { status: '422', code: 'ERR_UPLOAD_REJECTED' })), 1);
});

test('an expired upload: the same 410 ERR_UPLOAD_EXPIRED on HEAD and PATCH', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 1500 });
  const metricsUrl = `${s.url}/metrics`;
  const expired = series('tusd_errors_total', { status: '410', code: 'ERR_UPLOAD_EXPIRED' });
  // The sweep (every second here) turns 410 into 404 at a moment we do not control: a round that
  // met it (a 404) is tried again with a new upload.
  for (let round = 0; ; round++) {
    const url = await create(s.endpoint, 10);
    assert.equal((await patch(url, 0, 'abc')).status, 204);
    await new Promise((r) => setTimeout(r, 1700));
    const before = (await scrape(metricsUrl)).metrics;
    const head = await tus('HEAD', url);
    const mid = (await scrape(metricsUrl)).metrics;
    const patched = await patch(url, 3, 'def');
    const after = (await scrape(metricsUrl)).metrics;
    if ((head.status === 404 || patched.status === 404) && round < 5) continue;
    assertTusError(s, 'HEAD expired', head, 410, 'ERR_UPLOAD_EXPIRED', true);
    assertTusError(s, 'PATCH expired', patched, 410, 'ERR_UPLOAD_EXPIRED', false);
    assert.equal(delta(before, mid, expired), 1, 'HEAD counted as ERR_UPLOAD_EXPIRED');
    assert.equal(delta(mid, after, expired), 1, 'PATCH counted as ERR_UPLOAD_EXPIRED');
    break;
  }
});

test('DELETE racing the last PATCH, 40 rounds: the PATCH wins (recorded, file kept, DELETE 403) or the DELETE does \
(PATCH 404, nothing recorded)', async (t) => {
  const s = await startTestServer(t);
  const rounds = 40;
  const outcomes: Array<{ id: string; patchWon: boolean }> = [];
  for (let i = 0; i < rounds; i++) {
    const url = await create(s.endpoint, 20, { name: `race-${i}.bin` });
    assert.equal((await patch(url, 0, 'a'.repeat(10))).status, 204);
    // Both on the wire together; which one sends first alternates.
    const last = () => patch(url, 10, 'b'.repeat(10));
    const del = () => tus('DELETE', url);
    const [p, d] =
      i % 2 ? await Promise.all([last(), del()]) : await Promise.all([del(), last()]).then(([x, y]) => [y, x] as const);
    const id = idOf(url);
    if (p.status === 200 || p.status === 204) {
      assert.equal(d.status, 403, `round ${i}: the PATCH finished the upload, the DELETE must be refused: ${d.body}`);
      assert.match(d.body, /^ERR_UPLOAD_FINISHED: /);
      assert.ok(fs.existsSync(s.store.filePath(id)), `round ${i}: the finished file is kept`);
      outcomes.push({ id, patchWon: true });
    } else {
      assert.ok([404, 410].includes(p.status), `round ${i}: PATCH answered ${p.status} ${p.body}`);
      assert.match(p.body, /^ERR_[A-Z_]+: /, `round ${i}`);
      assert.equal(d.status, 204, `round ${i}: DELETE answered ${d.status} ${d.body}`);
      assert.ok(!fs.existsSync(s.store.filePath(id)), `round ${i}: the terminated file is gone`);
      outcomes.push({ id, patchWon: false });
    }
  }
  const won = outcomes.filter((o) => o.patchWon);
  t.diagnostic(`PATCH won ${won.length} of ${rounds} rounds`);
  const records = won.length ? await recordsWhenPresent(s.url, won.length) : [];
  const recorded = new Set(records.map((r) => String(r.upload_id)));
  for (const o of outcomes)
    assert.equal(recorded.has(o.id), o.patchWon, `upload ${o.id}: recorded exactly when its PATCH won`);
  // Never a record whose file is gone.
  for (const r of records)
    assert.ok(
      fs.existsSync(s.store.filePath(String(r.upload_id))),
      `record of ${String(r.upload_id)}: its file is there`,
    );
});
