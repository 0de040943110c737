// 104 (Upload Resumption Supported) interim answers as clients read them: node's HTTP client (its
// 'information' event), a raw socket over TLS, two creations pipelined on one connection, and the
// cases where none may be written (HTTP/1.0, after the final answer's header, a field that would
// break the line).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { sendInterim } from '../server/upload/ietf/interim.ts';
import { exchange, openRawTls, readAnswers, readSequence, requestHead } from './helpers/draft-http.ts';
import { openRaw } from './helpers/raw-http.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const draft = { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' };

test("node's HTTP client sees the 104 with Location before the final answer", async (t) => {
  const s = await startTestServer(t);
  const body = Buffer.alloc(100_000, 7);
  const seen: Array<{ status: number; headers: http.IncomingHttpHeaders }> = [];
  const final = await new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request(
      s.endpoint,
      { method: 'POST', headers: { ...draft, 'Content-Length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
      },
    );
    req.on('information', (info) => seen.push({ status: info.statusCode, headers: info.headers }));
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(seen.length >= 1, true);
  assert.equal(seen[0]!.status, 104);
  assert.equal(seen[0]!.headers['upload-draft-interop-version'], '8');
  assert.equal(final.status, 200);
  assert.equal(final.headers.location, seen[0]!.headers.location);
});

test('over TLS the 104 and the final answer arrive as two well-formed answers', async (t) => {
  const dir = tmpDir(t);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'k.pem',
      '-out',
      'c.pem',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const s = await startTestServer(t, { tlsCert: path.join(dir, 'c.pem'), tlsKey: path.join(dir, 'k.pem') });
  const conn = await openRawTls(s.endpoint);
  const body = Buffer.alloc(64_000, 3);
  conn.socket.write(
    Buffer.concat([
      Buffer.from(requestHead('POST', s.endpoint, { ...draft, 'Content-Length': body.length }), 'latin1'),
      body,
    ]),
  );
  const { interim, final } = await readAnswers(conn);
  conn.socket.destroy();
  assert.equal(interim[0]?.status, 104);
  assert.match(interim[0]!.headers.location ?? '', /^https:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32}$/);
  assert.equal(final.status, 200);
  assert.equal(final.headers.location, interim[0]!.headers.location);
});

test('two creations pipelined on one connection: each 104 lands before its own final answer', async (t) => {
  const s = await startTestServer(t);
  const conn = await openRaw(s.endpoint);
  const one = Buffer.alloc(200_000, 1);
  const two = Buffer.alloc(1000, 2);
  const request = (body: Buffer) =>
    Buffer.concat([
      Buffer.from(requestHead('POST', s.endpoint, { ...draft, 'Content-Length': body.length }), 'latin1'),
      body,
    ]);
  conn.socket.write(Buffer.concat([request(one), request(two)]));
  const answers = await readSequence(conn, 2);
  const split = answers.findIndex((a) => a.status >= 200) + 1;
  const first = { interim: answers.slice(0, split - 1), final: answers[split - 1]! };
  const second = answers.slice(split);
  conn.socket.destroy();
  assert.equal(first.interim[0]?.status, 104);
  assert.equal(first.final.status, 200);
  assert.equal(first.final.headers.location, first.interim[0]!.headers.location);
  assert.equal(second[0]!.status, 104);
  assert.equal(second.at(-1)!.status, 200);
  assert.equal(second.at(-1)!.headers.location, second[0]!.headers.location);
  assert.notEqual(second[0]!.headers.location, first.interim[0]!.headers.location);
});

test('no 104 to an HTTP/1.0 client', async (t) => {
  const s = await startTestServer(t);
  const conn = await openRaw(s.endpoint);
  const u = new URL(s.endpoint);
  conn.socket.write(
    `POST ${u.pathname} HTTP/1.0\r\nHost: ${u.host}\r\nUpload-Draft-Interop-Version: 8\r\nUpload-Complete: ` +
      '?1\r\nContent-Length: 3\r\n\r\nabc',
  );
  const { interim, final } = await readAnswers(conn);
  conn.socket.destroy();
  assert.equal(interim.length, 0);
  assert.equal(final.status, 200);
});

test('sendInterim writes nothing once the final header went \
out, or with a field that would end its line', async (t) => {
  const results: boolean[] = [];
  const server = http.createServer((req, res) => {
    results.push(sendInterim(req, res, { Location: 'http://x/\r\nInjected: 1' }));
    res.writeHead(200, { 'Content-Length': '2' });
    res.flushHeaders();
    results.push(sendInterim(req, res, { Location: 'http://x/files/a' }));
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  const r = await exchange('GET', `http://127.0.0.1:${port}/`, {});
  assert.deepEqual(results, [false, false]);
  assert.equal(r.interim.length, 0);
  assert.equal(r.final.status, 200);
  assert.equal(r.final.body.toString(), 'ok');
  assert.doesNotMatch(r.conn.received().toString('latin1'), /Injected|104/);
});
