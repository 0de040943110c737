// The draft's requests as a hostile or broken client sends them, over raw sockets: bodies that go
// past the length they declared while a Repr-Digest vouches for them, creations cut mid-body. What
// must hold: nothing announced that the client's digest disowns, a dropped request counted as one.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { sendInterim } from '../server/upload/ietf/interim.ts';
import { delta, scrape, series } from './helpers/metrics.ts';
import { digestB64, exchange, readAnswers, readSequence, requestHead } from './helpers/draft-http.ts';
import { openRaw, rawExchange } from './helpers/raw-http.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const draft = (extra: Record<string, string | number>) => ({ 'Upload-Draft-Interop-Version': 8, ...extra });

/** One request with a chunked body sent whole; its answers. */
async function chunked(url: string, method: string, headers: Record<string, string | number>, body: Buffer) {
  const conn = await openRaw(url);
  const head = requestHead(method, url, { ...headers, 'Transfer-Encoding': 'chunked' });
  conn.socket.write(
    Buffer.concat([
      Buffer.from(`${head}${body.length.toString(16)}\r\n`, 'latin1'),
      body,
      Buffer.from('\r\n0\r\n\r\n'),
    ]),
  );
  const answers = await readAnswers(conn);
  conn.socket.destroy();
  return answers;
}

const catalog = async (s: TestServer) =>
  (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;

test('a body past its Upload-Length whose Repr-Digest is not of \
the bytes kept: the upload is removed, never announced', async (t) => {
  const s = await startTestServer(t);
  const sent = Buffer.from('0123456789');
  // The client says the representation is these 10 bytes but declares 5: the 5 kept are not what it vouched for.
  const { interim, final } = await chunked(
    s.endpoint,
    'POST',
    draft({ 'Upload-Complete': '?1', 'Upload-Length': 5, 'Repr-Digest': `md5=:${digestB64('md5', sent)}:` }),
    sent,
  );
  assert.equal(interim[0]?.status, 104);
  assert.equal(JSON.parse(final.body.toString()).code, 'ERR_DRAFT_DIGEST_MISMATCH', final.body.toString());
  // The completion runs before the answer: the catalog is settled once it has come.
  assert.deepEqual(await catalog(s), []);
  const conn = await openRaw(interim[0]!.headers.location!);
  conn.socket.write(requestHead('HEAD', interim[0]!.headers.location!, { 'Upload-Draft-Interop-Version': 8 }));
  const head = await readAnswers(conn, true);
  conn.socket.destroy();
  assert.equal(head.final.status, 404);
});

test('a body past its Upload-Length whose Repr-Digest is of \
the bytes kept: announced, the request still 413', async (t) => {
  const s = await startTestServer(t);
  const sent = Buffer.from('0123456789');
  const { final } = await chunked(
    s.endpoint,
    'POST',
    draft({
      'Upload-Complete': '?1',
      'Upload-Length': 5,
      'Repr-Digest': `md5=:${digestB64('md5', sent.subarray(0, 5))}:`,
    }),
    sent,
  );
  assert.equal(final.status, 413);
  const [record] = await catalog(s);
  assert.equal(record?.size, 5);
});

test('a draft creation whose client goes mid-body is a dropped request: one info line and its count, not an error \
answer', async (t) => {
  const s = await startTestServer(t, { metrics: true });
  const metricsUrl = `${s.url}/metrics`;
  const before = (await scrape(metricsUrl)).metrics;
  const conn = await openRaw(s.endpoint);
  conn.socket.write(`${requestHead('POST', s.endpoint, draft({ 'Upload-Complete': '?1', 'Content-Length': 100 }))}abc`);
  // The 104 says the body's append holds the upload: the three bytes are being read.
  await new Promise<void>((resolve) => {
    const check = () =>
      conn.received().includes('104 Upload Resumption Supported') ? resolve() : conn.socket.once('data', check);
    check();
  });
  conn.socket.end();
  await conn.closed;
  // Waits for the request's end (either line); the deadline only names a failure.
  const ended = () => s.logs.find((l) => l.includes('event=request.dropped') || l.includes('ERR_UPLOAD_INTERRUPTED'));
  const until = Date.now() + 60_000;
  while (!ended() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.match(ended() ?? '', /event=request\.dropped/);
  const after = (await scrape(metricsUrl)).metrics;
  assert.equal(delta(before, after, series('tuspass_requests_dropped_total', { cause: 'client_closed' })), 1);
  assert.equal(delta(before, after, series('tusd_errors_total', { code: 'ERR_UPLOAD_INTERRUPTED', status: '400' })), 0);
});

test("X-HTTP-Method-Override on a draft request, as tus-js-client's overridePatchMethod sends it: a POST standing for \
PATCH appends, one naming no method is refused", async (t) => {
  const s = await startTestServer(t);
  const body = Buffer.from('0123456789');
  const created = await exchange(
    'POST',
    s.endpoint,
    draft({ 'Upload-Complete': '?0', 'Upload-Length': body.length }),
    body.subarray(0, 4),
  );
  assert.equal(created.final.status, 201);
  const url = created.final.headers.location!;
  const append = {
    'Upload-Draft-Interop-Version': 6,
    'Content-Type': 'application/partial-upload',
    'Upload-Complete': '?1',
    'Upload-Offset': 4,
  };
  const wrong = await exchange('POST', url, { ...append, 'X-HTTP-Method-Override': 'PUT' }, body.subarray(4));
  assert.equal(wrong.final.status, 400);
  assert.equal(JSON.parse(wrong.final.body.toString()).code, 'ERR_METHOD_OVERRIDE_INVALID');
  const last = await exchange('POST', url, { ...append, 'X-HTTP-Method-Override': 'PATCH' }, body.subarray(4));
  assert.equal(last.final.status, 200, last.final.body.toString());
  assert.equal(last.final.headers['upload-complete'], '?1');
  const [record] = await catalog(s);
  assert.equal(record?.size, body.length);
});

test('a 104 of a pipelined request whose final answer is made while the answer before it is still pending: never \
inside its own answer', async (t) => {
  let releaseFirst!: () => void;
  const firstMayAnswer = new Promise<void>((resolve) => (releaseFirst = resolve));
  const server = http.createServer((req, res) => {
    if (req.url === '/first') {
      // The first request's answer waits until the second's is made (a slow hook, a completion).
      void firstMayAnswer.then(() => res.end(Buffer.from('one')));
      return;
    }
    // Queued behind the first answer: the 104 cannot go out yet, and the final answer is made at
    // once, with a Buffer body as express sends one.
    sendInterim(req, res, { Location: 'http://127.0.0.1/files/x' });
    res.writeHead(200, { 'Content-Length': '3' });
    res.end(Buffer.from('two'));
    releaseFirst();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const conn = await openRaw(url);
  conn.socket.write(requestHead('GET', `${url}/first`, {}) + requestHead('GET', `${url}/second`, {}));
  const answers = await readSequence(conn, 2);
  conn.socket.destroy();
  const finals = answers.filter((a) => a.status >= 200);
  assert.deepEqual(
    finals.map((a) => [a.status, a.body.toString()]),
    [
      [200, 'one'],
      [200, 'two'],
    ],
  );
  // Whatever interim answers came, each came before the final answer it belongs to, whole.
  assert.deepEqual(
    answers.map((a) => a.status).filter((status) => status !== 104),
    [200, 200],
  );
  assert.doesNotMatch(conn.received().toString('latin1').split('two')[1] ?? '', /./, 'nothing after the last answer');
});

test("an upload id that cannot be decoded (%ff) is the client's error on every draft method, OPTIONS included: 400, \
never a 500", async (t) => {
  const s = await startTestServer(t);
  const host = new URL(s.url).host;
  for (const method of ['OPTIONS', 'HEAD', 'GET', 'PATCH', 'DELETE']) {
    const { raw } = await rawExchange(
      s.url,
      `${method} /files/%ffbacf HTTP/1.1\r\nHost: ${host}\r\nUpload-Draft-Interop-Version: 8\r\nContent-Length: ` +
        '0\r\nConnection: close\r\n\r\n',
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.toString('latin1'))?.[1]);
    assert.equal(status, 400, `${method}: ${raw.toString('latin1').slice(0, 200)}`);
  }
  assert.deepEqual(
    s.logs.filter((l) => /ERR_INTERNAL|level=error/.test(l)),
    [],
  );
});
