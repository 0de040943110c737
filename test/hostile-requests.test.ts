// Requests an attacker would send to the routes: downloads that crashed the process, other
// spellings of an upload id, method overrides that broke the framing of a kept-alive connection,
// error answers that showed paths and stacks, numbers past 2^53. Real server, sockets, curl, files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../server/config/package-root.ts';
import { SIGNATURE_HEADER, sign } from '../core/signature.ts';
import { md5, md5OfFile, patternBytes } from './helpers/files.ts';
import { openRaw, parseResponse, readResponse, type RawResponse } from './helpers/raw-http.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';

const run = promisify(execFile);
const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

/** A finished upload of `bytes`; its URL. */
/** Removes a finished upload the only way there is (tus DELETE answers 403 for it): with its catalog record. */
async function removeFinished(s: TestServer, url: string): Promise<{ status: number }> {
  const records = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<{ id: string; upload_id: string }>;
  const record = records.find((r) => r.upload_id === idOf(url));
  assert.ok(record, `a record of ${url}`);
  return fetch(`${s.url}/api/uploads/${record.id}`, { method: 'DELETE' });
}

async function finished(s: TestServer, bytes: Buffer, meta: Record<string, string> = {}): Promise<string> {
  const url = await create(s.endpoint, bytes.length, meta);
  const res = await patch(url, 0, bytes);
  // 200 with the completion service's answer (the in-process one records it).
  assert.ok(res.status === 200 || res.status === 204, `${res.status} ${res.body}`);
  return url;
}

/** Raw requests written at once on one connection; their answers parsed in order, nothing left over. */
async function pipelined(url: string, requests: string[]): Promise<RawResponse[]> {
  const conn = await openRaw(url);
  conn.socket.write(requests.join(''), 'latin1');
  const answers: RawResponse[] = [];
  let at = 0;
  const until = Date.now() + 10_000;
  while (answers.length < requests.length) {
    const parsed = parseResponse(conn.received().subarray(at), conn.isClosed());
    if (parsed) {
      answers.push(parsed);
      at += parsed.length;
      continue;
    }
    assert.ok(!conn.isClosed(), `connection closed after ${answers.length} answers`);
    assert.ok(
      Date.now() < until,
      `no answer ${answers.length + 1}: ${JSON.stringify(conn.received().toString('latin1').slice(-300))}`,
    );
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
  conn.socket.destroy();
  assert.equal(conn.received().length, at, 'bytes after the last answer: the framing is off');
  return answers;
}

/** A request as bytes; Content-Length from the body unless given. */
const request = (method: string, target: string, headers: Record<string, string> = {}, body = '') => {
  const all: Record<string, string> = { Host: '127.0.0.1', 'Tus-Resumable': '1.0.0', ...headers };
  if (!('Content-Length' in all) && (body || method === 'POST' || method === 'PATCH'))
    all['Content-Length'] = String(Buffer.byteLength(body, 'latin1'));
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;
};

/** One raw request on its own connection, the answer parsed. */
async function raw(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = '',
): Promise<RawResponse> {
  const conn = await openRaw(url);
  conn.socket.write(request(method, target, headers, body), 'latin1');
  const answer = await readResponse(conn, 5000, method === 'HEAD');
  conn.socket.destroy();
  assert.ok(answer, `${method} ${target}: no answer`);
  return answer;
}

test('GET of a finished upload: curl on one kept-alive \
connection at 65,537 bytes and 3 MiB, the process stays up', async (t) => {
  try {
    await run('curl', ['--version']);
  } catch {
    t.skip('curl is not installed');
    return;
  }
  const s = await startTestServer(t);
  const dir = tmpDir(t);
  const fetched: Array<{ size: number; bytes: Buffer; stdout: string; files: string[] }> = [];
  for (const size of [65_537, 3 * 1024 * 1024 + 7]) {
    const bytes = patternBytes(size, size);
    const url = await finished(s, bytes, { filename: 'notes "1".txt', filetype: 'text/plain' });
    const files = ['a', 'b', 'h'].map((n) => path.join(dir, `${size}.${n}`));
    // Two URLs in one curl: the second request goes on the first one's connection.
    const { stdout } = await run('curl', [
      '-sS',
      '-H',
      'Tus-Resumable: 1.0.0',
      '-D',
      files[2]!,
      '-w',
      '%{http_code}/%{num_connects} ',
      '-o',
      files[0]!,
      url,
      '-o',
      files[1]!,
      url,
    ]);
    fetched.push({ size, bytes, stdout, files });
  }
  // The crash came from a microtask after the answer: give it its chance, then ask again.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  for (const {
    size,
    bytes,
    stdout,
    files: [a, b, h],
  } of fetched) {
    assert.equal(stdout.trim(), '200/1 200/0', 'two 200s, the second on the same connection');
    assert.equal(await md5OfFile(a!), md5(bytes));
    assert.equal(await md5OfFile(b!), md5(bytes));
    const headers = fs.readFileSync(h!, 'utf8').toLowerCase();
    assert.match(headers, new RegExp(`content-length: ${size}\\r\\n`));
    assert.match(headers, /content-type: text\/plain\r\n/);
    assert.match(
      headers,
      /content-disposition: inline; filename="notes \\"1\\".txt"; filename\*=utf-8''notes%20%221%22.txt\r\n/,
    );
    assert.match(headers, /x-content-type-options: nosniff\r\n/);
  }

  // Types that could run script here are downloads; a type that is not one is octet-stream.
  const html = await tus(
    'GET',
    await finished(s, Buffer.from('<script>1</script>'), { filename: 'x.html', filetype: 'text/html' }),
  );
  assert.equal(html.headers['content-type'], 'text/html');
  assert.match(html.headers['content-disposition']!, /^attachment; filename="x.html"/);
  const odd = await tus('GET', await finished(s, Buffer.from('abc'), { filetype: 'not a type\r\nX: 1' }));
  assert.equal(odd.headers['content-type'], 'application/octet-stream');
  assert.equal(odd.headers['content-disposition'], 'attachment');
  assert.equal(odd.body, 'abc');

  const unfinished = await create(s.endpoint, 10);
  await patch(unfinished, 0, Buffer.from('12345'));
  const part = await tus('GET', unfinished);
  assert.equal(part.status, 404);
  assert.match(part.body, /^ERR_UPLOAD_UNFINISHED: /);
  const missing = await tus('GET', `${s.endpoint}0123456789abcdef0123456789abcdef`);
  assert.equal(missing.status, 404);
  assert.match(missing.body, /^ERR_UPLOAD_NOT_FOUND: /);
  assert.equal((await tus('GET', s.endpoint)).status, 404);
});

test('GET racing DELETE: a download under way reads to the \
end; racing GETs answer the whole file or 404', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(8 * 1024 * 1024, 7);
  const url = await finished(s, bytes, { filename: 'big.bin' });

  // Read a little, stop reading, delete the upload, then read the rest.
  const chunks: Buffer[] = [];
  const done = new Promise<number>((resolve, reject) => {
    const req = http.get(url, { headers: { 'Tus-Resumable': '1.0.0' } }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('data', () => {
        res.pause();
        void (async () => {
          const del = await removeFinished(s, url);
          assert.equal(del.status, 204);
          assert.deepEqual(
            fs.readdirSync(s.config.storeDir).filter((f) => f.startsWith(idOf(url))),
            [],
          );
          res.resume();
        })().catch(reject);
      });
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  assert.equal(await done, 200);
  assert.equal(md5(Buffer.concat(chunks)), md5(bytes), 'the whole file, though it was deleted mid-download');

  // GETs on both sides of a DELETE, all at once.
  const racingBytes = patternBytes(512 * 1024, 8);
  const url2 = await finished(s, racingBytes);
  const download = async () => {
    const res = await fetch(url2, { headers: { 'Tus-Resumable': '1.0.0' } });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  await recordsWhenPresent(s.url, 1);
  const before = Array.from({ length: 12 }, download);
  const del = removeFinished(s, url2);
  const after = Array.from({ length: 12 }, download);
  assert.equal((await del).status, 204);
  const statuses = new Set<number>();
  for (const answer of await Promise.all([...before, ...after])) {
    statuses.add(answer.status);
    if (answer.status === 200) assert.equal(md5(answer.body), md5(racingBytes));
    else {
      assert.equal(answer.status, 404);
      assert.match(answer.body.toString(), /^ERR_UPLOAD_NOT_FOUND: /);
    }
  }
  assert.ok(statuses.has(404), 'GETs after the DELETE answered 404');
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  assert.ok(!s.logs.some((l) => /GET/.test(l) && /Error/.test(l)), s.logs.join('\n'));
});

test('alias ids: any other spelling of an upload is refused \
before any lock, file or digest state is touched', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(1000, 3);
  const url = await finished(s, bytes, { filename: 'kept.bin' });
  const id = idOf(url);
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record?.md5, md5(bytes));
  const store = s.config.storeDir;
  const snapshot = () =>
    Object.fromEntries(
      fs
        .readdirSync(store)
        .filter((f) => !f.startsWith('.'))
        .sort()
        .map((f) => [f, md5(fs.readFileSync(path.join(store, f)))]),
    );
  const before = snapshot();

  const hex = (c: string) => `%${c.charCodeAt(0).toString(16)}`;
  const aliases = [
    `/files/x%2F..%2F${id}`,
    `/files/x%2f..%2f${id}`,
    `/files/x%252F..%252F${id}`,
    `/files/${id}%00`,
    `/files/${id}/`,
    `/files/${id}/extra`,
    `/files/./${id}`,
    `/files/x/../${id}`,
    `/files/%2e/${id}`,
    `/files//${id}`,
    `/files/${hex(id[0]!)}${id.slice(1)}`,
    `/FILES/${id}`,
    `http://test/files/x%2F..%2F${id}`,
  ];
  for (const target of aliases) {
    for (const [method, headers, body] of [
      ['HEAD', {}, ''],
      ['GET', {}, ''],
      ['PATCH', { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, 'overwritten'],
      ['DELETE', {}, ''],
      ['POST', { 'Upload-Length': '5' }, ''],
    ] as const) {
      const answer = await raw(s.url, method, target, headers, body);
      assert.equal(answer.status, 404, `${method} ${target}: ${answer.status}`);
      if (method !== 'HEAD')
        assert.equal(answer.body.toString(), 'ERR_UPLOAD_NOT_FOUND: no such upload\n', `${method} ${target}`);
    }
  }
  // An undecodable id is a malformed URL.
  const bad = await raw(
    s.url,
    'PATCH',
    `/files/${id}%ff`,
    { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    'x',
  );
  assert.equal(bad.status, 400);
  assert.match(bad.body.toString(), /^ERR_URL_INVALID: /);
  // ext4 is case-sensitive: the id in capitals is another id, and there is none.
  assert.equal((await raw(s.url, 'DELETE', `/files/${id.toUpperCase()}`)).status, 404);

  assert.deepEqual(snapshot(), before, 'the finished upload, its info and digest state are as they were');
  assert.equal(await md5OfFile(path.join(store, id)), md5(bytes));
  const after = await recordsWhenPresent(s.url, 1);
  assert.deepEqual(after, [record], 'one record, as before');
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '1000');
});

test('alias ids: a PATCH under another spelling never gets past a PATCH holding the real id', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(200, 4);
  const url = await create(s.endpoint, 200);
  const id = idOf(url);
  assert.equal((await patch(url, 0, bytes.subarray(0, 100))).status, 204);

  // A PATCH of the real id that sends part of its body and stalls: it holds the upload's lock.
  const stalled = await openRaw(s.url);
  stalled.socket.write(
    request('PATCH', `/files/${id}`, {
      'Upload-Offset': '100',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': '100',
    }),
  );
  stalled.socket.write(bytes.subarray(100, 110));
  await new Promise((r) => setTimeout(r, 200));

  // The same upload under an alias, with the rest of the bytes: refused at once, not written past the lock.
  const alias = `/files/x%2F..%2F${id}`;
  const answer = await raw(
    s.url,
    'PATCH',
    alias,
    { 'Upload-Offset': '100', 'Content-Type': 'application/offset+octet-stream' },
    bytes.subarray(100).toString('latin1'),
  );
  assert.equal(answer.status, 404);
  assert.equal((await raw(s.url, 'HEAD', alias)).status, 404);
  // Nor did the alias take the real id's lock (that would have asked the stalled PATCH to stop).
  assert.equal(stalled.received().length, 0, 'the stalled PATCH is still waiting for its body');
  assert.equal(fs.statSync(path.join(s.config.storeDir, id)).size <= 110, true);

  // The stalled PATCH goes on and finishes the upload; the file is exactly the bytes sent on the real id.
  stalled.socket.write(bytes.subarray(110));
  const done = await readResponse(stalled, 5000);
  stalled.socket.destroy();
  assert.equal(done?.status, 200);
  assert.equal(await md5OfFile(path.join(s.config.storeDir, id)), md5(bytes));
  const records = await recordsWhenPresent(s.url, 1);
  assert.equal(records.length, 1);
  assert.equal(records[0]?.md5, md5(bytes));
});

test('X-HTTP-Method-Override: on a kept-alive connection every answer is framed as the method sent; POST only, tus \
methods only', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(100, 5);
  const id = idOf(await finished(s, bytes));
  const missing = '0123456789abcdef0123456789abcdef';
  const answers = await pipelined(s.url, [
    request('GET', `/files/${missing}`, { 'X-HTTP-Method-Override': 'HEAD' }),
    request('GET', `/files/${id}`, { 'X-HTTP-Method-Override': 'HEAD' }),
    request('POST', `/files/${missing}`, { 'X-HTTP-Method-Override': 'HEAD' }),
    request('POST', `/files/${id}`, { 'X-HTTP-Method-Override': 'head' }),
    request('POST', `/files/${id}`, { 'X-HTTP-Method-Override': 'GET' }),
    request('POST', `/files/${id}`, { 'X-HTTP-Method-Override': 'BREW' }),
    request('PATCH', `/files/${id}`, {
      'X-HTTP-Method-Override': 'DELETE',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
    }),
    'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
  ]);
  const [getHeadMissing, getHead, postHeadMissing, postHead, postGet, brew, patchDelete, health] = answers;
  for (const a of [getHeadMissing, getHead, brew, patchDelete]) {
    assert.equal(a!.status, 400);
    assert.match(a!.body.toString(), /^ERR_METHOD_OVERRIDE_INVALID: /);
  }
  assert.equal(postHeadMissing!.status, 404);
  assert.equal(postHeadMissing!.headers['content-length'], '0');
  assert.equal(postHeadMissing!.body.length, 0);
  assert.equal(postHead!.status, 200);
  assert.equal(postHead!.headers['upload-offset'], '100');
  assert.equal(postHead!.headers['content-length'], '0');
  assert.equal(postGet!.status, 200);
  assert.equal(md5(postGet!.body), md5(bytes));
  assert.equal(health!.status, 200);
  assert.equal(health!.body.toString(), '{"ok":true}');
  // Nothing was deleted by the refused override.
  assert.equal((await tus('HEAD', `${s.endpoint}${id}`)).status, 200);
});

test('error answers: the ERR_ format, no path of this machine, no stack', async (t) => {
  const s = await startTestServer(t);
  const secret = s.config.completionSecret!;
  const store = s.config.storeDir;
  const bytes = patternBytes(64, 6);
  const url = await finished(s, bytes, { filename: 'a.bin' });
  const [record] = await recordsWhenPresent(s.url, 1);

  // An upload whose file became a symlink to itself: stat fails with ELOOP and the store's path, an
  // internal error for every handler that reads it.
  const broken = await finished(s, Buffer.from('x'));
  fs.rmSync(path.join(store, idOf(broken)));
  fs.symlinkSync(idOf(broken), path.join(store, idOf(broken)));

  const form = (fields: Record<string, string>) => {
    const body = new URLSearchParams({
      'file1.name': 'a.bin',
      'file1.content_type': 'application/octet-stream',
      'file1.path': path.join(store, idOf(url)),
      'file1.md5': md5(bytes),
      'file1.size': String(bytes.length),
      'file1.id': idOf(url),
      ...fields,
    }).toString();
    return fetch(`${s.url}/complete/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        [SIGNATURE_HEADER]: sign(secret, 'completion-form', body),
      },
      body,
    });
  };
  fs.symlinkSync('/etc', path.join(store, 'elsewhere'));

  // A HEAD that cannot be answered says 423, which tus clients retry; a 500 would make them start over.
  assert.equal((await tus('HEAD', broken)).status, 423);
  const tusAnswers: Array<[string, Promise<{ status: number; body: string }>, number, string]> = [
    ['GET /files/%ff', tus('GET', `${s.endpoint}%ff`), 400, 'ERR_URL_INVALID'],
    ['GET broken', tus('GET', broken), 500, 'ERR_INTERNAL'],
    ['PATCH broken', patch(broken, 0, 'x'), 500, 'ERR_INTERNAL'],
    // @tus/server's handlers (termination here) answer an unexpected error with its message: mapped too.
    ['DELETE broken', tus('DELETE', broken), 500, 'ERR_INTERNAL'],
  ];
  for (const [what, answer, status, code] of tusAnswers) {
    const a = await answer;
    assert.equal(a.status, status, `${what}: ${a.body}`);
    assert.match(a.body, new RegExp(`^${code}: [^\\n]+\\n$`), what);
    assertNoLeak(a.body, what);
  }

  const get = (p: string, init?: RequestInit) => fetch(`${s.url}${p}`, init);
  const jsonAnswers: Array<[string, Promise<Response>, number, string]> = [
    ['/assets/missing.js', get('/assets/missing.js'), 404, 'ERR_NOT_FOUND'],
    ['/assets/%ff', get('/assets/%ff'), 404, 'ERR_NOT_FOUND'],
    ['/nowhere', get('/nowhere'), 404, 'ERR_NOT_FOUND'],
    ['POST /nowhere', get('/nowhere', { method: 'POST', body: 'x' }), 404, 'ERR_NOT_FOUND'],
    ['/api/uploads/%ff', get('/api/uploads/%ff'), 400, 'ERR_URL_INVALID'],
    ['/api/uploads/%ff/file', get('/api/uploads/%ff/file'), 400, 'ERR_URL_INVALID'],
    ['/api/uploads/none', get('/api/uploads/none'), 404, 'ERR_RECORD_NOT_FOUND'],
    ['outside', form({ 'file1.path': '/etc/passwd' }), 403, 'ERR_PATH_OUTSIDE_STORE'],
    [
      'outside by symlink',
      form({ 'file1.path': path.join(store, 'elsewhere', 'passwd') }),
      403,
      'ERR_PATH_OUTSIDE_STORE',
    ],
    ['missing', form({ 'file1.path': path.join(store, 'nothing-here') }), 422, 'ERR_FILE_MISSING'],
    ['size', form({ 'file1.size': '65' }), 422, 'ERR_SIZE_MISMATCH'],
    // A download's Range past the end or a failed condition is the client's mistake, not a 500.
    [
      'range',
      get(`/api/uploads/${record!.id}/file`, { headers: { Range: 'bytes=9999-' } }),
      416,
      'ERR_RANGE_NOT_SATISFIABLE',
    ],
    [
      'if-match',
      get(`/api/uploads/${record!.id}/file`, { headers: { 'If-Match': '"other"' } }),
      412,
      'ERR_PRECONDITION_FAILED',
    ],
  ];
  for (const [what, answer, status, code] of jsonAnswers) {
    const a = await answer;
    const body = await a.text();
    assert.equal(a.status, status, `${what}: ${body}`);
    assert.equal(JSON.parse(body).error.code, code, what);
    assertNoLeak(body, what);
  }

  // The recorded file gone: the answer names the record, the log the path.
  fs.rmSync(path.join(store, idOf(url)));
  const gone = await get(`/api/uploads/${record!.id}/file`);
  const goneBody = await gone.text();
  assert.equal(gone.status, 404);
  assert.equal(JSON.parse(goneBody).error.code, 'ERR_RECORD_FILE_GONE');
  assertNoLeak(goneBody, 'gone');
  assert.ok(
    s.logs.some((l) => l.includes('ERR_RECORD_FILE_GONE') && l.includes(path.join(store, idOf(url)))),
    s.logs.join('\n'),
  );
  assert.ok(
    s.logs.some((l) => l.includes('ELOOP') && l.includes(path.join(store, idOf(broken)))),
    'the internal error is in the log',
  );

  function assertNoLeak(body: string, what: string) {
    for (const dir of [s.config.dataDir, store, PACKAGE_ROOT, '/etc/passwd'])
      assert.ok(!body.includes(dir), `${what} names ${dir}: ${body}`);
    assert.doesNotMatch(body, /\n\s+at /, `${what}: a stack`);
    assert.doesNotMatch(body, /<html|<pre>/i, `${what}: an HTML page`);
  }
});

test('Upload-Length and Upload-Offset: decimal digits up to \
2^53 - 1, on every method, before @tus/server', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 10);
  const storeBefore = fs.readdirSync(s.config.storeDir).sort();
  for (const length of ['9007199254740992', '18446744073709551616', '+5', '5e3', '0x10', '1 0', '-1', '1.0', '']) {
    const res = await raw(s.url, 'POST', '/files/', { 'Upload-Length': length });
    assert.equal(res.status, 400, `Upload-Length ${JSON.stringify(length)}: ${res.status}`);
    assert.match(res.body.toString(), /^ERR_LENGTH_INVALID: /);
  }
  for (const offset of ['9007199254740992', '+0', '0x0', '1e0', '0 0', '-0']) {
    const res = await raw(
      s.url,
      'PATCH',
      `/files/${idOf(url)}`,
      { 'Upload-Offset': offset, 'Content-Type': 'application/offset+octet-stream' },
      'abc',
    );
    assert.equal(res.status, 400, `Upload-Offset ${JSON.stringify(offset)}: ${res.status}`);
    assert.match(res.body.toString(), /^ERR_OFFSET_INVALID: /);
  }
  // Every method: a HEAD or a DELETE with a bad number is refused too (and deletes nothing).
  assert.equal((await raw(s.url, 'HEAD', `/files/${idOf(url)}`, { 'Upload-Offset': '1e3' })).status, 400);
  assert.equal(
    (await raw(s.url, 'DELETE', `/files/${idOf(url)}`, { 'Upload-Length': '9007199254740993' })).status,
    400,
  );
  // A deferred-length upload cannot be given an unsafe length on PATCH either.
  const deferred = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(deferred.status, 201);
  const late = await tus(
    'PATCH',
    new URL(deferred.headers.location!, s.endpoint).toString(),
    { 'Upload-Offset': '0', 'Upload-Length': '9007199254740992', 'Content-Type': 'application/offset+octet-stream' },
    'abc',
  );
  assert.equal(late.status, 400);
  assert.match(late.body, /^ERR_LENGTH_INVALID: /);

  assert.deepEqual(
    fs
      .readdirSync(s.config.storeDir)
      .filter((f) => storeBefore.includes(f) || !f.startsWith(idOf(deferred.headers.location!)))
      .sort(),
    storeBefore,
  );
  assert.equal((await patch(url, 0, 'abc')).status, 204);
});

test('a PATCH whose body arrived whole is answered, and so is \
a HEAD pipelined behind it that wants the lock', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(4096);
  const url = await finished(s, bytes);
  const target = new URL(url).pathname;
  // A repeated last PATCH (the client did not see its answer) and a HEAD, written at once.
  const [p, h] = await pipelined(url, [
    request(
      'PATCH',
      target,
      { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(bytes.length) },
      'abcdefg',
    ),
    request('HEAD', target),
  ]);
  assert.ok(p!.status < 500, `PATCH answered ${p!.status}`);
  assert.equal(h!.status, 200);
  assert.equal(h!.headers['upload-offset'], String(bytes.length));
  assert.equal(md5(fs.readFileSync(s.store.filePath(idOf(url)))), md5(bytes), 'the finished upload is unchanged');
});

test('POST under an upload URL, or any other method on a tus URL: 405 with Allow; nothing is created', async (t) => {
  const s = await startTestServer(t);
  const url = await create(s.endpoint, 10);
  const before = fs.readdirSync(s.config.storeDir).sort();
  for (const [method, target, headers] of [
    ['POST', `${s.endpoint}abc`, { 'Upload-Length': '10' }],
    ['POST', url, { 'Upload-Concat': `final;${new URL(url).pathname}` }],
    ['PUT', url, {}],
    ['PUT', s.endpoint, {}],
    ['PATCH', s.endpoint, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }],
    ['DELETE', s.endpoint, {}],
  ] as const) {
    const res = await tus(method, target, headers);
    assert.equal(res.status, 405, `${method} ${target}: ${res.status} ${res.body}`);
    assert.match(res.body, /^ERR_METHOD_NOT_ALLOWED/);
    assert.ok(res.headers.allow, `${method} ${target}: Allow header`);
  }
  assert.deepEqual(fs.readdirSync(s.config.storeDir).sort(), before, 'nothing was created');
});

test('a refusal that reads none of a large body reaches a client that reads only once it has sent everything (the \
connection is not reset under it)', async (t) => {
  const s = await startTestServer(t);
  const size = 4 * 1024 * 1024;
  /** Sends the head and `size` body bytes, reading nothing until the last write is done (or failed); the answer
   * then. */
  const sendThenRead = async (head: string) => {
    const conn = await openRaw(s.url);
    conn.socket.pause();
    conn.socket.write(head);
    let failed: string | undefined;
    for (let at = 0; at < size && !failed; at += 65_536) {
      await new Promise<void>((resolve) =>
        conn.socket.write(Buffer.alloc(65_536, 1), (e) => ((failed = e?.message), resolve())),
      );
    }
    conn.socket.resume();
    await conn.closed;
    return { failed, answer: conn.received().toString('latin1') };
  };
  const url = await create(s.endpoint, 1000);
  const patchHead =
    `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nTus-Resumable: 1.0.0\r\nContent-Type: ` +
    `application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${size}\r\n\r\n`;
  const tooLarge = await sendThenRead(patchHead);
  assert.equal(tooLarge.failed, undefined, 'every byte was taken');
  assert.match(tooLarge.answer, /^HTTP\/1\.1 413 [\s\S]*\r\n\r\nERR_SIZE_EXCEEDED: /);
  const noBoundary = await sendThenRead(
    `POST /upload HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nContent-Type: ` +
      `multipart/form-data\r\nContent-Length: ${size}\r\n\r\n`,
  );
  assert.equal(noBoundary.failed, undefined, 'every byte was taken');
  assert.match(noBoundary.answer, /^HTTP\/1\.1 400 [\s\S]*"ERR_MULTIPART_INVALID"/);
  // Nothing was written of either.
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '0');
});
