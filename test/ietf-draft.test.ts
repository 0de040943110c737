// The IETF Resumable Uploads draft on /files/, raw HTTP/1.1 for every interop version (3 to 8),
// following the drafts' own examples: 104 interim answers read off the socket before the final one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { openRaw } from './helpers/raw-http.ts';
import { digestB64, exchange, md5Hex, readAnswers, readInterim, requestHead } from './helpers/draft-http.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';

const VERSIONS = [3, 4, 5, 6, 7, 8];
/** The completeness field of a version: Upload-Incomplete (inverted) in 3, Upload-Complete from 4. */
const complete = (v: number, yes: boolean): Record<string, string> =>
  v === 3 ? { 'Upload-Incomplete': yes ? '?0' : '?1' } : { 'Upload-Complete': yes ? '?1' : '?0' };
const isComplete = (v: number, headers: Record<string, string>) =>
  v === 3 ? headers['upload-incomplete'] === '?0' : headers['upload-complete'] === '?1';
const appendType = (v: number): Record<string, string> =>
  v >= 6 ? { 'Content-Type': 'application/partial-upload' } : {};
const bytes = (n: number, variant = 1) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + variant * 7 + (i >> 8)) & 0xff));

for (const v of VERSIONS) {
  test(`interop ${v}: creation with the whole body answers 104 with Location, then the completion; the catalog has the \
md5`, async (t) => {
    const s = await startTestServer(t);
    const body = bytes(300_000, v);
    const { interim, final } = await exchange(
      'POST',
      s.endpoint,
      {
        'Upload-Draft-Interop-Version': v,
        ...complete(v, true),
        'Content-Disposition': `inline; filename="draft ${v}.bin"`,
      },
      body,
    );
    assert.equal(interim.length >= 1, true, 'a 104 came before the final answer');
    assert.equal(interim[0]!.status, 104);
    assert.equal(interim[0]!.statusLine, 'HTTP/1.1 104 Upload Resumption Supported');
    assert.equal(interim[0]!.headers['upload-draft-interop-version'], String(v));
    assert.match(interim[0]!.headers.location ?? '', /\/files\/[0-9a-f]{32}$/);
    assert.equal(final.status, 200, final.body.toString());
    assert.ok(isComplete(v, final.headers));
    assert.equal(final.headers.location, interim[0]!.headers.location);
    assert.equal(final.headers['tus-resumable'], undefined, 'no tus header on a draft answer');
    assert.equal(JSON.parse(final.body.toString()).md5, md5Hex(body));
    const [record] = await recordsWhenPresent(s.url, 1);
    assert.equal(record!.md5, md5Hex(body));
    assert.equal(record!.name, `draft ${v}.bin`);
    // Offset retrieval of the complete upload.
    const head = await exchange('HEAD', interim[0]!.headers.location!, { 'Upload-Draft-Interop-Version': v });
    assert.equal(head.final.status, 204);
    assert.equal(head.final.headers['upload-offset'], String(body.length));
    assert.equal(head.final.headers['upload-length'], String(body.length));
    assert.equal(head.final.headers['cache-control'], 'no-store');
    assert.ok(isComplete(v, head.final.headers));
  });

  test(`interop ${v}: creation with a part, offset retrieval, appends, and the completing append`, async (t) => {
    const s = await startTestServer(t);
    const body = bytes(200_000, v + 10);
    const created = await exchange(
      'POST',
      s.endpoint,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, false), 'Upload-Length': body.length },
      body.subarray(0, 50_000),
    );
    assert.equal(created.final.status, 201);
    assert.equal(created.final.headers['upload-offset'], '50000');
    assert.ok(!isComplete(v, created.final.headers));
    const url = created.final.headers.location!;
    const head = await exchange('HEAD', url, { 'Upload-Draft-Interop-Version': v });
    assert.equal(head.final.headers['upload-offset'], '50000');
    assert.equal(head.final.headers['upload-length'], String(body.length));
    assert.ok(!isComplete(v, head.final.headers));
    if (v >= 6) assert.match(head.final.headers['upload-limit'] ?? '', v === 6 ? /expires=\d+/ : /max-age=\d+/);
    const middle = await exchange(
      'PATCH',
      url,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, false), 'Upload-Offset': 50_000, ...appendType(v) },
      body.subarray(50_000, 120_000),
    );
    assert.equal(middle.final.status, 204);
    assert.equal(middle.final.headers['upload-offset'], '120000');
    // The offset the client sends must be the upload's: 409, the right offset in Upload-Offset.
    const wrong = await exchange(
      'PATCH',
      url,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, true), 'Upload-Offset': 100, ...appendType(v) },
      body.subarray(100),
    );
    assert.equal(wrong.final.status, 409);
    assert.equal(wrong.final.headers['upload-offset'], '120000');
    assert.match(wrong.final.headers['content-type'] ?? '', /^application\/problem\+json/);
    const problem = JSON.parse(wrong.final.body.toString());
    assert.equal(
      problem.type,
      v >= 6 ? 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset' : 'about:blank',
    );
    assert.equal(problem['expected-offset'], 120_000);
    assert.equal(problem['provided-offset'], 100);
    const last = await exchange(
      'PATCH',
      url,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, true), 'Upload-Offset': 120_000, ...appendType(v) },
      body.subarray(120_000),
    );
    assert.equal(last.final.status, 200, last.final.body.toString());
    assert.ok(isComplete(v, last.final.headers));
    assert.equal(last.final.headers['upload-offset'], String(body.length));
    const [record] = await recordsWhenPresent(s.url, 1);
    assert.equal(record!.md5, md5Hex(body));
    // A second completing append: the upload is complete and is not modified.
    const again = await exchange('PATCH', url, {
      'Upload-Draft-Interop-Version': v,
      ...complete(v, true),
      'Upload-Offset': body.length,
      ...appendType(v),
    });
    assert.equal(again.final.status, 400);
    assert.equal(JSON.parse(again.final.body.toString()).code, 'ERR_DRAFT_UPLOAD_COMPLETED');
    if (v >= 6)
      assert.equal(
        JSON.parse(again.final.body.toString()).type,
        'https://iana.org/assignments/http-problem-types#completed-upload',
      );
    const more = await exchange(
      'PATCH',
      url,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, true), 'Upload-Offset': body.length, ...appendType(v) },
      Buffer.from('x'),
    );
    assert.equal(more.final.status, 400);
    if (v >= 7)
      assert.equal(
        JSON.parse(more.final.body.toString()).type,
        'https://iana.org/assignments/http-problem-types#inconsistent-upload-length',
      );
    assert.equal((await recordsWhenPresent(s.url, 1)).length, 1, 'announced once');
  });

  test(`interop ${v}: a creation cut mid-body resumes from the \
104's Location (the final answer never seen)`, async (t) => {
    const s = await startTestServer(t);
    const body = bytes(1_000_000, v + 20);
    const conn = await openRaw(s.endpoint);
    conn.socket.write(
      requestHead('POST', s.endpoint, {
        'Upload-Draft-Interop-Version': v,
        ...complete(v, true),
        'Content-Length': body.length,
      }),
    );
    conn.socket.write(body.subarray(0, 400_000));
    const [announced] = await readInterim(conn, 1);
    const url = announced!.headers.location!;
    assert.ok(url);
    conn.socket.destroy();
    // The HEAD takes the upload's lock: the cut creation has let go and kept what arrived.
    const head = await exchange('HEAD', url, { 'Upload-Draft-Interop-Version': v });
    assert.equal(head.final.status, 204);
    const offset = Number(head.final.headers['upload-offset']);
    assert.ok(offset <= 400_000, `offset ${offset}`);
    assert.ok(!isComplete(v, head.final.headers));
    const rest = await exchange(
      'PATCH',
      url,
      { 'Upload-Draft-Interop-Version': v, ...complete(v, true), 'Upload-Offset': offset, ...appendType(v) },
      body.subarray(offset),
    );
    assert.equal(rest.final.status, 200, rest.final.body.toString());
    const [record] = await recordsWhenPresent(s.url, 1);
    assert.equal(record!.md5, md5Hex(body));
  });
}

test('cancellation removes an unfinished upload; later requests find nothing', async (t) => {
  const s = await startTestServer(t);
  const created = await exchange(
    'POST',
    s.endpoint,
    { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?0' },
    Buffer.from('abc'),
  );
  const url = created.final.headers.location!;
  const del = await exchange('DELETE', url, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(del.final.status, 204);
  const head = await exchange('HEAD', url, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(head.final.status, 404);
});

test('an unknown interop version is refused, with no 104', async (t) => {
  const s = await startTestServer(t);
  for (const version of ['2', '9', 'x']) {
    const r = await exchange(
      'POST',
      s.endpoint,
      { 'Upload-Draft-Interop-Version': version, 'Upload-Complete': '?1' },
      Buffer.from('abc'),
    );
    assert.equal(r.interim.length, 0);
    assert.equal(r.final.status, 412);
    assert.equal(JSON.parse(r.final.body.toString()).code, 'ERR_DRAFT_VERSION_UNSUPPORTED');
  }
  // A tus request with a stray unknown version stays a tus request.
  const tusToo = await exchange('POST', s.endpoint, {
    'Upload-Draft-Interop-Version': '99',
    'Tus-Resumable': '1.0.0',
    'Upload-Length': 3,
  });
  assert.equal(tusToo.final.status, 201);
  assert.equal(tusToo.final.headers['tus-resumable'], '1.0.0');
});

test('a creation without its completeness field, and a v6+ \
append without application/partial-upload, are refused', async (t) => {
  const s = await startTestServer(t, { maxSize: 1_000_000 });
  const none = await exchange('POST', s.endpoint, { 'Upload-Draft-Interop-Version': 8 }, Buffer.from('abc'));
  assert.equal(none.final.status, 400);
  assert.equal(none.interim.length, 0, 'no upload was made');
  const created = await exchange('POST', s.endpoint, { 'Upload-Draft-Interop-Version': 7, 'Upload-Complete': '?0' });
  const typeless = await exchange(
    'PATCH',
    created.final.headers.location!,
    { 'Upload-Draft-Interop-Version': 7, 'Upload-Complete': '?1', 'Upload-Offset': 0 },
    Buffer.from('abc'),
  );
  assert.equal(typeless.final.status, 415);
  // OPTIONS: Accept-Patch and the limits.
  const options = await exchange('OPTIONS', s.endpoint, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(options.final.headers['accept-patch'], 'application/partial-upload');
  assert.match(options.final.headers['upload-limit'] ?? '', /max-size=1000000/);
  // A creation past MAX_SIZE: 413 before anything is made.
  const big = await exchange('POST', s.endpoint, {
    'Upload-Draft-Interop-Version': 8,
    'Upload-Complete': '?0',
    'Upload-Length': 2_000_000,
  });
  assert.equal(big.final.status, 413);
  assert.equal(big.final.headers['upload-limit'], 'max-size=1000000', 'a 413 of the limits names them');
  assert.equal(big.interim.length, 0);
});

test('Content-Digest is checked like Upload-Checksum; Repr-Digest against the whole upload', async (t) => {
  const s = await startTestServer(t);
  const body = bytes(100_000, 5);
  const good = await exchange(
    'POST',
    s.endpoint,
    {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?1',
      'Content-Digest': `sha-256=:${digestB64('sha256', body)}:`,
      'Repr-Digest': `md5=:${digestB64('md5', body)}:`,
    },
    body,
  );
  assert.equal(good.final.status, 200, good.final.body.toString());
  const badContent = await exchange(
    'POST',
    s.endpoint,
    {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?1',
      'Content-Digest': `sha-256=:${digestB64('sha256', Buffer.from('other'))}:`,
    },
    body,
  );
  assert.equal(badContent.final.status, 460);
  assert.equal(JSON.parse(badContent.final.body.toString()).code, 'ERR_CHECKSUM_MISMATCH');
  const badRepr = await exchange(
    'POST',
    s.endpoint,
    {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?1',
      'Repr-Digest': `md5=:${digestB64('md5', Buffer.from('other'))}:`,
    },
    body,
  );
  assert.equal(badRepr.final.status, 400);
  assert.equal(JSON.parse(badRepr.final.body.toString()).code, 'ERR_DRAFT_DIGEST_MISMATCH');
  const gone = await exchange('HEAD', badRepr.interim[0]!.headers.location!, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(gone.final.status, 404, 'the upload whose Repr-Digest differs was removed');
  for (const field of ['Content-Digest', 'Repr-Digest']) {
    const malformed = await exchange(
      'POST',
      s.endpoint,
      { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?1', [field]: 'sha-256=abc' },
      body,
    );
    assert.equal(malformed.final.status, 400);
    assert.equal(malformed.interim.length, 0, `a malformed ${field} creates nothing`);
  }
  // Stored: the good upload and the one whose body was refused (created before its body came).
  assert.equal(fs.readdirSync(s.config.storeDir).filter((f) => /^[0-9a-f]{32}\.json$/.test(f)).length, 2);
  assert.equal((await recordsWhenPresent(s.url, 1)).length, 1, 'only the good upload is recorded');
});

test('IETF_DRAFT=false leaves /files/ to tus: a draft request is a tus request without Tus-Resumable', async (t) => {
  const s = await startTestServer(t, { ietfDraft: false });
  const r = await exchange(
    'POST',
    s.endpoint,
    { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?1' },
    Buffer.from('abc'),
  );
  assert.equal(r.interim.length, 0);
  assert.equal(r.final.status, 412);
  assert.match(r.final.body.toString(), /^ERR_UNSUPPORTED_VERSION/);
});

test("a browser's preflight for a draft request is allowed its headers", async (t) => {
  const s = await startTestServer(t);
  const r = await exchange('OPTIONS', s.endpoint, {
    Origin: 'http://page.example',
    'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'upload-draft-interop-version, upload-complete, content-disposition',
  });
  assert.ok(r.final.status < 300);
  const allowed = (r.final.headers['access-control-allow-headers'] ?? '').toLowerCase();
  for (const h of ['upload-draft-interop-version', 'upload-complete', 'content-disposition'])
    assert.ok(allowed.includes(h), `${h} in ${allowed}`);
});

test('bearer tokens and ownership as on tus: 401 without a \
token, 404 for another subject, the owner appends', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const v8 = { 'Upload-Draft-Interop-Version': 8 };
  const anon = await exchange('POST', s.endpoint, { ...v8, 'Upload-Complete': '?0' });
  assert.equal(anon.final.status, 401);
  assert.equal(JSON.parse(anon.final.body.toString()).code, 'ERR_AUTH_REQUIRED');
  assert.match(anon.final.headers['www-authenticate'] ?? '', /^Bearer/);
  const alice = bearer(tokenFor('alice', 'upload'));
  const created = await exchange('POST', s.endpoint, { ...v8, ...alice, 'Upload-Complete': '?0' }, Buffer.from('abc'));
  assert.equal(created.final.status, 201);
  const url = created.final.headers.location!;
  const bob = bearer(tokenFor('bob', 'upload'));
  assert.equal((await exchange('HEAD', url, { ...v8, ...bob })).final.status, 404);
  const bobs = await exchange(
    'PATCH',
    url,
    { ...v8, ...bob, 'Upload-Complete': '?1', 'Upload-Offset': 3, 'Content-Type': 'application/partial-upload' },
    Buffer.from('def'),
  );
  assert.equal(bobs.final.status, 404);
  const own = await exchange(
    'PATCH',
    url,
    { ...v8, ...alice, 'Upload-Complete': '?1', 'Upload-Offset': 3, 'Content-Type': 'application/partial-upload' },
    Buffer.from('def'),
  );
  assert.equal(own.final.status, 200, own.final.body.toString());
  assert.equal(JSON.parse(own.final.body.toString()).md5, md5Hex(Buffer.from('abcdef')));
});

test('a draft upload expires like any other: 410 once its time has passed', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 1 });
  const v8 = { 'Upload-Draft-Interop-Version': 8 };
  const created = await exchange('POST', s.endpoint, { ...v8, 'Upload-Complete': '?0', 'Upload-Length': 10 });
  assert.equal(created.final.status, 201, created.final.body.toString());
  const url = created.final.headers.location!;
  // Another request on the server first: more than the 1 ms lifetime has passed by the HEAD.
  await exchange('OPTIONS', s.endpoint, v8);
  const head = await exchange('HEAD', url, v8);
  assert.equal(head.final.status, 410);
});

test('a last body of unknown length (chunked) records the length when it has arrived whole', async (t) => {
  const s = await startTestServer(t);
  const body = bytes(150_000, 9);
  const chunked = (b: Buffer) =>
    Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
  const conn = await openRaw(s.endpoint);
  conn.socket.write(
    Buffer.concat([
      Buffer.from(
        requestHead('POST', s.endpoint, {
          'Upload-Draft-Interop-Version': 8,
          'Upload-Complete': '?1',
          'Transfer-Encoding': 'chunked',
        }),
        'latin1',
      ),
      chunked(body),
    ]),
  );
  const whole = await readAnswers(conn);
  conn.socket.destroy();
  assert.equal(whole.final.status, 200, whole.final.body.toString());
  assert.equal(JSON.parse(whole.final.body.toString()).md5, md5Hex(body));
  // Created with a part, completed by a chunked append.
  const created = await exchange(
    'POST',
    s.endpoint,
    { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?0' },
    body.subarray(0, 1000),
  );
  const url = created.final.headers.location!;
  const append = await openRaw(url);
  append.socket.write(
    Buffer.concat([
      Buffer.from(
        requestHead('PATCH', url, {
          'Upload-Draft-Interop-Version': 8,
          'Upload-Complete': '?1',
          'Upload-Offset': 1000,
          'Content-Type': 'application/partial-upload',
          'Transfer-Encoding': 'chunked',
        }),
        'latin1',
      ),
      chunked(body.subarray(1000)),
    ]),
  );
  const last = await readAnswers(append);
  append.socket.destroy();
  assert.equal(last.final.status, 200, last.final.body.toString());
  assert.equal(last.final.headers['upload-complete'], '?1');
  const head = await exchange('HEAD', url, { 'Upload-Draft-Interop-Version': 8 });
  assert.equal(head.final.headers['upload-length'], String(body.length));
});

test('progress: 104 answers with Upload-Offset (and no Location) while an append body arrives', async (t) => {
  const s = await startTestServer(t);
  const created = await exchange('POST', s.endpoint, { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?0' });
  const url = created.final.headers.location!;
  const body = bytes(4_000_000, 4);
  const conn = await openRaw(url);
  conn.socket.write(
    requestHead('PATCH', url, {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?1',
      'Upload-Offset': 0,
      'Content-Type': 'application/partial-upload',
      'Content-Length': body.length,
    }),
  );
  // The body dribbles in until a progress answer has come (the server sends one a second at most).
  let sent = 0;
  const timer = setInterval(() => {
    if (sent >= body.length - 1) return;
    const end = Math.min(body.length - 1, sent + 32 * 1024);
    conn.socket.write(body.subarray(sent, end));
    sent = end;
  }, 50);
  let progress;
  try {
    [progress] = await readInterim(conn, 1);
  } finally {
    clearInterval(timer);
  }
  assert.equal(progress!.status, 104);
  assert.equal(progress!.headers.location, undefined);
  assert.equal(progress!.headers['upload-draft-interop-version'], '8');
  const at = Number(progress!.headers['upload-offset']);
  assert.ok(at > 0 && at <= sent, `progress ${at} of ${sent} sent`);
  conn.socket.write(body.subarray(sent));
  const { final } = await readAnswers(conn);
  conn.socket.destroy();
  assert.equal(final.status, 200, final.body.toString());
  assert.equal(JSON.parse(final.body.toString()).md5, md5Hex(body));
});
